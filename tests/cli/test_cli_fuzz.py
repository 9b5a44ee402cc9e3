"""Property-based fuzzing of every subcommand's arguments: each outcome is either a clean
exit with code 2 and a one-line message, or a configuration that passed validation and
reached the heavy work (stubbed out here), or a quick successful command. Never a
traceback, never another exit code."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuralrg import cli, jobs
from neuralrg.jobs import analyze, mnist, report

NUMBERS = st.one_of(
    st.integers(-3, 40).map(str), st.sampled_from(["0", "-1", "1e9", "nan", "inf", "-inf", "2.5"]),
    st.floats(allow_nan=True, allow_infinity=True, width=32).map(repr),
)
WORDS = st.sampled_from(["", "abc", "Tc", "mera", "tebd", "ising", "phi4", "ring2d", "cuda",
                         "cpu", "float64", "float16", "--", "-1e-3", "x" * 300])
VALUES = st.one_of(NUMBERS, WORDS)

FLAGS = {
    "train": ["--target", "--target-option", "--L", "--T", "--d", "--layout", "--depth",
              "--n-disentanglers",
              "--n-layers", "--hidden-s", "--hidden-t", "--mlp-depth", "--symmetrise",
              "--steps", "--batch-size", "--lr", "--weight-decay", "--lr-schedule", "--seed",
              "--minutes", "--omega", "--delta", "--epsilon", "--beta", "--eval-samples",
              "--mc-chains", "--mc-therm", "--mc-steps", "--mc-method", "--mc-local-moves",
              "--mc-local-step-size", "--mc-local-leapfrog", "--mc-step-size", "--mc-leapfrog",
              "--dtype", "--device", "--kappa",
              "--lam", "--log-every", "--checkpoint-every", "--max-bad-steps"],
    "exact": ["--L", "--T", "--d"],
    "sample": ["--method", "--chains", "--therm", "--steps", "--skip", "--step-size",
               "--n-leapfrog", "--local-moves", "--local-step-size", "--local-leapfrog",
               "--spread", "--is-samples", "--seed", "--device"],
    "analyze": ["--samples", "--seed", "--out", "--device"],
    "report": ["--samples", "--seed", "--out", "--device"],
    "mnist": ["--steps", "--batch-size", "--lr", "--n-heldout", "--n-disentanglers",
              "--n-layers", "--hidden-s", "--hidden-t", "--mlp-depth", "--alpha", "--seed",
              "--minutes", "--max-images", "--split", "--dtype", "--device"],
}
POSITIONAL = {"sample": True, "analyze": True, "report": True}
EXAMPLES = 80


class HeavyWork(Exception):
    """Raised by the stubs: validation passed and the real work would start here."""


@pytest.fixture
def stubbed(monkeypatch):
    def heavy(*args, **kwargs):
        raise HeavyWork

    for module, name in [(jobs, "train_job"), (jobs, "grow_job"), (jobs, "sample_job"),
                         (jobs, "load_model"), (analyze, "analyze_run"), (report, "write_report"),
                         (mnist, "mnist_job")]:
        monkeypatch.setattr(module, name, heavy)


def arguments(command: str):
    pairs = st.lists(st.tuples(st.sampled_from(FLAGS[command]), VALUES), max_size=6)
    return pairs.map(lambda chosen: [command, *(["runs/none"] if POSITIONAL.get(command) else []),
                                     *[token for pair in chosen for token in pair]])


def check(argv: list[str], capsys) -> str:
    """Run one command line; return its outcome ("rejected", "valid" or "done")."""
    try:
        code = cli.main(argv)
    except SystemExit as stop:
        code = stop.code
    except HeavyWork:
        return "valid"
    err = capsys.readouterr().err
    assert code in (0, 2), (argv, code, err)
    if code == 2:
        assert len(err.strip().splitlines()) == 1, (argv, err)
        assert "Traceback" not in err
    return "done" if code == 0 else "rejected"


@pytest.mark.parametrize("command", list(FLAGS))
def test_fuzzed_arguments_never_crash(command, stubbed, capsys):
    outcomes = []

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(arguments(command))
    def run(argv):
        outcomes.append(check(argv, capsys))

    run()
    assert "rejected" in outcomes and len(outcomes) >= EXAMPLES // 2
    if command not in ("sample", "analyze", "report"):  # these need an existing run
        assert {"valid", "done"} & set(outcomes), outcomes


@pytest.mark.parametrize("argv", [["train"], ["mnist"], ["train", "--L", "4", "--T", "Tc"]])
def test_defaults_pass_validation(argv, stubbed):
    with pytest.raises(HeavyWork):
        cli.main(argv)


JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**9),
                        st.floats(allow_nan=False), st.sampled_from(["", "x", "Tc", "mera"]),
                        st.lists(st.integers(), max_size=2), st.just({}), st.just({"a": 1}))


def leaves(value, path=()):
    """Every place in a JSON object: the paths to its fields, nested ones included."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield (*path, key)
            yield from leaves(inner, (*path, key))


def replaced(config: dict, path: tuple, value) -> dict:
    if len(path) == 1:
        return {**config, path[0]: value}
    return {**config, path[0]: replaced(config[path[0]], path[1:], value)}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("fuzz") / "run"
    flags = ["--L", "4", "--steps", "2", "--batch-size", "8", "--hidden-s", "4", "--hidden-t",
             "4", "--n-layers", "1", "--eval-samples", "16", "--mc-chains", "2", "--mc-steps",
             "2", "--mc-therm", "0", "--no-progress", "--run-dir", str(run_dir)]
    assert cli.main(["train", *flags]) == 0
    return run_dir


def test_fuzzed_config_json_never_crashes(trained_run, monkeypatch, capsys):
    """Any field of config.json replaced by any JSON value: a clean one-line refusal naming
    the file, or a run that loads (the sampling itself is stubbed)."""
    def heavy(*args, **kwargs):
        raise HeavyWork

    monkeypatch.setattr(jobs, "sample_job", heavy)
    path = trained_run / "config.json"
    original = json.loads(path.read_text())
    outcomes = []

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.sampled_from(list(leaves(original))), JSON_VALUES)
    def run(where, value):
        path.write_text(json.dumps(replaced(original, where, value)))
        outcome = check(["sample", str(trained_run)], capsys)
        outcomes.append(outcome)

    try:
        run()
    finally:
        path.write_text(json.dumps(original))
    assert "rejected" in outcomes
