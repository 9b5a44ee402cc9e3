"""Typed results of a measurement: a :class:`Quantity` per number, a :class:`Measurement`
holding them. They become dicts only at the file boundary (:meth:`Measurement.to_dict`, with
the keys of ``summary.json``; :meth:`Measurement.from_dict` reads them back), and
show as the product's table in a terminal (``repr``) and in a notebook (``_repr_html_``)."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from neuralrg.measure.table import DERIVED_LABELS, format_measurement, number, verdict_text

LN_Z_QUANTITIES = ("ln_z", *DERIVED_LABELS)  # ln Z and what follows from it exactly


@dataclass(frozen=True)
class Quantity:
    """One number with its error bar, the exact value (``None`` where unknown), the pull
    (value - exact) / err, the verdict (``reliable``, and the ``reason`` when not), the
    estimator it came from and every estimate behind it (name -> fields with their verdict).

    >>> q = Quantity(0.65, 0.003, exact=0.6469, pull=1.03, reliable=True)
    >>> str(q)
    '0.650000 ± 0.003000 (exact 0.646900, pull +1.03): reliable'
    """

    value: float
    err: float
    exact: float | None = None
    pull: float | None = None
    reliable: bool = False
    reason: str | None = None
    estimator: str | None = None
    estimates: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, entry: Mapping[str, Any]) -> Quantity:
        """From a verdict entry (unknown keys are ignored)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in entry.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __str__(self) -> str:
        exact = "" if self.exact is None else f" (exact {number(self.exact)}" + (
            "" if self.pull is None else f", pull {self.pull:+.2f}") + ")"
        return f"{number(self.value)} ± {number(self.err)}{exact}: {verdict_text(self.to_dict())}"


@dataclass(frozen=True)
class Measurement:
    """What one measurement found: the ``target`` (a few words), the ``method`` run, the flow's
    Metropolis ``acceptance``, ln Z and the quantities derived from it (``ln_z``, and for the
    Ising model ``ising_ln_z`` and ``free_energy_per_site``) in ``quantities``, the target's
    ``observables``, and the run's ``details`` (chains, steps, autocorrelation time, ...)."""

    target: str
    method: str
    acceptance: float | None
    quantities: Mapping[str, Quantity] = field(default_factory=dict)
    observables: Mapping[str, Quantity] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ln_z(self) -> Quantity | None:
        """The target's own ln Z (the relaxed model's for the Ising model)."""
        return self.quantities.get("ln_z")

    @property
    def free_energy(self) -> Quantity | None:
        """The free energy per site, f = -T ln Z / N (in units of k_B T without a T)."""
        return self.quantities.get("free_energy_per_site")

    def __getitem__(self, name: str) -> Quantity:
        """A quantity or observable by name: ``measurement["m2"]``."""
        found = {**self.quantities, **self.observables}
        if name not in found:
            raise KeyError(f"{name!r}: measured are {', '.join(found)}")
        return found[name]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, with the keys of ``summary.json``."""
        data = {"target": self.target, "method": self.method, "acceptance": self.acceptance,
                **self.details, **{k: q.to_dict() for k, q in self.quantities.items()}}
        forward = (self.ln_z.estimates.get("importance_sampling") if self.ln_z else None)
        if forward is not None:
            data.update(ln_z_is=forward["value"], ln_z_is_err=forward["err"],
                        ln_z_is_reliable=forward["reliable"], ln_z_is_reason=forward["reason"])
        if self.observables:
            data["observables"] = {k: q.to_dict() for k, q in self.observables.items()}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Measurement:
        """From :meth:`to_dict` output (e.g. a run's ``summary.json``)."""
        skip = {"target", "method", "acceptance", "observables", *LN_Z_QUANTITIES}
        return cls(data.get("target", ""), data.get("method", ""), data.get("acceptance"),
                   {k: Quantity.from_dict(data[k]) for k in LN_Z_QUANTITIES if k in data},
                   {k: Quantity.from_dict(v) for k, v in (data.get("observables") or {}).items()},
                   {k: v for k, v in data.items() if k not in skip and not k.startswith("ln_z_is")})

    def __repr__(self) -> str:
        return format_measurement(self.to_dict())

    def _repr_html_(self) -> str:
        rows = [(name, q) for name, q in self.observables.items()]
        rows += [(DERIVED_LABELS.get(name, "ln Z"), q) for name, q in self.quantities.items()]
        cells = "".join(
            f"<tr><td>{html.escape(name)}</td><td>{number(q.value)} ± {number(q.err)}</td>"
            f"<td>{number(q.exact)}</td><td>{_pull(q.pull)}</td>"
            f"<td>{html.escape(verdict_text(q.to_dict()))}</td></tr>" for name, q in rows)
        head = "".join(f"<th>{h}</th>" for h in ("quantity", "value ± err", "exact", "pull",
                                                 "verdict"))
        caption = html.escape(f"{self.target}: {self.method}, acceptance "
                              f"{number(self.acceptance, 4)}")
        return f"<table><caption>{caption}</caption><tr>{head}</tr>{cells}</table>"


def _pull(pull: float | None) -> str:
    return "-" if pull is None or not math.isfinite(pull) else f"{pull:+.2f}"
