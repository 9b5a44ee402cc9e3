"""One way to check user input: ``ValueError`` naming the value and the allowed range.

Messages read ``name=value must be ...``; booleans are never integers or numbers here
(``True`` is refused where a count or a size is expected).
"""

from __future__ import annotations

import math
import numbers


def check_int(name: str, value: object, low: int, high: int | None = None) -> int:
    """``value`` as an ``int`` if it is an integer in ``[low, high]``, else ``ValueError``.

    >>> check_int("steps", 10, 1)
    10
    >>> check_int("steps", True, 1)
    Traceback (most recent call last):
    ...
    ValueError: steps=True must be an integer >= 1
    """
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not ok or value < low or (high is not None and value > high):
        allowed = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name}={value!r} must be an integer {allowed}")
    return int(value)


def check_real(name: str, value: object, low: float | None = None, high: float | None = None,
               *, low_open: bool = True, high_open: bool = False) -> float:
    """``value`` as a ``float`` if it is a finite number in the stated interval.

    ``low``/``high`` bound the interval (``None``: unbounded), open by default at ``low``
    and closed at ``high``.

    >>> check_real("lr", 3e-3, 0)
    0.003
    >>> check_real("beta", 1.5, 0, 1)
    Traceback (most recent call last):
    ...
    ValueError: beta=1.5 must be a finite number in (0, 1]
    """
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    ok = ok and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        interval = _interval(low, high, low_open, high_open)
        raise ValueError(f"{name}={value!r} must be a finite number{interval}")
    return float(value)


def _interval(low, high, low_open: bool, high_open: bool) -> str:
    if low is None and high is None:
        return ""
    if high is None:
        return f" {'>' if low_open else '>='} {low:g}"
    if low is None:
        return f" {'<' if high_open else '<='} {high:g}"
    return f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def check_choice(name: str, value: object, allowed: tuple[str, ...] | list[str]) -> str:
    """``value`` if it is one of ``allowed``.

    >>> check_choice("layout", "mera", ("mera", "tebd"))
    'mera'
    """
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is unknown; allowed: {', '.join(allowed)}")
    return value  # type: ignore[return-value]
