"""The package map (docs/architecture.md), read from every module's imports: the floors
import only downwards (``exact`` and ``estimators`` know no other floor; ``mcmc`` knows
estimators; ``targets`` know no flows; ``flows`` know no targets; ``training``, ``measure``,
``microscope`` and ``images`` know neither each other's upper floors nor the model;
``scaling`` works on numbers and knows only ``exact``), no
library imports the orchestration (``jobs``, with the run directories in ``jobs.runs``, and
``cli``), the libraries write no files, and the package root holds at most six modules."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "neuralrg"
FRONT = ("neuralrg.jobs", "neuralrg.cli", "neuralrg.cli.seed", "neuralrg.__main__")
ORCHESTRATION = ("neuralrg.jobs", "neuralrg.cli", "neuralrg.cli.seed", "neuralrg.jobs.runs")
UPPER = ("neuralrg.training", "neuralrg.measure", "neuralrg.microscope", "neuralrg.images",
         "neuralrg.model")
FORBIDDEN = {
    "neuralrg.exact": ("neuralrg.flows", "neuralrg.targets", "neuralrg.mcmc", *UPPER),
    "neuralrg.estimators": ("neuralrg.flows", "neuralrg.targets", "neuralrg.mcmc", *UPPER),
    "neuralrg.mcmc": ("neuralrg.flows", "neuralrg.targets", *UPPER),
    "neuralrg.targets": ("neuralrg.flows", *UPPER),
    "neuralrg.flows": ("neuralrg.targets", "neuralrg.mcmc", *UPPER),
    "neuralrg.training": ("neuralrg.measure", "neuralrg.microscope", "neuralrg.images",
                          "neuralrg.model"),
    "neuralrg.measure": ("neuralrg.training", "neuralrg.microscope", "neuralrg.images",
                         "neuralrg.model"),
    "neuralrg.microscope": ("neuralrg.training", "neuralrg.images", "neuralrg.model"),
    "neuralrg.images": ("neuralrg.measure", "neuralrg.microscope", "neuralrg.model"),
    "neuralrg.scaling": ("neuralrg.flows", "neuralrg.targets", "neuralrg.mcmc", *UPPER),
}
ROOT_MODULES_AT_MOST = 6  # besides __init__ and __main__
WRITERS = ("savefig", "write_text", "write_bytes", "savez", "savez_compressed", "mkdir")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside functions."""
    tree, package = ast.parse(path.read_text()), module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            found |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return found


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
# the package root's __init__ is the facade: it re-exports save and load from the jobs
LIBRARIES = [name for name in MODULES
             if name != "neuralrg" and not within(name, (*FRONT, "neuralrg.jobs.runs"))]


def violations(name: str, imported: set[str]) -> list[str]:
    bad = []
    if name in LIBRARIES:
        bad += [f"{name} imports {i}" for i in imported if within(i, ORCHESTRATION)]
    for floor, banned in FORBIDDEN.items():
        if within(name, (floor,)):
            bad += [f"{name} imports {i}" for i in imported if within(i, banned)]
    return bad


@pytest.mark.parametrize("name", list(MODULES))
def test_imports_point_one_way(name):
    assert violations(name, imports(MODULES[name])) == []


@pytest.mark.parametrize("name", LIBRARIES)
def test_libraries_write_no_files(name):
    tree = ast.parse(MODULES[name].read_text())
    calls = [node.func.attr for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)]
    writes = [call for call in calls if call in WRITERS]
    torch_saves = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
                   and isinstance(node.func, ast.Attribute) and node.func.attr == "save"
                   and getattr(node.func.value, "id", "") == "torch"]
    assert writes == [] and torch_saves == [], name


def test_the_root_holds_few_modules():
    loose = [p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    assert len(loose) <= ROOT_MODULES_AT_MOST, sorted(loose)


@pytest.mark.parametrize("name", list(MODULES))
def test_the_package_cites_nothing_outside_the_repository(name):
    text = MODULES[name].read_text()
    assert "PHYSICS.md" not in text and "DESIGN.md" not in text and "../shared" not in text


def test_the_checker_sees_a_forbidden_arrow():
    assert violations("neuralrg.flows.flow", {"neuralrg.targets.ising"})
    assert violations("neuralrg.training", {"neuralrg.jobs.runs"})
    assert violations("neuralrg.targets.lattice", {"neuralrg.flows.layouts"})
    assert violations("neuralrg.measure.sampling", {"neuralrg.model"})
    assert violations("neuralrg.mcmc.smc", {"neuralrg.measure.free_energy"})
    assert not violations("neuralrg.jobs.train", {"neuralrg.jobs.runs", "neuralrg.flows"})
    relative = imports(MODULES["neuralrg.flows.flow"])
    assert "neuralrg.flows.bijector.Bijector" in relative or "neuralrg.flows.bijector" in relative
