"""Matplotlib figures (no plotting anywhere else in the package)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_training_curve(
    metrics: list[dict], ln_z_exact: float | None, path: str | Path, title: str = ""
) -> Path:
    """Loss (with its standard error) against step, the exact bound -ln Z drawn in,
    and the relative gap on a log axis when the exact value is known."""
    steps = np.array([row["step"] for row in metrics], dtype=float)
    loss = np.array([row["loss"] for row in metrics], dtype=float)
    err = np.array([row["loss_err"] for row in metrics], dtype=float)
    panels = 2 if ln_z_exact is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4), squeeze=False)
    ax = axes[0, 0]
    ax.plot(steps, loss, lw=1, label="loss  E_q[ln q - ln π]")
    ax.fill_between(steps, loss - err, loss + err, alpha=0.3, lw=0)
    if ln_z_exact is not None:
        ax.axhline(-ln_z_exact, color="k", ls="--", lw=1, label="exact bound  -ln Z")
        _zoom_to_tail(ax, loss, -ln_z_exact)
    ax.set(xlabel="training step", ylabel="variational free energy (units of T)")
    ax.set_title("Training loss" + (f" — {title}" if title else ""))
    ax.legend()
    if ln_z_exact is not None:
        gap = (loss + ln_z_exact) / abs(ln_z_exact)
        axes[0, 1].semilogy(steps, np.clip(gap, 1e-8, None), lw=1)
        axes[0, 1].set(xlabel="training step", ylabel="relative gap (ln Z - bound) / |ln Z|",
                       title="Relative gap to the exact ln Z")
        axes[0, 1].grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def _zoom_to_tail(ax, loss: np.ndarray, floor: float) -> None:
    """Keep the exact bound and the late part of the curve readable."""
    tail = loss[len(loss) // 10 :] if len(loss) > 10 else loss
    top = max(float(np.max(tail)), floor)
    span = max(top - floor, 1e-6)
    ax.set_ylim(floor - 0.1 * span, top + 0.1 * span)
