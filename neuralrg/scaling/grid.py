"""The grid of a scan: values of one target option (a temperature, a coupling), written as
``start:stop:count`` (inclusive, evenly spaced), as single values, or as comma lists;
``Tc`` stands for the 2D Ising critical temperature where the option is a temperature."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from neuralrg.exact import T_CRITICAL_2D
from neuralrg.validation import check_int, check_real

MAX_GRID_POINTS = 1000
DIGITS = 6  # values closer than this many decimals name the same run directory


def _value(text: str, name: str, temperature: bool) -> float:
    if text.strip().lower() == "tc":
        if not temperature:
            raise ValueError(f"{name}={text!r}: 'Tc' stands for a temperature, and {name} is "
                             "not one")
        return T_CRITICAL_2D
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name}={text!r} is not a number (nor start:stop:count)") from None
    if temperature:
        return check_real(name, value, 0)
    return check_real(name, value)


def _range(text: str, name: str, temperature: bool) -> list[float]:
    parts = text.split(":")
    if len(parts) != 3:
        raise ValueError(f"{name}={text!r}: a range is start:stop:count, e.g. 2.1:2.5:9")
    start, stop = (_value(part, name, temperature) for part in parts[:2])
    try:
        count = int(parts[2])
    except ValueError:
        raise ValueError(f"{name}={text!r}: count={parts[2]!r} must be an integer >= 2") from None
    check_int(f"{name} count", count, 2, MAX_GRID_POINTS)
    if not start < stop:
        raise ValueError(f"{name}={text!r}: start={start:g} must be below stop={stop:g}")
    return [float(v) for v in np.linspace(start, stop, count)]


def parse_grid(texts: str | Sequence[str], name: str = "T",
               temperature: bool | None = None) -> tuple[float, ...]:
    """The sorted values that ``texts`` name; ``ValueError`` naming the first bad one, an
    empty grid, or a value given twice. ``temperature`` (default: ``name == "T"``) allows
    ``Tc`` and requires values > 0.

    >>> parse_grid("2.1:2.5:5")
    (2.1, 2.2, 2.3, 2.4, 2.5)
    >>> parse_grid(["2.5", "Tc,2.0"])
    (2.0, 2.26918531421, 2.5)
    >>> parse_grid("0:1:3")
    Traceback (most recent call last):
    ...
    ValueError: T=0.0 must be a finite number > 0
    """
    temperature = name == "T" if temperature is None else temperature
    texts = [texts] if isinstance(texts, str) else list(texts)
    values: list[float] = []
    for text in (piece for item in texts for piece in str(item).split(",")):
        if not text.strip():
            continue
        if ":" in text:
            values += _range(text, name, temperature)
        else:
            values.append(_value(text, name, temperature))
    if not values:
        raise ValueError(f"the {name} grid is empty: give start:stop:count or values")
    if len(values) > MAX_GRID_POINTS:
        raise ValueError(f"the {name} grid has {len(values)} values; allowed: at most "
                         f"{MAX_GRID_POINTS}")
    return _distinct(values, name)


def _distinct(values: list[float], name: str) -> tuple[float, ...]:
    rounded = sorted(float(f"{v:.12g}") for v in values)
    for a, b in zip(rounded, rounded[1:], strict=False):
        if round(a, DIGITS) == round(b, DIGITS):
            raise ValueError(f"{name}={b:g} is in the grid twice (values must differ in the "
                             f"first {DIGITS} decimals)")
    return tuple(rounded)


def value_label(name: str, value: float) -> str:
    """The name of a point's run directory for one grid value.

    >>> value_label("T", 2.269185314213)
    'T2.269185'
    """
    return f"{name}{value:.{DIGITS}f}"
