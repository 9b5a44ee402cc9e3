import math

import pytest
import torch
from scipy.stats import norm

from neuralrg.cli import main
from neuralrg.targets import TargetConfig, build_target
from neuralrg.targets.phi4 import Phi4
from neuralrg.targets.toy import ToyDensity


def test_phi4_action_matches_an_explicit_sum():
    target = Phi4(L=3, d=2, kappa=0.25, lam=0.5)
    phi = torch.randn(2, 3, 3, dtype=torch.float64)
    expected = torch.zeros(2, dtype=torch.float64)
    for b in range(2):
        for i in range(3):
            for j in range(3):
                p = phi[b, i, j]
                hop = p * (phi[b, (i + 1) % 3, j] + phi[b, i, (j + 1) % 3])
                expected[b] += -2 * 0.25 * hop + p**2 + 0.5 * (p**2 - 1) ** 2
    assert torch.allclose(target.action(phi), expected)
    assert torch.allclose(target.log_prob(-phi), target.log_prob(phi))


def test_toy_quadrature_against_closed_forms():
    assert ToyDensity("mog2").quadrature_ln_z() == pytest.approx(math.log(2 * math.pi), abs=1e-9)
    sigma, radius = 0.4, 2.0
    ring = 2 * math.pi * (sigma**2 * math.exp(-(radius**2) / (2 * sigma**2))
                          + radius * sigma * math.sqrt(2 * math.pi) * norm.cdf(radius / sigma))
    assert ToyDensity("ring2d").quadrature_ln_z() == pytest.approx(math.log(ring), abs=1e-6)
    wave = math.log(math.sqrt(2 * math.pi) * 0.4 * math.sqrt(2 * math.pi) * 2)
    assert ToyDensity("wave").quadrature_ln_z() == pytest.approx(wave, abs=1e-6)


def test_training_on_a_toy_density_approaches_its_ln_z(tmp_path, capsys):
    args = ["train", "--target", "mog2", "--steps", "300", "--batch-size", "128",
            "--hidden-s", "16", "--hidden-t", "16", "--eval-samples", "4096", "--mc-steps", "5",
            "--run-dir", str(tmp_path / "run"), "--no-progress"]
    assert main(args) == 0
    import json

    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["ln_z_exact"] == pytest.approx(math.log(2 * math.pi), abs=1e-6)
    assert summary["ln_z_bound"] < summary["ln_z_exact"] + 4 * summary["ln_z_bound_err"]
    assert abs(summary["ln_z_is"] - summary["ln_z_exact"]) < 4 * summary["ln_z_is_err"] + 0.05


@pytest.mark.parametrize("config,match", [
    (TargetConfig(name="ring2d", L=8, d=2), "needs L=2 and d=1"),
    (TargetConfig(name="phi4", L=4, options={"kappa": -1.0}), "kappa=-1.0"),
    (TargetConfig(name="phi4", L=4, options={"lam": math.nan}), "lam=nan"),
    (TargetConfig(name="xy"), "target='xy'"),
])
def test_bad_target_parameters(config, match):
    with pytest.raises(ValueError, match=match):
        build_target(config)
