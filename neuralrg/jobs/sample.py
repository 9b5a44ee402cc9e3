"""The sample job: exact sampling from a trained run, written to an HDF5 file (configurations,
log-weights, spins drawn given x where the target has spins; settings as attributes;
readable with h5py or any HDF5 tool) and a JSON file beside it (acceptance, one verdict
entry per observable and for ln Z, autocorrelation times).

Earlier samples are never replaced unasked: in the run directory each measurement gets a
new file (``samples-<method>.h5``, then ``samples-<method>-2.h5``, ...) unless it is named
(``tag``: ``samples-<method>-<tag>.h5``) or placed (``out``), and a named file that exists
is replaced only with ``force``. Both files are written atomically.
"""

from __future__ import annotations

import itertools
import re
from contextlib import nullcontext
from dataclasses import asdict, replace
from pathlib import Path

import h5py
import torch

from neuralrg import distributed
from neuralrg.jobs.model import RunModel
from neuralrg.jobs.runs import RunDirectory, atomic_path, atomic_write_json, check_file_to_write
from neuralrg.jobs.runs import writable as can_write
from neuralrg.mcmc.smc import SMCRepeats
from neuralrg.measure.sampling import SampleConfig, chain_progress, resolve_method, run_sampler
from neuralrg.measure.summary import summarise

TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def samples_file(run_dir: str | Path, method: str, out: str | Path | None = None,
                 tag: str | None = None, force: bool = False) -> Path | None:
    """The HDF5 file a measurement with ``method`` will write (its JSON beside it, with the
    suffix ``.json``), or ``None`` when the run directory is not writable and no ``out`` was
    given. ``ValueError`` for an ``out`` or ``tag`` that cannot be used, or a named file that
    exists without ``force``."""
    if out is not None and tag is not None:
        raise ValueError("--out and --tag exclude each other: --out names the whole file")
    if out is not None:
        return _checked(Path(out), "out", force)
    run_dir = Path(run_dir)
    if tag is not None:
        if not TAG.fullmatch(tag):
            raise ValueError(f"tag={tag!r} must be letters, digits, '.', '_' or '-', starting "
                             "with a letter or digit")
        return _checked(run_dir / f"samples-{method}-{tag}.h5", "samples file", force)
    if not can_write(run_dir):
        return None
    if force:
        return _checked(run_dir / f"samples-{method}.h5", "samples file", force)
    return next(path for n in itertools.count(1)
                if not _taken(path := run_dir / f"samples-{method}{f'-{n}' * (n > 1)}.h5"))


def _taken(path: Path) -> bool:
    return path.exists() or path.with_suffix(".json").exists()


def _checked(path: Path, name: str, force: bool) -> Path:
    if path.suffix != ".h5":
        raise ValueError(f"{name}={str(path)!r} must end in .h5 (the summary goes beside it, "
                         "as .json)")
    check_file_to_write(name, path, replace=force)
    check_file_to_write(name, path.with_suffix(".json"), replace=force)
    return path


def write_samples(path: Path, model, result, summary: dict, generator: torch.Generator,
                  replace: bool = False) -> None:
    """The chains' states (or the SMC runs' final particles, ``(1, n, *event)``, with their
    ``log_weights``), log-weights and (for Ising) spins drawn given x, as HDF5, written
    atomically (``replace``: over an existing file)."""
    if isinstance(result, SMCRepeats):
        x, log_weights = result.particles
        samples, log_pi = x.detach()[None], model.target.log_prob(x).detach()[None]
    else:
        samples, log_pi = result.samples.detach(), result.log_pi
    with atomic_path(path, replace=replace) as temporary, h5py.File(temporary, "w") as handle:
        handle["configurations"] = samples.cpu().numpy()
        handle["log_pi"] = log_pi.cpu().numpy()
        if isinstance(result, SMCRepeats):
            handle["log_weights"] = log_weights.cpu().numpy()
        elif getattr(result, "log_q", None) is not None:
            handle["log_q"] = result.log_q.cpu().numpy()
        if hasattr(model.target, "sample_spins"):
            flat = samples.reshape(-1, *model.target.event_shape)
            spins = model.target.sample_spins(flat, generator).reshape(samples.shape)
            handle["spins"] = spins.to(torch.int8).cpu().numpy()
        for key, value in summary.items():
            if isinstance(value, (int, float, str)):
                handle.attrs[key] = value


def gathered(result):
    """The result of all ranks' chains (chains along dimension 1 of the series); SMC runs
    stay each rank's own (rank 0's are measured)."""
    if distributed.world_size() == 1 or isinstance(result, SMCRepeats):
        return result
    series = {name: distributed.gather_samples(getattr(result, name), dim=1)
              for name in ("samples", "log_pi", "log_q", "energies")
              if getattr(result, name, None) is not None}
    if not hasattr(result, "acceptance_per_chain"):  # exact moves accept everything
        return replace(result, **series)
    per_chain = distributed.gather_samples(result.acceptance_per_chain)
    return replace(result, **series, acceptance_per_chain=per_chain,
                   acceptance=float(per_chain.mean()))


def sample_job(model: RunModel, run_dir: str | Path, config: SampleConfig,
               out: str | Path | None = None, tag: str | None = None,
               force: bool = False, progress: bool = True) -> dict:
    """Sample from a trained model and write the samples and their summary (see
    :func:`samples_file` for where, and ``summary["samples_file"]`` for the name written,
    ``None`` when the run directory is not writable and no ``out`` was given).

    Under ``torchrun`` the chains are split over the ranks, each with its own seed, and
    gathered on rank 0, which measures and writes the files; other ranks return ``{}``.
    ``progress`` shows the chains' progress on rank 0 (a bar on a terminal).
    """
    run = RunDirectory(run_dir)
    main = distributed.is_main_process()
    method = resolve_method(model, config.method)
    with run.writing() if main and out is None and can_write(run.path) else nullcontext():
        path = samples_file(run.path, method, out, tag, force) if main else None
        rank = distributed.rank()
        local = replace(config, chains=distributed.local_share(config.chains),
                        seed=distributed.rank_seed(config.seed, rank))
        generator = torch.Generator(device=model.flow_device).manual_seed(local.seed)
        bar = chain_progress(config, enabled=progress and main)
        result = gathered(run_sampler(model, local, generator, bar))
        bar.close()
        if not main:
            return {}
        summary = {**asdict(config), **summarise(model, config, result, generator).to_dict(),
                   "samples_file": None if path is None else path.name}
        if path is not None:
            write_samples(path, model, result, summary, generator, replace=force)
            atomic_write_json(path.with_suffix(".json"), summary)
    return summary
