"""Matplotlib figures of the RG microscope and of training (a scan's are in
:mod:`neuralrg.scaling.figures`). Every ``plot_*`` function
returns its :class:`~matplotlib.figure.Figure`; the jobs save them
(:func:`neuralrg.jobs.runs.save_figure`), so this module writes no files. It leaves the
backend alone (a notebook keeps its inline figures); the command line chooses Agg."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def plot_training_curve(
    metrics: list[dict], ln_z_exact: float | None, title: str = ""
) -> Figure:
    """Loss (with its standard error) against step, the exact bound -ln Z drawn in,
    and the relative gap on a log axis when the exact value is known."""
    steps = np.array([row["step"] for row in metrics], dtype=float)
    loss = np.array([row["loss"] for row in metrics], dtype=float)
    err = np.array([row["loss_err"] for row in metrics], dtype=float)
    panels = 2 if ln_z_exact is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4), squeeze=False, dpi=110)
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
    return fig


def _zoom_to_tail(ax, loss: np.ndarray, floor: float) -> None:
    """Keep the exact bound and the late part of the curve readable."""
    tail = loss[len(loss) // 10 :] if len(loss) > 10 else loss
    top = max(float(np.max(tail)), floor)
    span = max(top - floor, 1e-6)
    ax.set_ylim(floor - 0.1 * span, top + 0.1 * span)


# --- RG microscope figures (neuralrg analyze) ----------------------------------------------

DIVERGING = "RdBu_r"


def _done(fig: Figure) -> Figure:
    fig.set_dpi(100)
    return fig


def _symmetric(values: np.ndarray) -> dict:
    bound = float(np.nanmax(np.abs(values))) or 1.0
    return {"vmin": -bound, "vmax": bound, "cmap": DIVERGING}


def _as_image(config: np.ndarray) -> np.ndarray:
    """A 2D configuration as it is, a 1D one as a single row."""
    return config if config.ndim == 2 else config[None, :]


def tile(configs: np.ndarray, columns: int) -> np.ndarray:
    """Configurations ``(n, *shape)`` tiled into one image, NaN gaps one pixel wide."""
    images = [_as_image(c) for c in configs]
    h, w = images[0].shape
    rows = -(-len(images) // columns)
    out = np.full((rows * (h + 1) - 1, columns * (w + 1) - 1), np.nan)
    for k, image in enumerate(images):
        r, c = divmod(k, columns)
        out[r * (h + 1): r * (h + 1) + h, c * (w + 1): c * (w + 1) + w] = image
    return out


def plot_scale_views(views: list[np.ndarray], L: int, title: str) -> Figure:
    """One column per scale (coarsest first), one row per sample (2D) or one image with a
    row per sample (1D); each view is drawn over the whole lattice, a coarse site covering
    the block of fine sites it heads."""
    one_d, n_samples, n_views = views[0].ndim == 2, views[0].shape[0], len(views)
    rows = 1 if one_d else n_samples
    fig, axes = plt.subplots(rows, n_views, figsize=(max(2.3 * n_views, 4.5), 2.2 * rows + 1.2),
                             squeeze=False, layout="constrained")
    for j, view in enumerate(views):
        style, spacing = _symmetric(view), L // view.shape[1]
        images = [view] if one_d else list(view)
        for i, image in enumerate(images):
            ax = axes[i, j]
            extent = (-0.5, L - 0.5, image.shape[0] - 0.5 if one_d else L - 0.5, -0.5)
            im = ax.imshow(image, extent=extent, aspect="auto", **style)
            ax.set_xlabel("x (lattice spacings)" if i == rows - 1 else "")
            ylabel = "sample" if one_d else f"sample {i}\ny (lattice spacings)"
            ax.set_ylabel(ylabel if j == 0 else "")
            ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        axes[0, j].set_title(f"{view.shape[1]}^{view.ndim - 1} sites, spacing {spacing}",
                             fontsize=9)
        fig.colorbar(im, ax=axes[:, j], orientation="horizontal", label="variable value")
    fig.suptitle(title)
    return _done(fig)


def plot_sample_grids(panels: dict[str, np.ndarray], title: str) -> Figure:
    """Grids of configurations (values P(s = +1 | x) in [0, 1]), one panel per entry."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.6),
                             squeeze=False, layout="constrained")
    for ax, (name, configs) in zip(axes[0], panels.items(), strict=True):
        if configs.ndim == 2:  # 1D: one configuration per row
            image, labels = configs, ("site i", "configuration")
        else:
            image = tile(configs, int(np.ceil(np.sqrt(len(configs)))))
            labels = ("x (one L x L tile per configuration)", "y")
        im = ax.imshow(image, vmin=0, vmax=1, cmap="gray_r", aspect="auto")
        ax.set_title(name, fontsize=10)
        ax.set(xlabel=labels[0], ylabel=labels[1])
    fig.colorbar(im, ax=axes[0, -1], label="P(s_i = +1 | x) = sigmoid(2 x_i)")
    fig.suptitle(title)
    return _done(fig)


def plot_receptive_fields(fields: list[np.ndarray], sites: list[list[tuple]],
                          row_labels: list[str], title: str) -> Figure:
    """Rows = latent scales (finest first); ``fields[r]`` is ``(n_latents, *lattice)``,
    the response of x to each latent: images with the latent's site marked (2D), or
    profiles against the site (1D, one panel per scale)."""
    one_d = fields[0].ndim == 2
    n_cols = 1 if one_d else max(len(f) for f in fields)
    fig, axes = plt.subplots(len(fields), n_cols, squeeze=False, layout="constrained",
                             figsize=(max(2.6 * n_cols + 1, 7), 2.3 * len(fields) + 0.5))
    for r, (row, row_sites) in enumerate(zip(fields, sites, strict=True)):
        if one_d:
            _draw_profiles(axes[r, 0], row, row_sites)
        else:
            _draw_images(fig, axes[r], row, row_sites)
        axes[r, 0].set_ylabel(row_labels[r], fontsize=8)
    fig.suptitle(title, fontsize=10)
    return _done(fig)


def _draw_profiles(ax, row: np.ndarray, row_sites: list[tuple]) -> None:
    for field, site in zip(row, row_sites, strict=True):
        line = ax.plot(field, "o-", ms=3, label=f"latent at site {site[0]}")[0]
        ax.axvline(site[0], color=line.get_color(), ls=":", lw=1)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("site i (lattice spacings)")
    ax.legend(fontsize=7, title="∂x_i / ∂z_k", title_fontsize=7)


def _draw_images(fig, axes, row: np.ndarray, row_sites: list[tuple]) -> None:
    style = _symmetric(row)
    for c, ax in enumerate(axes):
        if c >= len(row):
            ax.axis("off")
            continue
        im = ax.imshow(row[c], **style)
        ax.plot(row_sites[c][1], row_sites[c][0], "kx", ms=7)
        ax.set_xlabel("x (lattice spacings)")
        ax.set_title(f"latent at site {row_sites[c]}", fontsize=8)
    fig.colorbar(im, ax=list(axes), label="∂x_i / ∂z_k")


def plot_receptive_extent(extents: list[float], labels: list[str], ceiling: float,
                          title: str) -> Figure:
    """RMS radius of the receptive fields per latent scale, against the radius of a
    response spread uniformly over the whole lattice (``ceiling``)."""
    fig, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
    ax.plot(range(len(extents)), extents, "o-", label="mean over the latents of the scale")
    ax.axhline(ceiling, color="k", ls="--", lw=1, label="uniform over the whole lattice")
    ax.set_xticks(range(len(extents)), labels, fontsize=8)
    ax.set(xlabel="latent scale (finest to coarsest)", ylabel="RMS radius (lattice spacings)",
           ylim=(0, 1.1 * ceiling))
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    return _done(fig)


def plot_mutual_information(matrices: dict[str, np.ndarray], title: str,
                            floor: float = 1e-4) -> Figure:
    """Pairwise mutual information matrices on one logarithmic colour scale."""
    top = max(float(np.nanmax(m)) for m in matrices.values())
    norm = matplotlib.colors.LogNorm(vmin=floor, vmax=max(top, 10 * floor))
    fig, axes = plt.subplots(1, len(matrices), figsize=(3.6 * len(matrices) + 1, 4.2),
                             squeeze=False, layout="constrained")
    for ax, (name, matrix) in zip(axes[0], matrices.items(), strict=True):
        im = ax.imshow(np.clip(matrix, floor, None), norm=norm, cmap="viridis")
        ax.set_title(name, fontsize=9)
        ax.set(xlabel="variable index", ylabel="variable index")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    fig.colorbar(im, ax=axes[0, :], label="mutual information (nats, log scale)")
    fig.suptitle(f"{title}\n(values below {floor:g} drawn at {floor:g}; diagonal left blank)",
                 fontsize=10)
    return _done(fig)


def plot_renormalized_energy(energy: np.ndarray, prior: np.ndarray, t: np.ndarray,
                             cut: np.ndarray, cut_prior: np.ndarray,
                             title: str, cut_label: str) -> Figure:
    """E_eff - C against |z|^2 / 2: histograms, scatter, and a cut along one latent.
    ``cut`` is ``(len(t), n_lines)``, line 0 with the other latents at zero."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4), layout="constrained")
    bins = np.linspace(min(energy.min(), prior.min()), max(energy.max(), prior.max()), 50)
    axes[0].hist(prior, bins, density=True, alpha=0.5, label="½|z|² (Gaussian prior)")
    axes[0].hist(energy, bins, density=True, alpha=0.5, label="E_eff(z) - C")
    axes[0].set(xlabel="energy (units of k_B T)", ylabel="probability density",
                title="Distribution over z ~ N(0, I)")
    axes[0].legend(fontsize=8)
    axes[1].scatter(prior, energy, s=4, alpha=0.4)
    axes[1].plot(bins, bins, "k--", lw=1, label="E_eff - C = ½|z|²")
    axes[1].set(xlabel="½|z|² (units of k_B T)", ylabel="E_eff(z) - C (units of k_B T)",
                title="Per sample")
    axes[1].legend(fontsize=8)
    thin = axes[2].plot(t, cut[:, 1:], color="tab:blue", lw=0.7, alpha=0.5)
    if thin:
        thin[0].set_label("other latents sampled")
    axes[2].plot(t, cut[:, 0], color="tab:red", lw=2, label="other latents at 0")
    axes[2].plot(t, cut_prior, "k--", lw=1, label="prior t²/2")
    axes[2].set(xlabel=cut_label, ylabel="E_eff - C - ½|z_⊥|² (units of k_B T)",
                title="Effective potential along a 1D cut")
    axes[2].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    return _done(fig)


def plot_coverage(arrays: dict[str, np.ndarray], title: str) -> Figure:
    """Histograms of ``log_w_flow`` and ``log_w_target`` (ln pi - ln q - ln Z of flow samples
    and of samples of pi; 0 for a perfect flow) and, if given, of ``abs_m_flow`` and
    ``abs_m_target``: where the two disagree the flow misses part of the target."""
    labels = ("flow samples x ~ q", "equilibrium samples x ~ π")
    panels = 1 + ("abs_m_flow" in arrays)
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 4.4), layout="constrained",
                             squeeze=False)
    _overlaid_histograms(axes[0, 0], labels, arrays["log_w_flow"], arrays["log_w_target"])
    axes[0, 0].set_yscale("log")
    axes[0, 0].axvline(0, color="k", ls=":", lw=1)
    axes[0, 0].set(xlabel="ln π(x) - ln q(x) - ln Z", ylabel="probability density",
                   title="Log-weights (0 everywhere for a perfect flow)")
    if panels == 2:
        _overlaid_histograms(axes[0, 1], labels, arrays["abs_m_flow"], arrays["abs_m_target"])
        axes[0, 1].set(xlabel="|m| of spins drawn given x", ylabel="probability density",
                       title="Magnetisation")
    fig.suptitle(title, fontsize=10)
    return _done(fig)


def _overlaid_histograms(ax, labels: tuple[str, ...], *samples: np.ndarray) -> None:
    values = np.concatenate(samples)
    bins = np.linspace(values.min(), values.max(), 60)
    for label, data in zip(labels, samples, strict=True):
        ax.hist(data, bins, density=True, histtype="step", lw=1.5, label=label)
    ax.legend(fontsize=8)


def plot_training_overview(metrics: list[dict], ln_z_exact: float | None, summary: dict,
                           title: str) -> Figure:
    """Loss with the exact bound, relative gap (log axis), acceptance and observables
    against their exact values over training; quantities only measured at the end of
    training (from ``summary``) are drawn as one point at the last step."""
    steps = np.array([row["step"] for row in metrics], dtype=float)
    fig, axes = plt.subplots(2, 2, figsize=(11, 8), layout="constrained")
    _loss_panel(axes[0, 0], metrics, steps, ln_z_exact)
    _gap_panel(axes[0, 1], metrics, steps)
    _series_panel(axes[1, 0], metrics, steps, {"acceptance": summary.get("acceptance")},
                  "Metropolis acceptance ratio", "acceptance")
    observables = summary.get("observables") or {}
    _observables_panel(axes[1, 1], metrics, steps, observables)
    if len(steps):
        for ax in axes.flat:
            ax.set_xlim(0, 1.05 * steps[-1])
    fig.suptitle(title)
    return _done(fig)


def _column(metrics: list[dict], name: str) -> np.ndarray | None:
    values = [row.get(name) for row in metrics]
    if all(v is None for v in values):
        return None
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _loss_panel(ax, metrics: list[dict], steps: np.ndarray, ln_z_exact: float | None) -> None:
    loss, err = _column(metrics, "loss"), _column(metrics, "loss_err")
    ax.set(xlabel="training step", ylabel="variational free energy (units of k_B T)",
           title="Training loss")
    if loss is None:  # e.g. a run saved from Python without logged metrics
        ax.text(0.5, 0.5, "no training metrics recorded", ha="center", transform=ax.transAxes)
        return
    ax.plot(steps, loss, lw=1, label="loss  E_q[ln q - ln π]")
    if err is not None:
        ax.fill_between(steps, loss - err, loss + err, alpha=0.3, lw=0)
    if ln_z_exact is not None:
        ax.axhline(-ln_z_exact, color="k", ls="--", lw=1, label="exact bound  -ln Z")
        _zoom_to_tail(ax, loss, -ln_z_exact)
    ax.legend(fontsize=8)


def _gap_panel(ax, metrics: list[dict], steps: np.ndarray) -> None:
    gap = _column(metrics, "relative_gap")
    if gap is not None:
        ax.semilogy(steps, np.clip(gap, 1e-8, None), lw=1)
    else:
        ax.text(0.5, 0.5, "no exact ln Z: gap unknown", ha="center", transform=ax.transAxes)
    ax.set(xlabel="training step", ylabel="(ln Z - bound) / |ln Z|",
           title="Relative gap to the exact ln Z")
    ax.grid(True, which="both", alpha=0.3)


def _series_panel(ax, metrics: list[dict], steps: np.ndarray, finals: dict, title: str,
                  ylabel: str) -> None:
    for name, final in finals.items():
        series = _column(metrics, name)
        if series is not None:
            ax.plot(steps, series, lw=1, label=name)
        if final is not None and len(steps):
            ax.plot(steps[-1], final, "o", label=f"{name} after training: {final:.3f}")
    if not ax.lines:
        ax.text(0.5, 0.5, "not measured for this run", ha="center", transform=ax.transAxes)
    else:
        ax.legend(fontsize=8)
    ax.set(xlabel="training step", ylabel=ylabel, title=title)


def _observables_panel(ax, metrics: list[dict], steps: np.ndarray, observables: dict) -> None:
    for name, entry in observables.items():
        exact = entry.get("exact")
        if not exact:
            continue
        series = _column(metrics, name)
        if series is not None:
            ax.plot(steps, (series - exact) / abs(exact), lw=1, label=name)
        if entry.get("value") is not None and len(steps):
            err = entry.get("err") or 0.0
            ax.errorbar(steps[-1], (entry["value"] - exact) / abs(exact), err / abs(exact),
                        fmt="o", capsize=3, label=f"{name} (final)")
    ax.axhline(0, color="k", ls="--", lw=1)
    if len(ax.lines) <= 1:
        ax.text(0.5, 0.6, "no observables with exact values", ha="center",
                transform=ax.transAxes)
    else:
        ax.legend(fontsize=7)
    ax.set(xlabel="training step", ylabel="(value - exact) / |exact|",
           title="Observables against exact values")


def plot_image_grid(images: np.ndarray, title: str = "") -> Figure:
    """Grey images ``(n, H, W)`` with values in [0, 1] tiled into one square grid."""
    columns = int(np.ceil(np.sqrt(len(images))))
    fig, ax = plt.subplots(figsize=(6, 6.3), layout="constrained")
    ax.imshow(tile(images, columns), vmin=0, vmax=1, cmap="gray", interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title)
    return _done(fig)


def plot_multi_scale(columns: list[np.ndarray],
                     labels: list[str] | None = None, title: str = "") -> Figure:
    """A table of grey pictures in [0, 1]: one column per entry ``(n, h, w)`` (e.g. one
    sample at every scale, coarsest first), one row per picture; each picture fills its cell
    whatever its resolution. Columns are labelled ``h x w`` unless ``labels`` are given."""
    n_rows, n_cols = len(columns[0]), len(columns)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.4 * n_cols + 0.4, 1.4 * n_rows + 0.7),
                             squeeze=False, layout="constrained")
    for j, pictures in enumerate(columns):
        for i, picture in enumerate(pictures):
            axes[i, j].imshow(picture, vmin=0, vmax=1, cmap="gray", interpolation="nearest")
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
        label = labels[j] if labels else f"{pictures.shape[1]} x {pictures.shape[2]}"
        axes[0, j].set_title(label, fontsize=8)
    if title:
        fig.suptitle(title)
    return _done(fig)


def plot_bits_per_dim_curve(metrics: list[dict], title: str = "") -> Figure:
    """Training bits/dim (mean over each logged batch, with its standard error) per step."""
    steps = np.array([row["step"] for row in metrics], dtype=float)
    loss = np.array([row["loss"] for row in metrics], dtype=float)
    err = np.array([row["loss_err"] for row in metrics], dtype=float)
    fig, ax = plt.subplots(figsize=(5.5, 4), layout="constrained")
    ax.plot(steps, loss, lw=1)
    ax.fill_between(steps, loss - err, loss + err, alpha=0.3, lw=0)
    tail = loss[len(loss) // 10:] if len(loss) > 10 else loss
    ax.set_ylim(float(np.min(tail)) - 0.1, float(np.max(tail)) + 0.1)
    ax.set(xlabel="training step", ylabel="bits / dim (training batch)",
           title=title or "Maximum-likelihood training")
    ax.grid(True, alpha=0.3)
    return _done(fig)
