"""`neuralrg analyze` and `neuralrg report` end to end on tiny trained runs."""

import base64
import contextlib
import io
import json
import math
import shutil
import struct
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from neuralrg.cli import main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TINY = ["--L", "4", "--steps", "30", "--batch-size", "32", "--hidden-s", "8", "--hidden-t", "8",
        "--n-layers", "2", "--log-every", "5", "--checkpoint-every", "10", "--no-progress"]
FIGURES = {"samples", "scales_generated", "scales_encoded", "receptive_fields",
           "receptive_extent", "mutual_information", "renormalized_energy", "training",
           "coverage"}


def train(path, *flags) -> str:
    assert main(["train", *TINY, *flags, "--run-dir", str(path)]) == 0
    return str(path)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return train(tmp_path_factory.mktemp("microscope") / "run")


@pytest.fixture(scope="module")
def analyzed(run_dir):
    """The manifest of `neuralrg analyze`, with what it printed under "printed"."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["analyze", run_dir, "--samples", "200", "--seed", "3"]) == 0
    with open(f"{run_dir}/analysis/analysis.json") as handle:
        return {**json.load(handle), "printed": printed.getvalue(),
                "folder": Path(run_dir) / "analysis"}


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def check_png(data: bytes) -> None:
    width, height = png_size(data)
    assert 300 <= width <= 4000 and 250 <= height <= 4000, (width, height)
    assert len(data) > 5_000


def test_analyze_writes_every_figure_with_its_numbers(analyzed):
    assert set(analyzed["figures"]) == FIGURES
    folder = analyzed["folder"]
    for name, figure in analyzed["figures"].items():
        assert "/" not in figure["png"] + figure["data"], name  # relative to analysis.json
        check_png((folder / figure["png"]).read_bytes())
        if figure["data"].endswith(".npz"):
            with np.load(folder / figure["data"]) as data:
                assert data.files, name
        else:
            assert json.loads((folder / figure["data"]).read_text())["metrics"], name
        assert figure["caption"], name


def test_analyze_reports_the_headline_numbers(analyzed, run_dir):
    numbers = analyzed["numbers"]
    assert 0 < numbers["acceptance"] <= 1
    mi = numbers["mutual_information"]
    assert math.isfinite(mi["latent_mean"]) and math.isfinite(mi["physical_mean"])
    radii = [entry["rms_radius"] for entry in numbers["receptive_field_rms_radius"]]
    assert len(radii) == 3 and all(0 < r < 4 for r in radii)  # L = 4: scales 0, 1, coarsest
    cover = numbers["coverage"]
    assert cover["ln_z_source"] == "exact" and 0 <= cover["abs_m_outside_flow_range"] <= 1
    assert math.isfinite(cover["kl_flow_target"]) and math.isfinite(cover["kl_target_flow"])
    energy = np.load(analyzed["folder"] / analyzed["figures"]["renormalized_energy"]["data"])
    assert energy["cut"].shape == (81, 9) and float(energy["constant"]) == pytest.approx(
        numbers["renormalized_energy"]["constant"])


def test_analyze_prints_where_the_files_are(analyzed, run_dir):
    printed = analyzed["printed"]
    for figure in analyzed["figures"].values():
        assert str(analyzed["folder"] / figure["png"]) in printed
    assert "mutual information" in printed and "RMS radius" in printed
    assert "Coverage: KL(q‖π)" in printed


class ImageCollector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sources, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.sources.append(dict(attrs)["src"])


def test_report_is_self_contained_and_every_image_decodes(run_dir, analyzed, capsys):
    assert main(["report", run_dir, "--samples", "200", "--seed", "3"]) == 0
    assert "report.html" in capsys.readouterr().out
    page = open(f"{run_dir}/report.html", encoding="utf-8").read()
    parser = ImageCollector()
    parser.feed(page)
    parser.close()
    assert len(parser.sources) == len(FIGURES)
    for source in parser.sources:
        prefix = "data:image/png;base64,"
        assert source.startswith(prefix)
        check_png(base64.b64decode(source[len(prefix):], validate=True))
    assert parser.tags.count("table") == 3
    for text in ("relative gap", "variational bound", "mean off-diagonal MI", "RMS radius"):
        assert text in page, text
    assert "http://" not in page and "https://" not in page


def test_one_dimensional_and_tebd_runs_are_analyzed(tmp_path):
    for k, flags in enumerate((["--d", "1", "--L", "8"], ["--layout", "tebd", "--depth", "2"])):
        run = train(tmp_path / f"run{k}", *flags, "--steps", "2")
        out = tmp_path / f"analysis{k}"
        assert main(["analyze", run, "--samples", "32", "--out", str(out)]) == 0
        manifest = json.loads((out / "analysis.json").read_text())
        for figure in manifest["figures"].values():
            assert png_size((out / figure["png"]).read_bytes())[0] >= 300
    radii = manifest["numbers"]["receptive_field_rms_radius"]
    assert [entry["scale"] for entry in radii] == ["all latents (TEBD: no scales)"]


def test_a_run_without_training_metrics_is_analyzed(run_dir, tmp_path):
    """A run saved from Python without logged metrics (as the benchmarks save theirs)."""
    bare = tmp_path / "bare"
    shutil.copytree(run_dir, bare, ignore=shutil.ignore_patterns("metrics.csv", "analysis"))
    assert main(["analyze", str(bare), "--samples", "32"]) == 0
    manifest = json.loads((bare / "analysis" / "analysis.json").read_text())
    assert {"training", "coverage"} <= set(manifest["figures"])


BAD = {
    "samples-zero": (["--samples", "0"], "samples=0"),
    "samples-too-few": (["--samples", "3"], "samples=3"),
    "seed-negative": (["--seed", "-1"], "seed=-1"),
}


@pytest.mark.parametrize("command", ["analyze", "report"])
@pytest.mark.parametrize("flags,message", BAD.values(), ids=BAD.keys())
def test_bad_input_exits_2_with_one_line(command, flags, message, tmp_path, capsys):
    assert main([command, str(tmp_path), *flags]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err


@pytest.mark.parametrize("command", ["analyze", "report"])
def test_missing_run_directory_is_a_one_line_error(command, tmp_path, capsys):
    assert main([command, str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "holds no config.json" in err
