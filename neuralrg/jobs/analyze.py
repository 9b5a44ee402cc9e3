"""``neuralrg analyze``: the RG microscope's figures for a trained run, each PNG with the
numbers behind it next to it (.npz or .json), and a manifest ``analysis.json`` that names
its files relative to its own folder (a copied folder is complete on its own).

The science is in :mod:`neuralrg.microscope.analysis`, the drawing in
:mod:`neuralrg.microscope.figures`; this module samples from the run's model, feeds one to
the other and writes the files."""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neuralrg.estimators import smooth_function
from neuralrg.jobs.model import RunModel, load_model
from neuralrg.jobs.runs import (
    SUMMARY,
    RunDirectory,
    atomic_write_bytes,
    atomic_write_json,
    save_figure,
)
from neuralrg.mcmc import independent_metropolis
from neuralrg.measure.observables import chain_moments, has_observables
from neuralrg.microscope import analysis, figures
from neuralrg.progress import Progress
from neuralrg.targets import capability, random_signs
from neuralrg.validation import check_int

ANALYSIS_DIR, MANIFEST = "analysis", "analysis.json"
N_SHOW, N_GRID, N_JACOBIAN, N_THERM, N_STEPS = 3, 16, 64, 20, 5
N_EXACT_BURN_IN = 20  # exact moves from flow samples to the coverage figure's samples of pi


@dataclass
class Analysis:
    """What ``analyze_run`` is working on, and what it has produced so far."""

    model: RunModel
    run: RunDirectory
    out: Path
    generator: torch.Generator
    history: tuple[list[dict], dict]  # the run's metrics rows and summary, read up front
    figures: dict[str, dict[str, str]] = field(default_factory=dict)
    numbers: dict[str, Any] = field(default_factory=dict)

    @property
    def bijector(self):
        return self.model.flow.bijector

    @property
    def shape(self) -> tuple[int, ...]:
        return self.model.flow.event_shape

    def title(self, what: str) -> str:
        layout = self.model.config.flow.layout.upper()
        return f"{what} — {layout}, {capability(self.model.target, 'describe')()}"

    def figure(self, name: str, figure) -> Path:
        """Save ``figure`` as ``name.png`` in the output folder."""
        return save_figure(figure, self.out / f"{name}.png")

    def save(self, name: str, figure: Path, caption: str, **arrays: Any) -> None:
        """Register a figure and write the numbers behind it next to it."""
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **{k: np.asarray(v) for k, v in arrays.items()})
        atomic_write_bytes(self.out / f"{name}.npz", buffer.getvalue())
        self.figures[name] = {"png": figure.name, "data": f"{name}.npz", "caption": caption}


def validate_analysis_args(samples: int, seed: int) -> None:
    """Raise ``ValueError`` for a bad sample count or seed, before any heavy work."""
    check_int("samples", samples, 16)
    check_int("seed", seed, 0)


def analysis_folder(run: RunDirectory, out: str | Path | None = None) -> Path:
    """Where the analysis of ``run`` goes (``out``, default ``RUN_DIR/analysis``), checked
    before any work: the run exists, and the folder can be written (``ValueError``)."""
    run.read_config()
    return run.destination(out, ANALYSIS_DIR, "the analysis", folder=True)


def analyze_run(run_dir: str | Path, out: str | Path | None = None, samples: int = 2000,
                seed: int = 0, device: str | None = None, target: str | None = None,
                progress: bool = True) -> dict[str, Any]:
    """Write every RG-microscope figure of the run in ``run_dir`` to ``out``
    (default ``run_dir/analysis``) and return the manifest also saved there as
    ``analysis.json``; ``target`` names a run's user target (see
    :func:`neuralrg.jobs.model.load_model`); ``progress`` shows each part as it is done."""
    validate_analysis_args(samples, seed)
    folder = analysis_folder(RunDirectory(run_dir), out)
    model, run = load_model(run_dir, device, target=target)
    model.flow.eval()
    history = (run.read_metrics(), run.read_summary() if run.file(SUMMARY).exists() else {})
    with run.writing_to(folder):
        folder.mkdir(parents=True, exist_ok=True)
        generator = torch.Generator(device=model.flow_device).manual_seed(seed)
        job = Analysis(model, run, folder, generator, history)
        parts = [("scales", lambda: _scale_figures(job, x)),
                 ("receptive fields", lambda: _receptive_field_figures(job)),
                 ("mutual information", lambda: _mutual_information_figure(job, x)),
                 ("renormalized energy", lambda: _energy_figure(job, samples)),
                 ("training", lambda: _training_figure(job))]
        if capability(model.target, "exact_move") is not None:
            parts.append(("coverage", lambda: _coverage_figure(job, samples)))
        bar = Progress(1 + len(parts), enabled=progress, every=0.0, unit="part")
        x = _canonical(job, _metropolis(job, samples))
        bar.update(1, "samples")
        for name, draw in parts:
            draw()
            bar.update(1, name)
        bar.close()
        manifest = {"run_dir": os.path.relpath(run.path, folder), "samples": samples,
                    "seed": seed, "numbers": job.numbers, "figures": job.figures}
        atomic_write_json(folder / MANIFEST, manifest)
    return manifest


def _metropolis(job: Analysis, samples: int) -> torch.Tensor:
    """``samples`` independent chains of flow-proposal Metropolis; returns their last states
    (samples of pi once the chains have converged: the energy against its exact value in
    the training figure checks this) and plots proposals against them."""
    flow, target = getattr(job.model, "sampler", job.model.flow), job.model.target

    def propose(n: int):
        with torch.no_grad():
            return flow.sample(n, job.generator)

    result = independent_metropolis(propose, target.log_prob, samples, N_STEPS, n_therm=N_THERM,
                                    generator=job.generator)
    x = result.samples[-1]
    proposals = propose(N_GRID)[0]
    job.numbers["acceptance"] = result.acceptance
    job.numbers["observables"] = _quick_observables(job, x)
    grids = {"flow proposals x ~ q": _spin_probability(proposals),
             "Metropolis samples x ~ π": _spin_probability(x[:N_GRID])}
    title = job.title(f"Proposals and samples, acceptance {result.acceptance:.3f}")
    png = job.figure("samples", figures.plot_sample_grids(grids, title))
    job.save("samples", png, "Flow proposals and Metropolis-accepted samples, shown as "
             f"P(s=+1|x) = sigmoid(2x); acceptance over {N_STEPS} steps of {samples} chains "
             f"after {N_THERM} thermalisation steps.", proposals=proposals.cpu(),
             metropolis=x[:N_GRID].cpu(), acceptance=result.acceptance)
    return x


def _quick_observables(job: Analysis, x: torch.Tensor) -> dict[str, dict[str, Any]]:
    """The target's observables of the last Metropolis states, next to their exact values,
    marked unreliable: the figures need samples, not a converged measurement."""
    target = job.model.target
    if not has_observables(target):
        return {}
    moments = chain_moments(target, x[None], job.generator)[:, 0]  # (n_moments, chains)
    exact = target.exact_observables()
    reason = (f"{N_STEPS + N_THERM} flow-proposal Metropolis steps, enough for the figures "
              "but not a converged measurement (use neuralrg sample)")
    entries = {}
    for name, combine in target.observables.items():
        value, influence = smooth_function(moments, combine)  # independent chains
        entries[name] = {"value": value, "err": float(influence.std() / math.sqrt(influence.size)),
                         "exact": exact.get(name), "reliable": False, "reason": reason}
    return entries


def _spin_probability(x: torch.Tensor) -> np.ndarray:
    return torch.sigmoid(2 * x).cpu().numpy()


def _scale_figures(job: Analysis, x: torch.Tensor) -> None:
    z = job.model.flow.sample_latent(N_SHOW, job.generator)
    single = analysis.n_decimations(job.bijector) == 0
    note = " (TEBD has no scales: one view)" if single else ""
    for name, views, what in [
        ("scales_generated", analysis.scale_views(job.bijector, z), "generation z → x"),
        ("scales_encoded", analysis.encode_views(job.bijector, x[:N_SHOW]), "RG x → z"),
    ]:
        arrays = [v.cpu().numpy() for v in views]
        title = job.title(f"Configuration at every scale, coarsest to finest, {what}{note}")
        png = job.figure(name, figures.plot_scale_views(arrays, job.shape[0], title))
        caption = (f"Variables at each scale ({what}); scale s lives on the sublattice of "
                   f"spacing 2^s, drawn over the whole lattice.{note}")
        job.save(name, png, caption, **{f"view_{k}": a for k, a in enumerate(arrays)})


def _receptive_field_figures(job: Analysis) -> None:
    z = job.model.flow.sample_latent(N_JACOBIAN, job.generator)
    jac = analysis.jacobian(job.bijector, z).cpu()
    groups = [g.cpu() for g in job.model.flow.latent_groups()]
    extents = analysis.receptive_field_extent(jac, groups, job.shape)
    chosen = analysis.showcase_latents(job.bijector, groups, job.shape)
    mean_field = jac.mean(0)
    labels = _group_labels(job, groups)
    job.numbers["receptive_field_rms_radius"] = [
        {"scale": label, "rms_radius": r} for label, r in zip(labels, extents, strict=True)]
    fields = [mean_field[:, sites].T.reshape(-1, *job.shape).numpy() for sites in chosen]
    coords = [[_coordinates(k, job.shape) for k in sites] for sites in chosen]
    rows = [f"{label}\nRMS radius {r:.2f}" for label, r in zip(labels, extents, strict=True)]
    title = job.title(f"Receptive fields ∂x/∂z_k averaged over {N_JACOBIAN} samples z ~ N(0, I)")
    png = job.figure("receptive_fields", figures.plot_receptive_fields(fields, coords, rows, title))
    job.save("receptive_fields", png, "Response of the configuration to selected latents of "
             f"each scale, ∂x/∂z_k averaged over {N_JACOBIAN} latent samples (x marks the "
             "latent's site).", mean_jacobian=mean_field, chosen_sites=np.concatenate(chosen))
    title = job.title("Receptive-field RMS radius per scale")
    ceiling = float(analysis.rms_radius(torch.ones(1, jac.shape[1]), job.shape))
    png = job.figure("receptive_extent",
                     figures.plot_receptive_extent(extents, labels, ceiling, title))
    job.save("receptive_extent", png, "RMS radius (lattice spacings, periodic) of the mean "
             "absolute response E_z|∂x_i/∂z_k| around its best centre, averaged over the "
             "latents of each scale.",
             rms_radius=extents, labels=labels, uniform_radius=ceiling)


def _coordinates(site: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(c) for c in np.unravel_index(site, shape))


def _group_labels(job: Analysis, groups: list) -> list[str]:
    if len(groups) == 1:
        return ["all latents (TEBD: no scales)"]
    return [f"scale {s} ({len(g)} latents)" for s, g in enumerate(groups[:-1])] + [
        f"coarsest ({len(groups[-1])} latent{'s' * (len(groups[-1]) > 1)})"]


def _mutual_information_figure(job: Analysis, x: torch.Tensor) -> None:
    flow = job.model.flow
    groups = {"physical x": x.reshape(len(x), -1).double().cpu()}
    labels = _group_labels(job, flow.latent_groups())
    latents = zip(labels, flow.encode(x), strict=True)
    groups.update({f"latents, {lab}": z.double().cpu() for lab, z in latents if z.shape[1] > 1})
    cpu = torch.Generator().manual_seed(int(job.generator.initial_seed()))
    matrices, stats = {}, {}
    for name, values in groups.items():
        mi = analysis.gaussian_mutual_information(values)[0]
        mean = analysis.mean_off_diagonal(mi)
        err = analysis.bootstrap_error(_mean_mi, values, generator=cpu)
        binned = analysis.mean_off_diagonal(analysis.binned_mutual_information(values))
        stats[name] = {"mean": mean, "err": err, "binned_mean": binned, "n_vars": values.shape[1]}
        matrices[f"{name}\nmean off-diag {mean:.2e} ± {err:.1e}"] = mi.numpy()
    numbers = _pooled_mutual_information(stats)
    if _z2_symmetric(job):
        signs = random_signs(len(x), cpu)
        both = groups["physical x"] * signs[:, None]
        numbers["physical_mean_both_sectors"] = _mean_mi(both)
    job.numbers["mutual_information"] = numbers
    title = job.title(f"Pairwise mutual information of {len(x)} Metropolis samples. Estimator: "
                      "Gaussian copula, I = -½ ln(1-ρ²) - 1/2n, ρ = correlation of normal scores")
    png = job.figure("mutual_information", figures.plot_mutual_information(matrices, title))
    job.save("mutual_information", png, "Pairwise mutual information (nats) within each group "
             "(Gaussian-copula estimator, bias-corrected; error of the mean by bootstrap; a "
             "binned 8-bin estimator is in analysis.json as a cross-check). Latent pooled mean "
             f"{numbers['latent_mean']:.2e} vs physical {numbers['physical_mean']:.2e}."
             + _SECTOR_NOTE * _z2_symmetric(job),
             **{f"matrix_{k}": m for k, m in enumerate(matrices.values())},
             names=list(groups))


_SECTOR_NOTE = (" Samples are taken into the flow's own Z2 sector (x or -x, whichever the flow "
                "finds likelier) before both are measured; 'physical_mean_both_sectors' in "
                "analysis.json adds a random global sign, as in π, which the physical variables "
                "then share.")


def _z2_symmetric(job: Analysis) -> bool:
    return job.model.z2_symmetric


@torch.no_grad()
def _canonical(job: Analysis, x: torch.Tensor) -> torch.Tensor:
    """For a Z2-symmetric target, each sample or its mirror image, whichever the plain flow
    gives the higher density (the sector whose latents are meaningful)."""
    if not _z2_symmetric(job):
        return x
    flow = job.model.flow
    flip = flow.log_prob(-x) > flow.log_prob(x)
    return torch.where(flip.reshape(-1, *[1] * (x.dim() - 1)), -x, x)


def _pooled_mutual_information(stats: dict[str, dict]) -> dict[str, Any]:
    """Physical mean, and the latent mean pooled over all same-scale pairs."""
    latent = {k: v for k, v in stats.items() if k != "physical x"}
    pairs = {k: v["n_vars"] * (v["n_vars"] - 1) for k, v in latent.items()}
    pooled = sum(v["mean"] * pairs[k] for k, v in latent.items()) / max(sum(pairs.values()), 1)
    binned = sum(v["binned_mean"] * pairs[k] for k, v in latent.items())
    return {"physical_mean": stats["physical x"]["mean"], "latent_mean": pooled,
            "physical_binned_mean": stats["physical x"]["binned_mean"],
            "latent_binned_mean": binned / max(sum(pairs.values()), 1), "per_group": stats}


def _mean_mi(values: torch.Tensor) -> float:
    return analysis.mean_off_diagonal(analysis.gaussian_mutual_information(values)[0])


def _energy_figure(job: Analysis, samples: int) -> None:
    flow, log_prob = job.model.flow, job.model.target.log_prob
    z = flow.sample_latent(samples, job.generator)
    energy = analysis.effective_energy(flow.bijector, log_prob, z).cpu()
    prior = 0.5 * z.reshape(samples, -1).double().pow(2).sum(1).cpu()
    ln_z = job.model.exact_ln_z()
    if ln_z is not None:
        constant = analysis.effective_energy_constant(z[0].numel(), ln_z)
        note = f"C = (N/2) ln 2π - ln Z_exact = {constant:.4f}"
    else:
        constant = float((energy - prior).mean())
        note = f"C = mean(E_eff - ½|z|²) = {constant:.4f} (no exact ln Z)"
    direction, cut_label = _cut_direction(job)
    t = torch.linspace(-4, 4, 81, dtype=torch.float64)
    base = torch.cat([torch.zeros_like(z[:1]), z[:8]])
    cut = analysis.latent_cut(flow.bijector, log_prob, base, direction.to(z), t).cpu()
    flat = base.reshape(len(base), -1).double().cpu()
    perp2 = flat.pow(2).sum(1) - (flat @ direction.reshape(-1).double()) ** 2
    cut = cut - constant - 0.5 * perp2[None]
    job.numbers["renormalized_energy"] = {"constant": constant, "constant_note": note,
                                          "mean_excess": float((energy - constant - prior).mean())}
    title = job.title(f"Renormalized energy E_eff(z) = -ln π(g(z)) - ln|det ∂g/∂z|; {note}")
    png = job.figure("renormalized_energy", figures.plot_renormalized_energy(
        energy.numpy() - constant, prior.numpy(), t.numpy(), cut.numpy(),
        0.5 * t.numpy() ** 2, title, cut_label))
    job.save("renormalized_energy", png, "Effective energy of the latents against the Gaussian "
             f"prior's ½|z|² ({note}), and a cut along {cut_label} with the other latents "
             "fixed.", energy_minus_c=energy - constant, prior=prior, t=t, cut=cut,
             constant=constant)


def _cut_direction(job: Analysis) -> tuple[torch.Tensor, str]:
    """Unit vector along the coarsest latent(s); for TEBD, the uniform latent mode."""
    groups = job.model.flow.latent_groups()
    sites = groups[-1].cpu() if len(groups) > 1 else torch.arange(math.prod(job.shape))
    direction = torch.zeros(math.prod(job.shape), dtype=torch.float64)
    direction[sites] = 1 / math.sqrt(len(sites))
    label = "coarsest latent t" if len(groups) > 1 else "uniform latent mode t (TEBD)"
    return direction.reshape(job.shape), label


@torch.no_grad()
def _coverage_figure(job: Analysis, samples: int) -> None:
    """Flow samples against samples of pi (chains of the target's exact moves started from
    flow samples): both directions of the fit and, for a spin model, |m| of each."""
    model, target = job.model, job.model.target
    x_q, log_q = model.sampler.sample(samples, job.generator)
    x_pi = x_q
    for _ in range(N_EXACT_BURN_IN):
        x_pi = target.exact_move(x_pi, job.generator)
    w_q = (target.log_prob(x_q) - log_q).double().cpu()
    w_pi = (target.log_prob(x_pi) - model.sampler.log_prob(x_pi)).double().cpu()
    ln_z, source = model.exact_ln_z(), "exact"
    if ln_z is None:  # reverse importance sampling on the samples of pi
        ln_z, source = math.log(len(w_pi)) - float(torch.logsumexp(-w_pi, 0)), "reverse IS"
    numbers = {**analysis.coverage(w_q, w_pi, ln_z), "ln_z": ln_z, "ln_z_source": source}
    arrays = {"log_w_flow": w_q - ln_z, "log_w_target": w_pi - ln_z}
    spins = getattr(target, "sample_spins", None)
    if spins is not None:
        arrays["abs_m_flow"], arrays["abs_m_target"] = (
            spins(x, job.generator).reshape(len(x), -1).mean(1).abs().double().cpu()
            for x in (x_q, x_pi))
        numbers["abs_m_outside_flow_range"] = analysis.mass_outside(arrays["abs_m_flow"],
                                                                    arrays["abs_m_target"])
    job.numbers["coverage"] = numbers
    arrays = {k: v.numpy() for k, v in arrays.items()}
    png = job.figure("coverage", figures.plot_coverage(arrays, job.title(
        coverage_headline(numbers))))
    job.save("coverage", png, f"{samples} flow samples against {samples} samples of π "
             f"({N_EXACT_BURN_IN} exact moves from flow samples): log-weights ln π - ln q - ln Z "
             f"({source} ln Z) and, for spins, |m|. KL(q‖π) is the training gap; KL(π‖q), "
             "which reverse-KL training does not see, is large where the flow leaves part of "
             "π out.", **arrays)


def coverage_headline(numbers: dict[str, Any]) -> str:
    """One line of the coverage numbers (``analysis.json``'s ``coverage``)."""
    line = (f"Coverage: KL(q‖π) = {numbers['kl_flow_target']:.3f} nats (the gap), "
            f"KL(π‖q) = {numbers['kl_target_flow']:.3f} nats")
    if "abs_m_outside_flow_range" in numbers:
        line += (f"; {numbers['abs_m_outside_flow_range']:.1%} of π's |m| outside the flow's "
                 "central 98% (2% if they agree)")
    return line


def _training_figure(job: Analysis) -> None:
    metrics, summary = job.history
    exact = summary.get("ln_z_exact", job.model.exact_ln_z())
    measured = {"acceptance": summary.get("acceptance", job.numbers["acceptance"]),
                "observables": summary.get("observables") or job.numbers["observables"]}
    title = job.title("Training")
    png = job.figure("training",
                     figures.plot_training_overview(metrics, exact, {**summary, **measured}, title))
    atomic_write_json(job.out / "training.json",
                      {"metrics": metrics, "summary": summary, "ln_z_exact": exact})
    job.figures["training"] = {"png": png.name, "data": "training.json", "caption": (
        "Loss against the exact bound -ln Z, relative gap, Metropolis acceptance and "
        "observables against exact values; values measured only after training (by the "
        "run's summary or, failing that, by this analysis) are drawn as points.")}

