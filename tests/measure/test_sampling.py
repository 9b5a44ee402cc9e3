"""Exact sampling from trained runs: MH-corrected observables and importance-sampled ln Z
against enumeration on 4x4 Ising, the sample command, and its bad inputs."""

import json

import h5py
import numpy as np
import pytest

from neuralrg.cli import main
from neuralrg.exact import T_CRITICAL_2D, enumerate_ising
from neuralrg.flows.flow import FlowConfig
from neuralrg.jobs import train_job
from neuralrg.jobs.config import EvalConfig, RunConfig
from neuralrg.targets import TargetConfig
from neuralrg.training import TrainConfig

PULL = 4.0  # tolerance in error bars


def short_run(tmp_path_factory, T: float) -> tuple[str, dict]:
    run_dir = tmp_path_factory.mktemp(f"ising4-T{T:.3f}")
    config = RunConfig(
        target=TargetConfig(L=4, options={"T": T}),
        flow=FlowConfig(L=4, n_layers=4, hidden_s=32, hidden_t=32, symmetrise="eval"),
        train=TrainConfig(steps=250, batch_size=128, lr=3e-3, log_every=50, seed=1),
        eval=EvalConfig(),  # 8192 fresh flow samples
    )
    return str(run_dir), train_job(config, run_dir, force=True, progress=False)


@pytest.fixture(scope="module", params=[3.0, T_CRITICAL_2D], ids=["T3.0", "Tc"])
def trained(request, tmp_path_factory):
    return short_run(tmp_path_factory, request.param)


@pytest.mark.slow
def test_metropolis_observables_match_enumeration(trained):
    _, summary = trained
    exact = enumerate_ising(4, summary["T"])
    obs = summary["observables"]
    for name, value in (("energy_per_site", exact.energy_per_site), ("m2", exact.m2)):
        assert obs[name]["exact"] == pytest.approx(value)
        assert abs(obs[name]["value"] - value) < PULL * obs[name]["err"], (name, obs[name])
    assert 0.05 < summary["acceptance"] <= 1


@pytest.mark.slow
def test_importance_sampled_ln_z_matches_exact(trained):
    _, summary = trained
    assert abs(summary["ln_z_is"] - summary["ln_z_exact"]) < PULL * summary["ln_z_is_err"]
    assert summary["ln_z_bound"] < summary["ln_z_is"] + PULL * summary["ln_z_is_err"]
    assert 0 < summary["ess_per_sample"] <= 1


@pytest.mark.slow
@pytest.mark.parametrize("method", ["exact", "mh", "hybrid", "hmc-latent", "hmc-physical"])
def test_sample_command_writes_readable_samples(trained, method, capsys):
    run_dir, _ = trained
    args = [
        "sample",
        run_dir,
        "--method",
        method,
        "--chains",
        "64",
        "--therm",
        "5",
        "--steps",
        "20",
        "--step-size",
        "0.05",
        "--n-leapfrog",
        "5",
        "--seed",
        "3",
    ]
    assert main(args) == 0
    assert "acceptance" in capsys.readouterr().out
    with h5py.File(f"{run_dir}/samples-{method}.h5") as handle:
        assert handle["configurations"].shape == (20, 64, 4, 4)
        spins = handle["spins"][...]
        assert set(np.unique(spins)) <= {-1, 1}
        assert handle["log_pi"].shape == (20, 64)
        assert 0 <= handle.attrs["acceptance"] <= 1
    summary = json.loads(open(f"{run_dir}/samples-{method}.json").read())
    assert set(summary["observables"]) == {
        "energy_per_site",
        "heat_capacity_per_site",
        "m2",
        "abs_m",
        "binder",
    }
    if method.startswith("hmc"):
        assert summary["n_grad_evals"] == 1 + 5 * 25
    for entry in summary["observables"].values():
        assert {"value", "err", "exact", "pull", "reliable", "reason", "estimates"} <= set(entry)
        assert "markov_chain" in entry["estimates"]
        assert {"rhat", "ess_bulk", "tau_int"} <= set(entry["estimates"]["markov_chain"])


BAD_SAMPLE = {
    "chains-zero": (["--chains", "0"], "chains=0"),
    "steps-negative": (["--steps", "-1"], "steps=-1"),
    "therm-negative": (["--therm", "-2"], "therm=-2"),
    "skip-negative": (["--skip", "-1"], "skip=-1"),
    "step-size-zero": (["--step-size", "0"], "step-size=0"),
    "step-size-nan": (["--step-size", "nan"], "step-size=nan"),
    "leapfrog-zero": (["--n-leapfrog", "0"], "n-leapfrog=0"),
    "local-moves-zero": (["--local-moves", "0"], "local-moves=0"),
    "local-step-size-zero": (["--local-step-size", "0"], "local-step-size=0"),
    "local-step-size-inf": (["--local-step-size", "inf"], "local-step-size=inf"),
    "local-leapfrog-zero": (["--local-leapfrog", "0"], "local-leapfrog=0"),
    "spread-negative": (["--spread", "-1"], "spread=-1"),
    "is-samples-negative": (["--is-samples", "-5"], "is-samples=-5"),
    "local-unknown": (["--local", "gibbs"], "local='gibbs'"),
    "ti-nodes-negative": (["--ti-nodes", "-1"], "ti-nodes=-1"),
    "ti-steps-too-few": (["--ti-steps", "2"], "ti-steps=2"),
}


@pytest.mark.parametrize("flags,message", BAD_SAMPLE.values(), ids=BAD_SAMPLE.keys())
def test_bad_sample_input(flags, message, tmp_path, capsys):
    assert main(["sample", str(tmp_path), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_sample_needs_a_trained_run(tmp_path, capsys):
    assert main(["sample", str(tmp_path)]) == 2
    assert "holds no config.json" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["sample", str(tmp_path), "--method", "gibbs"])
    assert exit_info.value.code == 2


@pytest.mark.slow
def test_verdicts_stay_the_same_when_the_exact_values_are_hidden(trained, monkeypatch):
    import torch

    from neuralrg.jobs import load_model
    from neuralrg.measure.sampling import SampleConfig
    from neuralrg.measure.summary import measure

    run_dir, _ = trained
    model, _ = load_model(run_dir)
    config = SampleConfig(chains=32, therm=20, steps=100, importance_samples=2048)
    seen = measure(model, config, torch.Generator().manual_seed(7))
    monkeypatch.setattr(type(model.target), "exact_observables",
                        lambda self: dict.fromkeys(self.observables))
    monkeypatch.setattr(type(model), "exact_ln_z", lambda self: None)
    hidden = measure(model, config, torch.Generator().manual_seed(7))
    for name, entry in [*seen.observables.items(), ("ln_z", seen.ln_z)]:
        other = hidden[name]
        assert other.exact is None and other.pull is None
        assert (other.reliable, other.reason) == (entry.reliable, entry.reason)
    verdicts = [{k: (v["reliable"], v.get("reason")) for k, v in found.ln_z.estimates.items()}
                for found in (seen, hidden)]
    assert verdicts[0] == verdicts[1]  # every estimator of ln Z: the same verdict


@pytest.mark.slow
def test_chains_started_far_out_and_cut_short_are_flagged_not_reliable(trained, capsys):
    run_dir, _ = trained
    args = ["sample", run_dir, "--method", "hmc-physical", "--spread", "6", "--therm", "0",
            "--steps", "30", "--step-size", "0.02", "--n-leapfrog", "2", "--chains", "32",
            "--tag", "far-out"]
    assert main(args) == 0
    assert "UNRELIABLE" in capsys.readouterr().out
    summary = json.loads(open(f"{run_dir}/samples-hmc-physical-far-out.json").read())
    for name, entry in summary["observables"].items():
        if entry["pull"] is not None and abs(entry["pull"]) > 4:
            assert not entry["reliable"], (name, entry)
    assert not summary["observables"]["energy_per_site"]["reliable"]


@pytest.mark.slow
def test_default_measurement_is_reliable_and_right_on_4x4(trained):
    _, summary = trained
    assert summary["method"] == "exact"
    for name in ("energy_per_site", "heat_capacity_per_site", "m2"):
        entry = summary["observables"][name]
        assert entry["reliable"], (name, entry)
        assert abs(entry["pull"]) < PULL, (name, entry)
    for name in ("ln_z", "ising_ln_z", "free_energy_per_site"):
        assert summary[name]["reliable"] and abs(summary[name]["pull"]) < PULL, summary[name]
    exact = enumerate_ising(4, summary["T"])
    assert summary["ising_ln_z"]["exact"] == pytest.approx(exact.ln_z, rel=1e-12)
    assert summary["free_energy_per_site"]["exact"] == pytest.approx(
        -summary["T"] * exact.ln_z / 16, rel=1e-12)


@pytest.mark.slow
def test_hybrid_kernel_with_exact_local_moves_matches_enumeration(trained):
    import torch

    from neuralrg.jobs import load_model
    from neuralrg.measure.sampling import SampleConfig
    from neuralrg.measure.summary import measure

    run_dir, summary = trained
    model, _ = load_model(run_dir)
    config = SampleConfig(method="hybrid", local="exact", chains=32, therm=50, steps=600,
                          importance_samples=2048)
    measured = measure(model, config, torch.Generator().manual_seed(11))
    assert measured.details["local_move"] == "exact" and measured.details["n_grad_evals"] == 0
    exact = enumerate_ising(4, summary["T"])
    for name, value in (("energy_per_site", exact.energy_per_site), ("m2", exact.m2)):
        entry = measured[name]
        assert abs(entry.value - value) < PULL * entry.err, (name, entry)


@pytest.mark.slow
def test_sample_command_runs_smc_instead_of_chains(trained, capsys):
    run_dir, _ = trained
    args = ["sample", run_dir, "--method", "smc", "--smc-particles", "64", "--smc-repeats", "2",
            "--is-samples", "1024", "--seed", "5"]
    assert main(args) == 0
    assert "annealed SMC from the flow" in capsys.readouterr().out
    summary = json.loads(open(f"{run_dir}/samples-smc.json").read())
    smc = summary["ln_z"]["estimates"]["smc"]
    assert smc["runs"] == 4 and {"ais_value", "pareto_k", "rungs"} <= set(smc)
    assert "smc" in summary["observables"]["m2"]["estimates"]
    with h5py.File(f"{run_dir}/samples-smc.h5") as handle:
        assert handle["configurations"].shape == (1, 128, 4, 4)
        assert handle["log_weights"].shape == (128,)
