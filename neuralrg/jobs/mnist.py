"""The ``neuralrg mnist`` job: train the image model by maximum likelihood and report.

Data: MNIST-format IDX files from ``data_dir`` or, by default, scikit-learn's bundled 8x8
digits (no download). A seeded split keeps ``n_heldout`` images out of training; the run
directory receives config.json, checkpoints, metrics.csv, summary.json and the figures
(sample grids at several temperatures, the multi-scale picture, reconstructions, the
learning curve).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neuralrg import distributed
from neuralrg.images import (
    ImageFlowConfig,
    ImageModel,
    MaximumLikelihood,
    build_image_flow,
    evaluate_bits_per_dim,
    validate_image_flow_config,
)
from neuralrg.images.mnist import load_digits_8x8, load_mnist, split_train_heldout
from neuralrg.jobs.config import DTYPES, resolve_device
from neuralrg.jobs.lifecycle import Lifecycle, run_lifecycle
from neuralrg.jobs.runs import RunDirectory, json_kind, save_figure
from neuralrg.microscope.figures import plot_bits_per_dim_curve, plot_image_grid, plot_multi_scale
from neuralrg.training import TrainConfig, Trainer
from neuralrg.validation import check_choice, check_int, check_real

IDENTITY_SECTIONS = ("flow", "data_dir", "split", "max_images", "n_heldout")

SPLITS = ("auto", "all", "train", "test")
TEMPERATURES = (1.0, 0.8, 0.6)
N_GRID, N_MULTI_SCALE, N_RECONSTRUCTED = 64, 6, 8


def default_train_config() -> TrainConfig:
    """Optimisation defaults for images (smaller batches than for the Ising model)."""
    return TrainConfig(steps=2000, batch_size=32, lr=3e-3, log_every=50, checkpoint_every=500)


@dataclass(frozen=True)
class MnistConfig:
    """Data, architecture and optimisation of one ``neuralrg mnist`` run.

    ``data_dir=None`` uses scikit-learn's 8x8 digits; ``split="auto"`` reads every MNIST
    split present in ``data_dir``; ``n_heldout=None`` keeps 10% of the images out;
    ``max_images`` (optional) trims the data before the split, for quick runs;
    ``max_grad_norm`` clips the gradient norm (the first steps of an untrained flow on
    logit-space images can have gradients of 1e7; ``None`` turns clipping off).
    """

    data_dir: str | None = None
    split: str = "auto"
    max_images: int | None = None
    n_heldout: int | None = None
    flow: ImageFlowConfig = field(default_factory=ImageFlowConfig)
    train: TrainConfig = field(default_factory=default_train_config)
    max_grad_norm: float | None = 50.0
    dtype: str = "float32"
    device: str = "cpu"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MnistConfig:
        parts = {"flow": ImageFlowConfig, "train": TrainConfig}
        known = {f.name for f in fields(cls)}
        if set(data) - known:
            raise ValueError(f"unknown MnistConfig field(s): {sorted(set(data) - known)}")
        for key in parts:
            if key in data and not isinstance(data[key], dict):
                raise ValueError(f"{key} is {json_kind(data[key])}; expected an object of "
                                 "named fields")
        return cls(**{k: parts[k](**v) if k in parts else v for k, v in data.items()})


def validate_mnist_config(config: MnistConfig) -> None:
    """Check every field before any heavy work; raise ``ValueError`` naming the bad value."""
    check_choice("split", config.split, SPLITS)
    for name, low in (("max_images", 2), ("n_heldout", 1)):
        if getattr(config, name) is not None:
            check_int(name, getattr(config, name), low)
    if config.data_dir is not None and not Path(config.data_dir).expanduser().is_dir():
        raise ValueError(f"data directory not found: {config.data_dir}")
    check_choice("dtype", config.dtype, tuple(DTYPES))
    if config.max_grad_norm is not None:
        check_real("max_grad_norm", config.max_grad_norm, 0)
    validate_image_flow_config(config.flow)
    resolve_device(config.device)


def load_images(config: MnistConfig) -> np.ndarray:
    """uint8 ``(n, H, W)`` images named by ``config`` (errors as ``ValueError``)."""
    try:
        if config.data_dir is None:
            images = load_digits_8x8()[0]
        else:
            images = _load_mnist_split(config.data_dir, config.split)
    except (FileNotFoundError, ImportError) as error:
        raise ValueError(str(error)) from None
    return images[: config.max_images] if config.max_images else images


def _load_mnist_split(data_dir: str, split: str) -> np.ndarray:
    if split != "auto":
        return load_mnist(data_dir, split)[0]
    for candidate in ("all", "train"):
        try:
            return load_mnist(data_dir, candidate)[0]
        except FileNotFoundError:
            pass
    return load_mnist(data_dir, "test")[0]


def split_images(images: np.ndarray, config: MnistConfig) -> tuple[np.ndarray, np.ndarray]:
    """Seeded ``(train, heldout)`` split; ``n_heldout`` defaults to 10% of the images."""
    n_heldout = config.n_heldout or max(1, round(0.1 * len(images)))
    if n_heldout >= len(images):
        raise ValueError(f"n_heldout={n_heldout} leaves no training images (have {len(images)})")
    labels = np.zeros(len(images), dtype=np.uint8)
    (train, _), (held, _) = split_train_heldout(images, labels, n_heldout, config.train.seed)
    return train, held


def build_model(config: MnistConfig, image_shape: tuple[int, int]) -> ImageModel:
    """The MERA-like image model for ``image_shape`` pictures, on the configured device."""
    torch.manual_seed(config.train.seed)
    L = max(1 << max(s - 1, 0).bit_length() for s in image_shape)
    model = ImageModel(build_image_flow(config.flow, L), image_shape, config.flow.alpha)
    return model.to(device=resolve_device(config.device), dtype=DTYPES[config.dtype])


def mnist_job(config: MnistConfig, run_dir: str | Path, resume: bool = False,
              force: bool = False, progress: bool = True) -> dict:
    """Train (or resume) the image model through the run lifecycle, evaluate bits/dim, draw
    the figures, write the summary; returns the summary. Under ``torchrun`` every rank
    trains on its own batches; rank 0 writes and evaluates."""
    validate_mnist_config(config)
    train, held = split_images(load_images(config), config)
    model = build_model(config, train.shape[1:])
    distributed.broadcast_parameters(model)
    train_px, held_px = model.prepare(train), model.prepare(held)
    objective = MaximumLikelihood(model, train_px, config.train.batch_size)
    trainer = Trainer(model, None, config.train, objective=objective,
                      config_json=json.dumps(config.to_dict()),
                      max_grad_norm=config.max_grad_norm)
    run = RunDirectory(run_dir)
    job = Lifecycle(
        trainer, model, config.to_dict(),
        evaluate=lambda: {**evaluate_images(model, train_px, held_px),
                          **draw_figures(model, held_px, run, config.train.seed)},
        plot=lambda metrics, run: save_figure(plot_bits_per_dim_curve(metrics),
                                              run.file("bits_per_dim.png")),
        sections=IDENTITY_SECTIONS)
    return run_lifecycle(job, run_dir, resume=resume, force=force, progress=progress)


def evaluate_images(model: ImageModel, train_px: torch.Tensor, held_px: torch.Tensor) -> dict:
    """Bits/dim on the training and held-out images (one dequantisation each)."""
    model.eval()
    held, held_err = evaluate_bits_per_dim(model, held_px)
    train, train_err = evaluate_bits_per_dim(model, train_px)
    return {
        "bits_per_dim_heldout": held, "bits_per_dim_heldout_err": held_err,
        "bits_per_dim_train": train, "bits_per_dim_train_err": train_err,
        "n_train": len(train_px), "n_heldout": len(held_px),
        "image_shape": list(model.image_shape), "padded_shape": list(model.padded_shape),
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "bits_per_dim_convention": "per original pixel, padded pixels charged to them",
    }


def draw_figures(model: ImageModel, held_px: torch.Tensor, run: RunDirectory, seed: int) -> dict:
    """Sample grids, the multi-scale picture and reconstructions (the learning curve is drawn
    by the run lifecycle)."""
    device = held_px.device
    generator = torch.Generator(device=device).manual_seed(seed)
    for temperature in TEMPERATURES:
        images = model.sample(N_GRID, temperature, generator).cpu().numpy()
        save_figure(plot_image_grid(images, f"samples at temperature {temperature:g}"),
                    run.file(f"samples-T{temperature:g}.png"))
    z = model.flow.sample_latent(N_MULTI_SCALE, generator)
    scales = [p.cpu().numpy() for p in model.multi_scale(z)]
    save_figure(plot_multi_scale(scales), run.file("multiscale.png"))
    pictures, error = model.reconstructions(held_px[:N_RECONSTRUCTED], generator)
    labels = ["held-out image", "exact reconstruction"]
    labels += [f"scales >= {s} only" for s in range(1, len(pictures) - 1)]
    save_figure(plot_multi_scale([p.cpu().numpy() for p in pictures], labels),
                run.file("reconstructions.png"))
    return {"reconstruction_max_abs_error": error}


def format_mnist_summary(s: dict) -> str:
    """A few lines for the terminal."""
    return "\n".join([
        f"stopped: {s['stopped_reason']} after {s['steps']} steps ({s['wall_seconds']:.1f} s)",
        f"bits/dim held-out: {s['bits_per_dim_heldout']:.4f} ± {s['bits_per_dim_heldout_err']:.4f}"
        f"  ({s['n_heldout']} images)",
        f"bits/dim train:    {s['bits_per_dim_train']:.4f} ± {s['bits_per_dim_train_err']:.4f}"
        f"  ({s['n_train']} images)",
        f"reconstruction max |x - g(f(x))|: {s['reconstruction_max_abs_error']:.2e}",
    ])


def mnist_config_from_flags(flags: dict[str, Any]) -> MnistConfig:
    """Defaults of :class:`MnistConfig`, overridden by the command-line flags given."""
    def pick(cls, base):
        names = {f.name for f in fields(cls)}
        return replace(base, **{k: v for k, v in flags.items() if k in names})

    train = pick(TrainConfig, default_train_config())
    if "minutes" in flags and "steps" not in flags:
        train = replace(train, steps=10**9)  # the time budget alone ends training
    flow = pick(ImageFlowConfig, ImageFlowConfig())
    if flags.get("no_positional"):
        flow = replace(flow, positional=False)
    return pick(MnistConfig, MnistConfig(flow=flow, train=train))


def default_mnist_run_dir() -> str:
    return f"runs/mnist-{time.strftime('%Y%m%d-%H%M%S')}"
