"""A measured curve: one quantity at one lattice size along the scan's grid, with error
bars, exact values where known and each point's verdict."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Curve:
    """``y(x) ± err`` at size ``L`` (sorted by x); ``exact`` is NaN where unknown and
    ``reliable`` the verdict of each point.

    >>> curve = Curve.of(8, [2.2, 2.1], [0.5, 0.6], [0.01, 0.01])
    >>> curve.x.tolist(), curve.y.tolist(), bool(curve.reliable.all())
    ([2.1, 2.2], [0.6, 0.5], True)
    """

    L: int
    x: np.ndarray
    y: np.ndarray
    err: np.ndarray
    exact: np.ndarray
    reliable: np.ndarray

    @classmethod
    def of(cls, L: int, x: Sequence[float], y: Sequence[float], err: Sequence[float],
           exact: Sequence[float | None] | None = None,
           reliable: Sequence[bool] | None = None) -> Curve:
        """From lists (``None`` -> NaN), sorted by x."""
        x_arr = np.asarray(x, dtype=float)
        order = np.argsort(x_arr)

        def column(values, fill) -> np.ndarray:
            if values is None:
                return np.full(len(x_arr), fill)
            return np.array([fill if v is None else v for v in values], dtype=type(fill))[order]

        return cls(L, x_arr[order], column(y, np.nan), column(err, np.nan),
                   column(exact, np.nan), column(reliable, True))

    def __len__(self) -> int:
        return len(self.x)

    def usable(self) -> Curve:
        """The points with a finite value and a positive, finite error bar."""
        keep = np.isfinite(self.y) & np.isfinite(self.err) & (self.err > 0)
        return Curve(self.L, self.x[keep], self.y[keep], self.err[keep], self.exact[keep],
                     self.reliable[keep])
