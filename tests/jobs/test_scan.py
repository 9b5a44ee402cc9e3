"""The scan job's orchestration with a stand-in for training (exact values plus noise of the
stated error bars): plan and starts, outputs, resume after a kill, failing and flagged
points."""

import csv
import functools
import json
import math

import numpy as np
import pytest

from neuralrg.jobs import scan as scan_job_module
from neuralrg.jobs import scan_runner
from neuralrg.jobs.config import RunConfig
from neuralrg.jobs.runs import RunDirectory
from neuralrg.jobs.scan import refresh_scan, scan_job
from neuralrg.jobs.scan_config import ScanConfig, point_dir, scan_run_defaults
from neuralrg.jobs.scan_report import format_scan, write_scan_report
from neuralrg.jobs.scan_runner import DONE, FAILED, PointState, effective_source
from neuralrg.scaling import GROWN, SCRATCH, WARM, Point, parse_grid, plan_scan
from neuralrg.scaling import exact_lines as lines_module
from neuralrg.targets import TargetConfig, build_target

ERRORS = {"energy_per_site": 2e-3, "heat_capacity_per_site": 1e-2, "m2": 2e-3, "abs_m": 2e-3,
          "binder": 2e-3}
LN_Z_ERR = 0.01


def entry(value, err, rng, shift=0.0):
    measured = value + err * (rng.standard_normal() + shift)
    return {"value": measured, "err": err, "exact": value, "pull": (measured - value) / err,
            "reliable": True, "reason": None, "estimator": "markov_chain"}


class FakeTraining:
    """Writes what a trained and measured point would (exact values + noise); ``fail`` maps
    a (L, T) to the exception its training raises, ``shift`` to a free-energy offset in
    error bars."""

    def __init__(self, fail=None, shift=None):
        self.calls, self.fail, self.shift = [], fail or {}, shift or {}

    def __call__(self, config, run_dir, resume, progress):
        run_config = RunConfig.from_dict(config)
        key = (run_config.target.L, round(run_config.target.options["T"], 6))
        self.calls.append({"key": key, "resume": resume, "config": run_config})
        run = RunDirectory(run_dir)
        run.start(config, resume=resume)
        if key in self.fail:
            raise self.fail[key]
        run.write_summary(self.summary(run_config, key))
        return {"stopped_reason": "completed", "cpu_seconds": 1.0, "wall_seconds": 1.0}

    def summary(self, config, key):
        rng = np.random.default_rng(key[0] * 1000 + round(key[1] * 100))
        exact, ln_z, (scale, offset), sites = exact_references(config.target)
        f = entry(scale * ln_z + offset, abs(scale) * LN_Z_ERR, rng, self.shift.get(key, 0.0))
        f["estimator"] = "bennett"
        return {"stopped_reason": "completed", "steps": config.train.steps,
                "ln_z_exact": ln_z, "ln_z_bound": ln_z - 0.5, "relative_gap": 0.5 / ln_z,
                "gap_per_site": 0.5 / sites, "acceptance": 0.5, "pareto_k": 0.4,
                "ln_z": entry(ln_z, LN_Z_ERR, rng), "free_energy_per_site": f,
                "observables": {name: entry(exact[name], err, rng)
                                for name, err in ERRORS.items() if exact[name] is not None}}


@functools.cache
def _references(L, T):
    target = build_target(TargetConfig("ising", L, 2, {"T": T}))
    return (target.exact_observables(), target.exact_ln_z(),
            target.derived_ln_z()["free_energy_per_site"], target.n_sites)


def exact_references(target):
    return _references(target.L, target.options["T"])


@pytest.fixture
def fake(monkeypatch, request):
    monkeypatch.setattr(lines_module, "FINE_POINTS", 21)
    monkeypatch.setattr(lines_module, "MOMENT_POINTS", 9)
    if "figures" not in request.node.name:  # drawing costs seconds; one test looks at them
        monkeypatch.setattr(scan_job_module, "write_figures", lambda *args: {})

    def install(**kwargs):
        training = FakeTraining(**kwargs)
        monkeypatch.setattr(scan_runner, "train_point", training)
        return training
    return install


def small_scan(**kwargs):
    return ScanConfig(run=scan_run_defaults(), sizes=(4, 8), values=parse_grid("2.1:2.5:5"),
                      resamples=50, **kwargs)


def quiet(text):
    pass


def test_points_start_from_neighbours_and_the_scan_writes_its_outputs_and_figures(fake,
                                                                                  tmp_path):
    training = fake()
    result = scan_job(small_scan(), tmp_path / "scan", say=quiet)
    assert result["status"] == "completed" and len(training.calls) == 10
    starts = {c["key"]: c["config"] for c in training.calls}
    start4, start8 = starts[(4, 2.3)], starts[(8, 2.3)]
    assert start4.warm_from is None and start4.init_from is None and start4.train.steps == 3000
    assert start8.init_from == str(point_dir(tmp_path / "scan", Point(4, 2.3), "T").resolve())
    assert start8.train.steps == 1500 and start8.train.lr == pytest.approx(3e-3)  # grown
    warm = starts[(8, 2.4)]
    assert warm.warm_from == str(point_dir(tmp_path / "scan", Point(8, 2.3), "T").resolve())
    assert warm.train.steps == 600 and warm.train.lr == pytest.approx(1e-3)
    assert len({c["config"].train.seed for c in training.calls}) == 10
    order = [c["key"] for c in training.calls]
    assert order.index((4, 2.3)) < order.index((8, 2.3)) < order.index((8, 2.4))
    records = {(r["L"], r["T"]): r for r in result["points"]}
    assert {r["start"] for r in records.values()} == {SCRATCH, GROWN, WARM}
    assert all(r["status"] == DONE and r["flags"] == [] for r in records.values())
    assert "free_energy_integrated" in records[(8, 2.2)]["quantities"]
    rows = list(csv.DictReader((tmp_path / "scan" / "scan.csv").open()))
    assert {(int(r["L"]), float(r["T"])) for r in rows} == set(records)
    assert {r["verdict"] for r in rows} == {"reliable"}
    assert set(result["figures"]) >= {"free_energy", "energy", "heat_capacity", "m2", "binder",
                                      "collapse"}
    assert all((tmp_path / "scan" / path).exists() for path in result["figures"].values())
    crossing = result["finite_size"]["binder_crossings"][0]
    assert crossing["sizes"] == [4, 8] and 2.1 < crossing["position"] < 2.5
    text = format_scan(result)
    assert "Binder crossing L=4/8" in text and "exact T_c = 2.269185" in text
    page = write_scan_report(tmp_path / "scan").read_text()
    assert "data:image/png;base64," in page and "Binder crossing" in page


def test_a_killed_scan_resumes_without_redoing_finished_points(fake, tmp_path):
    killed = fake(fail={(4, 2.2): KeyboardInterrupt()})  # the kill comes during training
    with pytest.raises(KeyboardInterrupt):
        scan_job(small_scan(), tmp_path / "scan", say=quiet)
    finished = [c["key"] for c in killed.calls[:-1]]
    assert killed.calls[-1]["key"] == (4, 2.2) and len(finished) >= 2
    assert json.loads((tmp_path / "scan" / "scan.json").read_text())["status"] == "running"
    with pytest.raises(ValueError, match="already holds a scan; use --resume"):
        scan_job(small_scan(), tmp_path / "scan", say=quiet)
    resumed = fake()
    result = scan_job(small_scan(), tmp_path / "scan", resume=True, say=quiet)
    keys = [c["key"] for c in resumed.calls]
    assert set(keys).isdisjoint(finished) and len(keys) == 10 - len(finished)
    assert next(c for c in resumed.calls if c["key"] == (4, 2.2))["resume"] is True
    assert result["status"] == "completed"
    again = fake()
    scan_job(small_scan(), tmp_path / "scan", resume=True, say=quiet)
    assert again.calls == []


def test_a_failing_point_does_not_stop_the_scan_and_is_retried_on_resume(fake, tmp_path):
    failing = fake(fail={(8, 2.4): RuntimeError("boom")})
    result = scan_job(small_scan(), tmp_path / "scan", say=quiet)
    assert result["status"] == "incomplete" and len(failing.calls) == 10
    record = next(r for r in result["points"] if (r["L"], r["T"]) == (8, 2.4))
    assert record["status"] == FAILED and "RuntimeError: boom" in record["flags"][0]
    after = next(c["config"] for c in failing.calls if c["key"] == (8, 2.5))
    assert after.warm_from.endswith("T2.300000")  # the failed source's own source
    assert "FAILED" not in format_scan(result) and "failed: RuntimeError" in format_scan(result)
    retry = fake()
    assert scan_job(small_scan(), tmp_path / "scan", resume=True, say=quiet)["status"] == \
        "completed"
    assert [c["key"] for c in retry.calls] == [(8, 2.4)]


def test_a_free_energy_that_disagrees_with_its_neighbours_integration_is_flagged(fake, tmp_path):
    fake(shift={(8, 2.3): 50.0})
    result = scan_job(small_scan(), tmp_path / "scan", say=quiet)
    flagged = {(r["L"], r["T"]) for r in result["points"] if r["flags"]}
    assert flagged == {(8, 2.3)}
    own = next(r for r in result["points"] if (r["L"], r["T"]) == (8, 2.3))
    assert "energy integrated from T=2.2" in own["quantities"]["free_energy_per_site"]["reason"]
    rows = [r for r in csv.DictReader((tmp_path / "scan" / "scan.csv").open())
            if r["verdict"] == "UNRELIABLE"]
    assert [(r["L"], r["T"], r["quantity"]) for r in rows] == [("8", "2.3",
                                                                "free_energy_per_site")]
    assert result["status"] == "completed"


def test_a_report_of_a_killed_scan_summarises_the_finished_points(fake, tmp_path):
    fake(fail={(8, 2.3): KeyboardInterrupt()})
    with pytest.raises(KeyboardInterrupt):
        scan_job(small_scan(), tmp_path / "scan", say=quiet)
    result = refresh_scan(tmp_path / "scan")
    assert result["status"] == "incomplete"
    assert {r["status"] for r in result["points"]} == {"done", "pending"}
    assert [p["sizes"] for p in result["finite_size"]["heat_capacity_peaks"]] == [[4]]


def test_a_point_whose_source_failed_starts_from_the_nearest_finished_ancestor():
    plan = plan_scan([4, 8], [1.0, 2.0, 3.0], start=1.0)
    sources = {p.point: p.source for p in plan}
    states = {p.point: PointState(DONE) for p in plan}
    by_point = {p.point: p for p in plan}
    states[Point(4, 2.0)] = PointState(FAILED)
    assert effective_source(by_point[Point(4, 3.0)], states, sources) == (WARM, Point(4, 1.0))
    states[Point(4, 1.0)] = PointState(FAILED)
    assert effective_source(by_point[Point(4, 3.0)], states, sources) == (SCRATCH, None)
    assert effective_source(by_point[Point(8, 1.0)], states, sources) == (SCRATCH, None)
    assert effective_source(by_point[Point(8, 2.0)], states, sources) == (WARM, Point(8, 1.0))


def test_the_scan_configuration_survives_scan_json(tmp_path):
    scan = small_scan(start=2.3, warm_fraction=0.25, grow_fraction=0.4, critical=2.27)
    assert ScanConfig.from_dict(json.loads(json.dumps(scan.to_dict()))) == scan
    assert math.isclose(scan.warm_lr_factor, 1 / 3)


def test_a_scan_written_before_grow_fraction_keeps_its_budgets():
    old = {k: v for k, v in small_scan(warm_fraction=0.3).to_dict().items()
           if k != "grow_fraction"}
    assert ScanConfig.from_dict(old).grow_fraction == 0.3  # grown points had warm_fraction
