"""A scan's configuration (the template of its points' runs, sizes, grid, warm starts,
finite-size analysis), its checks, its plan, and each point's run configuration and
directory (``SCAN_DIR/points/L<L>/<parameter><value>``)."""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from neuralrg.flows.flow import FlowConfig
from neuralrg.jobs.config import RunConfig, validate_run_config
from neuralrg.jobs.runs import atomic_write_json
from neuralrg.scaling.grid import value_label
from neuralrg.scaling.order import GROWN, SCRATCH, WARM, PlannedPoint, Point, plan_scan
from neuralrg.targets import TargetConfig, build_target, option_defaults, target_class
from neuralrg.training import TrainConfig
from neuralrg.validation import check_int, check_real

SCAN_JSON, SCAN_CSV, POINTS, FIGURES = "scan.json", "scan.csv", "points", "figures"
SCAN_FLOW = FlowConfig(hidden_s=16, hidden_t=16, mlp_depth=1)  # cheap at every L; one for all
SCAN_STEPS = 3000


def scan_run_defaults() -> RunConfig:
    """The template of a scan's points by default: the narrow network that pays at large L
    (one architecture for all sizes, so that lattice growth applies) and
    :data:`SCAN_STEPS` steps for a point trained from scratch."""
    return RunConfig(flow=SCAN_FLOW, train=TrainConfig(steps=SCAN_STEPS))


@dataclass(frozen=True)
class ScanConfig:
    """A scan: the template of every point's run (``run``: target and its fixed options,
    architecture, the training budget of a point from scratch, loss, evaluation), the sizes,
    the grid ``values`` of the target option ``parameter`` (default: the target class's
    ``scan_parameter``), where the lanes ``start`` (default: T_c for a 2D temperature, else
    the middle of the grid), warm starts (``warm_fraction`` of the steps and minutes and
    ``warm_lr_factor`` of the learning rate for a point started from a neighbour: such a
    point reaches its plateau within a few hundred steps), lattice growth
    (``grow_fraction`` of the steps and minutes for the first point of a size grown from
    L/2, which keeps improving for longer), and the finite-size analysis (bootstrap
    ``resamples``, the exponents of the data collapse, its ``critical`` value: default the
    exact 2D Ising T_c, else the Binder crossing)."""

    run: RunConfig = field(default_factory=scan_run_defaults)
    sizes: tuple[int, ...] = (8,)
    values: tuple[float, ...] = ()
    parameter: str | None = None
    start: float | None = None
    warm: bool = True
    grow: bool = True
    warm_fraction: float = 0.2
    grow_fraction: float = 0.5
    warm_lr_factor: float = 1 / 3
    resamples: int = 1000
    nu: float = 1.0
    beta_nu: float = 0.125
    gamma_nu: float = 1.75
    critical: float | None = None

    @property
    def param(self) -> str:
        """The scanned option: ``parameter``, or the target class's ``scan_parameter``."""
        return self.parameter or scan_parameter(self.run.target.name)

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "run"}
        return {"run": self.run.to_dict(), **{k: list(v) if isinstance(v, tuple) else v
                                             for k, v in data.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScanConfig:
        data = dict(data)
        run = RunConfig.from_dict(data.pop("run"))
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown ScanConfig field(s): {', '.join(sorted(unknown))}")
        for name in ("sizes", "values"):
            if name in data:
                data[name] = tuple(data[name])
        if "warm_fraction" in data:  # written before grown points had a share of their own
            data.setdefault("grow_fraction", data["warm_fraction"])
        return cls(run=run, **data)


def scan_parameter(target: str) -> str:
    """The option a target class names as its scan parameter (``scan_parameter``)."""
    name = getattr(target_class(target), "scan_parameter", None)
    if name is None:
        raise ValueError(f"target {target!r} names no scan parameter; choose one of its "
                         f"options with --param")
    return name


def default_start(scan: ScanConfig) -> float | None:
    """Where the lanes start: ``scan.start``, else T_c for a 2D temperature scan whose grid
    holds it, else ``None`` (the middle of the grid)."""
    from neuralrg.exact import T_CRITICAL_2D

    if scan.start is not None:
        return scan.start
    inside = scan.values and min(scan.values) <= T_CRITICAL_2D <= max(scan.values)
    return T_CRITICAL_2D if scan.param == "T" and scan.run.target.d == 2 and inside else None


def scan_plan(scan: ScanConfig) -> list[PlannedPoint]:
    """The scan's points in training order (see :func:`neuralrg.scaling.order.plan_scan`)."""
    return plan_scan(scan.sizes, scan.values, default_start(scan), warm=scan.warm,
                     grow=scan.grow and scan.run.flow.layout == "mera")


def point_dir(scan_dir: str | Path, point: Point, parameter: str) -> Path:
    """``SCAN_DIR/points/L<L>/<parameter><value>``."""
    return Path(scan_dir) / POINTS / f"L{point.L}" / value_label(parameter, point.value)


def point_config(scan: ScanConfig, planned: PlannedPoint, index: int,
                 source_dir: Path | None, start: str | None = None) -> RunConfig:
    """The run of one point: the template at its L and value, its budget (a share for a
    point started from a neighbour or grown), its own seed (the template's + ``index``), and
    its source (``start`` overrides the planned one, e.g. scratch after a failed source)."""
    base, point = scan.run, planned.point
    start = start or planned.start
    budget = {SCRATCH: 1.0, WARM: scan.warm_fraction, GROWN: scan.grow_fraction}[start]
    train = replace(base.train, steps=max(1, round(base.train.steps * budget)),
                    minutes=None if base.train.minutes is None else base.train.minutes * budget,
                    lr=base.train.lr * (scan.warm_lr_factor if start == WARM else 1.0),
                    seed=base.train.seed + index)
    source = None if source_dir is None else str(Path(source_dir).resolve())
    return replace(base, target=replace(base.target, L=point.L,
                                        options={**base.target.options, scan.param: point.value}),
                   flow=replace(base.flow, L=point.L), train=train,
                   init_from=source if start == GROWN else None,
                   warm_from=source if start == WARM else None, grow_from=None)


def validate_scan_config(scan: ScanConfig) -> None:
    """Check everything before any training; ``ValueError`` naming the first bad value."""
    if not scan.sizes:
        raise ValueError("no lattice size given: --L takes one or more sizes, e.g. --L 8 16")
    for L in scan.sizes:
        check_int("L", L, 2)
    if len(set(scan.sizes)) != len(scan.sizes):
        raise ValueError(f"L={sorted(scan.sizes)} names a size twice")
    if not scan.values:
        raise ValueError(f"the {scan.param} grid is empty: give start:stop:count or values")
    _check_parameter(scan)
    for name in ("init_from", "grow_from", "warm_from"):
        if getattr(scan.run, name) is not None:
            raise ValueError(f"{name.replace('_', '-')} is not a scan option: the scan "
                             "decides where each point starts")
    check_real("warm-fraction", scan.warm_fraction, 0, 1)
    check_real("grow-fraction", scan.grow_fraction, 0, 1)
    check_real("warm-lr-factor", scan.warm_lr_factor, 0, 10)
    check_int("resamples", scan.resamples, 10, 10**6)
    check_real("nu", scan.nu, 0)
    check_real("beta-nu", scan.beta_nu)
    check_real("gamma-nu", scan.gamma_nu)
    for name in ("start", "critical"):
        if getattr(scan, name) is not None:
            check_real(name, getattr(scan, name))
    _check_points(scan)


def _check_parameter(scan: ScanConfig) -> None:
    options = option_defaults(target_class(scan.run.target.name))
    if scan.param not in options:
        raise ValueError(f"param={scan.param!r} is not an option of target "
                         f"{scan.run.target.name!r}; its options: {', '.join(options) or 'none'}")


def _check_points(scan: ScanConfig) -> None:
    """Every size with the layout (and memory), every value with the target, at one value
    and the smallest size respectively (building a target at every point costs seconds)."""
    plan = scan_plan(scan)
    first = plan[0]
    for L in sorted(scan.sizes):
        planned = PlannedPoint(Point(L, first.point.value), SCRATCH, None, "start")
        validate_run_config(point_config(scan, planned, 0, None))
    smallest = min(scan.sizes)
    for value in scan.values:
        options = {**scan.run.target.options, scan.param: value}
        build_target(TargetConfig(scan.run.target.name, smallest, scan.run.target.d, options))


def prepare_scan_dir(scan: ScanConfig, scan_dir: str | Path, resume: bool,
                     force: bool) -> ScanConfig:
    """Create (or reopen) the scan directory; with ``resume`` the configuration is the one in
    its ``scan.json``. Refuses to mix two scans."""
    path = Path(scan_dir)
    record = path / SCAN_JSON
    if resume:
        return read_scan_config(path)
    if record.exists() and not force:
        raise ValueError(f"scan directory {path} already holds a scan; use --resume to "
                         "continue it or --force to start it again")
    if force:
        shutil.rmtree(path / POINTS, ignore_errors=True)
        shutil.rmtree(path / FIGURES, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    atomic_write_json(record, {"config": scan.to_dict(), "status": "started", "points": []})
    return scan


def read_scan_config(scan_dir: str | Path) -> ScanConfig:
    """The configuration a scan directory was started with; ``ValueError`` if it holds no
    readable ``scan.json``."""
    import json

    path = Path(scan_dir) / SCAN_JSON
    try:
        return ScanConfig.from_dict(json.loads(path.read_text())["config"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"scan directory {scan_dir} holds no readable {SCAN_JSON} "
                         f"({type(error).__name__}: {error})") from None


def planned_dict(planned: PlannedPoint) -> dict[str, Any]:
    """A planned point for ``scan.json``."""
    source = None if planned.source is None else asdict(planned.source)
    return {**asdict(planned.point), "start": planned.start, "source": source,
            "lane": planned.lane}
