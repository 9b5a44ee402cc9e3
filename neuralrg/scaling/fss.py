"""Finite-size scaling from measured curves: the crossing of the Binder cumulants of two
sizes (an estimate of T_c), the heat-capacity peak of each size, and the coordinates of a
data collapse.

Crossings and peaks come from local polynomial fits (weighted by the error bars) to the
grid points nearest the crossing or the maximum; their error bars from a parametric
bootstrap: every point is redrawn within its error bar (independent Gaussians), the fits
are redone and the crossing or peak found again, ``resamples`` times. The estimate is the
fit to the measured values; its error the standard deviation over the resamples in which a
crossing (a peak) was found; it is reliable when at least :data:`MIN_FOUND` of them found
one and their spread is below :data:`MAX_SPREAD` of the fit window (the roots are sought
within the window only, so noise alone would spread them over all of it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.polynomial import polynomial as P

from neuralrg.scaling.curves import Curve

MIN_FOUND = 0.9
MAX_SPREAD = 1 / 6  # of the fit window; resamples spread uniformly over it have 0.29
FIT_POINTS = 5
DEGREE = 2


@dataclass(frozen=True)
class Located:
    """A crossing or a peak: where (``position`` ± ``position_err``), its height where it
    has one, which sizes, the fit window, the fraction of resamples that found it, and the
    verdict."""

    sizes: tuple[int, ...]
    position: float | None
    position_err: float | None
    height: float | None = None
    height_err: float | None = None
    window: tuple[float, float] | None = None
    found_fraction: float = 0.0
    reliable: bool = False
    reason: str | None = None


def _nearest(curve: Curve, centre: float, count: int) -> np.ndarray:
    """Indices (sorted) of the ``count`` points nearest ``centre``."""
    order = np.argsort(np.abs(curve.x - centre), kind="stable")[:count]
    return np.sort(order)


def _fit(x: np.ndarray, y: np.ndarray, err: np.ndarray, origin: float,
         degree: int) -> np.ndarray:
    """Weighted least-squares polynomial coefficients in x - origin (lowest degree first)."""
    degree = min(degree, len(x) - 1)
    return P.polyfit(x - origin, y, degree, w=1 / err)


def _roots_in(coef: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Real roots in [lo, hi]; leading coefficients negligible over the interval are dropped
    first (a nearly straight difference would otherwise give an inaccurate root)."""
    scale = max(abs(lo), abs(hi)) or 1.0
    scaled = coef * scale ** np.arange(len(coef))
    scaled = P.polytrim(scaled, 1e-10 * float(np.max(np.abs(scaled))))
    roots = P.polyroots(scaled) * scale if len(scaled) > 1 else np.array([])
    real = roots[np.abs(roots.imag) < 1e-9 * scale].real
    return real[(real >= lo) & (real <= hi)]


def _bracket(a: Curve, b: Curve) -> tuple[float, float] | None:
    """The sign change of b - a (on the union of both grids, linear interpolation) with the
    steepest significant slope, or ``None``."""
    lo, hi = max(a.x[0], b.x[0]), min(a.x[-1], b.x[-1])
    x = np.union1d(a.x, b.x)
    x = x[(x >= lo) & (x <= hi)]
    if len(x) < 2:
        return None
    d = np.interp(x, b.x, b.y) - np.interp(x, a.x, a.y)
    sigma = np.hypot(np.interp(x, a.x, a.err), np.interp(x, b.x, b.err))
    changes = np.nonzero(np.sign(d[:-1]) * np.sign(d[1:]) <= 0)[0]
    if len(changes) == 0:
        return None
    steep = [abs(d[k + 1] - d[k]) / math.hypot(sigma[k], sigma[k + 1]) for k in changes]
    k = changes[int(np.argmax(steep))]
    return float(x[k]), float(x[k + 1])


def _crossing_of(a: Curve, ia: np.ndarray, ya: np.ndarray, b: Curve, ib: np.ndarray,
                 yb: np.ndarray, origin: float, window: tuple[float, float]) -> float | None:
    ca = _fit(a.x[ia], ya, a.err[ia], origin, DEGREE)
    cb = _fit(b.x[ib], yb, b.err[ib], origin, DEGREE)
    roots = _roots_in(P.polysub(cb, ca), window[0] - origin, window[1] - origin)
    if len(roots) == 0:
        return None
    return float(roots[np.argmin(np.abs(roots))] + origin)


def binder_crossing(small: Curve, large: Curve, resamples: int = 1000,
                    seed: int = 0) -> Located:
    """Where the curves of two sizes cross (e.g. Binder cumulants: an estimate of T_c), with
    a bootstrap error bar (see the module docstring).

    >>> x = np.linspace(2.1, 2.5, 9)
    >>> a = Curve.of(8, x, 0.5 - 1.0 * (x - 2.27), np.full(9, 1e-3))
    >>> b = Curve.of(16, x, 0.5 - 2.0 * (x - 2.27), np.full(9, 1e-3))
    >>> found = binder_crossing(a, b, resamples=200)
    >>> round(found.position, 4), found.position_err < 0.002, found.reliable
    (2.27, True, True)
    """
    a, b = small.usable(), large.usable()
    sizes = (small.L, large.L)
    if min(len(a), len(b)) < 2:
        return Located(sizes, None, None, reason="fewer than two measured points per size")
    bracket = _bracket(a, b)
    if bracket is None:
        return Located(sizes, None, None, reason="the curves do not cross within the grid")
    centre = (bracket[0] + bracket[1]) / 2
    ia, ib = _nearest(a, centre, FIT_POINTS), _nearest(b, centre, FIT_POINTS)
    window = (float(max(a.x[ia[0]], b.x[ib[0]])), float(min(a.x[ia[-1]], b.x[ib[-1]])))
    position = _crossing_of(a, ia, a.y[ia], b, ib, b.y[ib], centre, window)
    rng = np.random.default_rng(seed)
    found = [_crossing_of(a, ia, a.y[ia] + a.err[ia] * rng.standard_normal(len(ia)),
                          b, ib, b.y[ib] + b.err[ib] * rng.standard_normal(len(ib)),
                          centre, window) for _ in range(resamples)]
    return _located(sizes, position, None, found, window)


def _located(sizes: tuple[int, ...], position: float | None, height: float | None,
             found: list, window: tuple[float, float], with_height: bool = False) -> Located:
    """The estimate, and its spread over the resamples that found one (``found``: positions,
    or (position, height) pairs ``with_height``)."""
    hits = [f for f in found if f is not None]
    fraction = len(hits) / len(found) if found else 0.0
    positions = np.array([h[0] if with_height else h for h in hits], dtype=float)
    spread = float(positions.std(ddof=1)) if len(hits) > 1 else None
    height_err = None
    if with_height and len(hits) > 1:
        height_err = float(np.array([h[1] for h in hits]).std(ddof=1))
    reason = None
    if position is None:
        reason = "the fit to the measured values finds none within the fit window"
    elif fraction < MIN_FOUND:
        reason = (f"found in only {fraction:.0%} of the resamples: not resolved within the "
                  "error bars")
    elif spread is None or spread > (window[1] - window[0]) * MAX_SPREAD:
        reason = ("the resamples spread over the fit window: not resolved within the error "
                  "bars")
    return Located(sizes, position, spread, height, height_err, window, fraction,
                   reason is None, reason)


def _vertex(x: np.ndarray, y: np.ndarray, err: np.ndarray, origin: float,
            window: tuple[float, float]) -> tuple[float, float] | None:
    coef = _fit(x, y, err, origin, 2)
    if len(coef) < 3 or not coef[2] < 0:
        return None
    top = -coef[1] / (2 * coef[2])
    if not window[0] - origin <= top <= window[1] - origin:
        return None
    return float(top + origin), float(P.polyval(top, coef))


def peak(curve: Curve, resamples: int = 1000, seed: int = 0) -> Located:
    """The maximum of a curve (e.g. the heat capacity): position and height from a quadratic
    fit to the points nearest the largest value, bootstrap error bars; unreliable when the
    largest value sits at the grid's edge (the peak is not bracketed).

    >>> x = np.linspace(2.1, 2.5, 9)
    >>> found = peak(Curve.of(8, x, 1.5 - 20 * (x - 2.33) ** 2, np.full(9, 1e-3)), 200)
    >>> round(found.position, 4), round(found.height, 4), found.reliable
    (2.33, 1.5, True)
    """
    c = curve.usable()
    if len(c) < 3:
        return Located((curve.L,), None, None, reason="fewer than three measured points")
    k = int(np.argmax(c.y))
    if k in (0, len(c) - 1):
        return Located((curve.L,), float(c.x[k]), None, float(c.y[k]), None,
                       reason=f"the largest value is at the grid's edge ({c.x[k]:g}): the peak "
                              "is not bracketed")
    index = _nearest(c, c.x[k], FIT_POINTS)
    window, origin = (float(c.x[index[0]]), float(c.x[index[-1]])), float(c.x[k])
    x, err = c.x[index], c.err[index]
    best = _vertex(x, c.y[index], err, origin, window)
    rng = np.random.default_rng(seed)
    found = [_vertex(x, c.y[index] + err * rng.standard_normal(len(x)), err, origin, window)
             for _ in range(resamples)]
    position, height = best if best is not None else (None, None)
    return _located((curve.L,), position, height, found, window, with_height=True)


@dataclass(frozen=True)
class Exponents:
    """Critical exponents for a data collapse (default: the 2D Ising model's)."""

    nu: float = 1.0
    beta_nu: float = 0.125  # beta / nu
    gamma_nu: float = 1.75  # gamma / nu


ISING_2D = Exponents()
COLLAPSE_POWERS = {  # quantity -> y = quantity * L^power(exponents)
    "binder": lambda e: 0.0,
    "m2": lambda e: 2 * e.beta_nu,
    "abs_m": lambda e: e.beta_nu,
}


def collapse(curve: Curve, quantity: str, critical: float,
             exponents: Exponents = ISING_2D) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scaling coordinates x = (T - T_c) / T_c L^(1/nu) and y = Q L^power (power 0 for the
    Binder cumulant, 2 beta/nu for <m^2>, beta/nu for <|m|>) with y's error bars.

    >>> x, y, err = collapse(Curve.of(16, [2.2692], [0.5], [0.01]), "m2", 2.2692)
    >>> float(x[0]), round(float(y[0]), 4)
    (0.0, 1.0)
    """
    if quantity not in COLLAPSE_POWERS:
        raise ValueError(f"quantity={quantity!r} has no collapse; allowed: "
                         f"{', '.join(COLLAPSE_POWERS)}")
    scale = curve.L ** COLLAPSE_POWERS[quantity](exponents)
    x = (curve.x - critical) / critical * curve.L ** (1 / exponents.nu)
    return x, curve.y * scale, curve.err * scale
