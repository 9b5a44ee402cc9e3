"""The image model: change of variables, exact reconstructions, bits/dim, training, CLI."""

from __future__ import annotations

import importlib.util
import json
import math

import numpy as np
import pytest
import torch
from scipy import stats

from neuralrg.cli import main
from neuralrg.flows.flow import standard_normal_log_prob
from neuralrg.images import (
    ImageFlowConfig,
    ImageModel,
    MaximumLikelihood,
    build_image_flow,
    evaluate_bits_per_dim,
)
from neuralrg.images.mnist import dequantize, encode_idx
from neuralrg.training import TrainConfig, Trainer

HAS_SKLEARN = importlib.util.find_spec("sklearn") is not None
needs_sklearn = pytest.mark.skipif(not HAS_SKLEARN, reason="scikit-learn not installed")
TINY = ImageFlowConfig(n_layers=2, hidden_s=8, hidden_t=8)


def tiny_model(image_shape, dtype=torch.float64, positional=True, perturb=0.3) -> ImageModel:
    """A small model with every parameter moved off its (identity) initialisation."""
    L = 1 << (max(image_shape) - 1).bit_length()
    config = ImageFlowConfig(n_layers=2, hidden_s=8, hidden_t=8, positional=positional)
    model = ImageModel(build_image_flow(config, L), image_shape).to(dtype)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(perturb * torch.randn_like(parameter))
    return model


def random_images(n, shape, seed=0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.as_tensor(rng.integers(0, 256, size=(n, *shape), dtype=np.uint8))


@pytest.mark.parametrize("positional", [True, False], ids=["positional", "shared"])
def test_log_likelihood_is_the_change_of_variables(positional):
    model = tiny_model((3, 3), positional=positional)  # padded to 4 x 4
    y = dequantize(model.prepare(random_images(3, (3, 3))), dtype=torch.float64)

    def to_latent(flat):
        x = model.logit(flat.reshape(1, 4, 4))[0]
        return model.flow.bijector.inverse(x)[0].reshape(16)

    for sample in y:
        flat = sample.reshape(16)
        jacobian = torch.func.jacrev(to_latent)(flat)
        expected = standard_normal_log_prob(to_latent(flat)[None]) + torch.linalg.slogdet(
            jacobian
        ).logabsdet
        assert torch.allclose(model.log_prob_y(sample[None]), expected, atol=1e-9)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_generate_of_encode_is_exact_to_float_precision(dtype):
    model = tiny_model((6, 6), dtype)  # padded to 8 x 8
    padded = model.prepare(random_images(5, (6, 6)))
    x = model.logit(dequantize(padded, dtype=dtype))[0]
    tol = 200 * torch.finfo(dtype).eps * float(x.abs().max())  # a few ulps per layer
    with torch.no_grad():
        assert torch.allclose(model.flow.decode(model.flow.encode(x)), x, atol=tol, rtol=0)
        z = model.flow.bijector.inverse(x)[0]
        assert torch.allclose(model.flow.generate(z)[0], x, atol=tol, rtol=0)
    pictures, error = model.reconstructions(padded)
    assert error < tol and torch.allclose(pictures[1], pictures[0], atol=tol, rtol=0)
    assert [p.shape for p in pictures] == [(5, 6, 6)] * 4  # images, exact, 2 coarse views


def test_bits_per_dim_of_the_untrained_model_is_the_logistic_normal_density():
    """A fresh flow is the identity: q_y is the logit-normal density, known in closed form."""
    alpha = 0.05
    model = ImageModel(build_image_flow(TINY, 4), (3, 3), alpha).double()
    padded = model.prepare(random_images(4, (3, 3)))
    bits = model.bits_per_dim(padded, torch.Generator().manual_seed(7))
    y = dequantize(padded, torch.Generator().manual_seed(7), torch.float64).numpy()
    s = alpha + (1 - 2 * alpha) * y
    log_q = stats.norm.logpdf(np.log(s / (1 - s))) + np.log((1 - 2 * alpha) / (s * (1 - s)))
    # 16 padded pixels, but bits are charged to the 9 real ones.
    expected = (16 * np.log(256) - log_q.reshape(4, -1).sum(1)) / (9 * np.log(2))
    np.testing.assert_allclose(bits.detach().numpy(), expected, rtol=1e-12)
    mean, err = evaluate_bits_per_dim(model, padded, batch_size=3)
    assert math.isfinite(mean) and err > 0


def test_samples_multi_scale_pictures_and_temperature():
    model = tiny_model((8, 8), torch.float32)
    z = model.flow.sample_latent(3)
    scales = model.multi_scale(z)
    assert [tuple(p.shape) for p in scales] == [(3, 2, 2), (3, 4, 4), (3, 8, 8)]
    final = model.to_pixels(model.flow.generate(z)[0], crop=False)
    assert torch.allclose(scales[-1], final)
    cold = model.sample(4, temperature=0.0)
    assert cold.shape == (4, 8, 8) and torch.allclose(cold, cold[:1].expand(4, 8, 8))
    warm = model.sample(4, temperature=1.0)
    assert bool(((warm >= 0) & (warm <= 1)).all())
    with pytest.raises(ValueError, match="temperature"):
        model.sample(2, temperature=-1.0)


def test_a_short_training_run_lowers_heldout_bits_per_dim():
    images = random_images(600, (8, 8))  # structured data: bright left half, dark right half
    images[:, :, 4:] //= 8
    images[:, :, :4] = 255 - images[:, :, :4] // 8
    model = ImageModel(build_image_flow(ImageFlowConfig(hidden_s=16, hidden_t=16), 8), (8, 8))
    train, held = model.prepare(images[:500]), model.prepare(images[500:])
    before, _ = evaluate_bits_per_dim(model, held)
    config = TrainConfig(steps=150, batch_size=32, lr=1e-2)
    trainer = Trainer(model, None, config, objective=MaximumLikelihood(model, train, 32))
    for _ in range(config.steps):
        assert trainer.train_step() is not None
    after, err = evaluate_bits_per_dim(model, held)
    assert after < before - 1.0, (before, after, err)


@needs_sklearn
def test_mnist_command_on_the_bundled_digits_writes_the_summary(tmp_path, capsys):
    run_dir = tmp_path / "run"
    argv = ["mnist", "--max-images", "300", "--steps", "20", "--batch-size", "16",
            "--n-layers", "2", "--hidden-s", "8", "--hidden-t", "8", "--log-every", "5",
            "--no-progress", "--run-dir", str(run_dir)]
    assert main(argv) == 0
    assert "bits/dim held-out" in capsys.readouterr().out
    summary = json.loads((run_dir / "summary.json").read_text())
    for key in ("bits_per_dim_heldout", "bits_per_dim_train", "n_train", "n_heldout"):
        assert key in summary, key
    assert (summary["n_train"], summary["n_heldout"]) == (270, 30)
    assert math.isfinite(summary["bits_per_dim_heldout"]) and summary["steps"] == 20
    assert summary["reconstruction_max_abs_error"] < 1e-3
    for name in ("samples-T1.png", "samples-T0.6.png", "multiscale.png", "reconstructions.png",
                 "bits_per_dim.png"):
        assert (run_dir / name).read_bytes()[:4] == b"\x89PNG", name


def test_mnist_command_reads_idx_files_and_pads_to_32(tmp_path):
    data = tmp_path / "mnist"
    data.mkdir()
    (data / "t10k-images-idx3-ubyte.gz").write_bytes(
        encode_idx(random_images(40, (28, 28)).numpy(), compress=True))
    (data / "t10k-labels-idx1-ubyte.gz").write_bytes(
        encode_idx(np.zeros(40, dtype=np.uint8), compress=True))
    run_dir = tmp_path / "run"
    argv = ["mnist", "--data-dir", str(data), "--n-heldout", "10", "--steps", "3",
            "--batch-size", "8", "--n-layers", "2", "--hidden-s", "4", "--hidden-t", "4",
            "--no-progress", "--run-dir", str(run_dir)]
    assert main(argv) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["padded_shape"] == [32, 32] and summary["image_shape"] == [28, 28]
    assert (summary["n_train"], summary["n_heldout"]) == (30, 10)


BAD_INPUTS = {
    "zero-steps": ["--steps", "0"],
    "negative-width": ["--hidden-s", "-1"],
    "zero-heldout": ["--n-heldout", "0"],
    "nan-lr": ["--lr", "nan"],
    "bad-alpha": ["--alpha", "0.7"],
    "bad-split": ["--split", "validation"],
    "bad-device": ["--device", "tpu"],
    "missing-dir": ["--data-dir", "/nonexistent/mnist"],
    "not-a-number": ["--steps", "many"],
    "too-many-heldout": ["--n-heldout", "5000", "--max-images", "100"],
    "resume-with-flags": ["--resume", "somewhere", "--steps", "5"],
}


def exit_code(argv: list[str]) -> int:
    """``main(argv)``'s return value, or the code of the ``SystemExit`` argparse raises."""
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


@pytest.mark.parametrize("argv", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_mnist_command_rejects_bad_input_in_one_line(argv, tmp_path, capsys):
    if "5000" in argv and not HAS_SKLEARN:
        pytest.skip("scikit-learn not installed")
    run_dir = tmp_path / "run"
    assert exit_code(["mnist", *argv, "--run-dir", str(run_dir), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert not run_dir.exists()


def test_mnist_command_on_an_empty_data_dir_names_the_missing_files(tmp_path, capsys):
    assert main(["mnist", "--data-dir", str(tmp_path), "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "t10k-images" in err and len(err.strip().splitlines()) == 1
