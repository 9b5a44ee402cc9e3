"""The order of a scan's points: every point starts from a trained neighbour.

At each lattice size the first point is the grid value nearest the start (T_c for a 2D
Ising temperature scan); from it two lanes run outwards, one up and one down the grid, each
point warm-started from the previous one of its lane. The first point of a size L whose
half L/2 is also scanned is grown from the L/2 run at the same value (lattice growth);
otherwise it starts from scratch. The points form a forest (each has at most one source),
so independent lanes can train side by side; :func:`critical_path` ranks the ready ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

SCRATCH, WARM, GROWN = "scratch", "warm", "grown"


@dataclass(frozen=True, order=True)
class Point:
    """One (lattice size, grid value) of a scan."""

    L: int
    value: float


@dataclass(frozen=True)
class PlannedPoint:
    """A point, how it starts (``scratch``, ``warm`` from a neighbour at the same L, or
    ``grown`` from the L/2 run at the same value), its source and its lane (``start``,
    ``up``, ``down``)."""

    point: Point
    start: str
    source: Point | None
    lane: str


def start_index(values: Sequence[float], start: float | None) -> int:
    """The index of the grid value nearest ``start`` (the middle one if ``None``; the lower
    one of a tie).

    >>> start_index([2.1, 2.2, 2.3, 2.4], 2.269), start_index([1.0, 2.0, 3.0], None)
    (2, 1)
    """
    if start is None:
        return (len(values) - 1) // 2
    return min(range(len(values)), key=lambda k: (abs(values[k] - start), k))


def _lanes(values: Sequence[float], first: int) -> list[tuple[int, int | None, str]]:
    """(index, index of its source, lane) from the start outwards, up lane then down lane."""
    steps = [(first, None, "start")]
    steps += [(k, k - 1, "up") for k in range(first + 1, len(values))]
    steps += [(k, k + 1, "down") for k in range(first - 1, -1, -1)]
    return steps


def plan_scan(sizes: Sequence[int], values: Sequence[float], start: float | None = None,
              warm: bool = True, grow: bool = True) -> list[PlannedPoint]:
    """Every point of the scan in an order in which each source comes before the points
    that start from it (sizes ascending). ``warm=False``: every point from scratch;
    ``grow=False``: no lattice growth.

    >>> plan = plan_scan([4, 8], [1.0, 2.0, 3.0], start=2.0)
    >>> [(p.point.L, p.point.value, p.start, p.lane) for p in plan[:3]]
    [(4, 2.0, 'scratch', 'start'), (4, 3.0, 'warm', 'up'), (4, 1.0, 'warm', 'down')]
    >>> plan[3].start, plan[3].source
    ('grown', Point(L=4, value=2.0))
    """
    values, plan = sorted(values), []
    first = start_index(values, start)
    for L in sorted(sizes):
        for k, source, lane in _lanes(values, first):
            point = Point(L, values[k])
            if not warm:
                plan.append(PlannedPoint(point, SCRATCH, None, lane))
            elif source is not None:
                plan.append(PlannedPoint(point, WARM, Point(L, values[source]), lane))
            elif grow and L % 2 == 0 and L // 2 in sizes:
                plan.append(PlannedPoint(point, GROWN, Point(L // 2, values[k]), lane))
            else:
                plan.append(PlannedPoint(point, SCRATCH, None, lane))
    return plan


def critical_path(plan: Sequence[PlannedPoint],
                  cost: Callable[[Point], float]) -> dict[Point, float]:
    """For every point, the cost of the longest chain of points that must train after it,
    itself included: the scheduler starts the ready point with the largest one first.

    >>> plan = plan_scan([4, 8], [1.0, 2.0], start=1.0)
    >>> path = critical_path(plan, cost=lambda p: p.L**2)
    >>> path[Point(4, 1.0)], path[Point(4, 2.0)], path[Point(8, 1.0)]
    (144, 16, 128)
    """
    after: dict[Point, list[Point]] = {p.point: [] for p in plan}
    for planned in plan:
        if planned.source is not None:
            after[planned.source].append(planned.point)
    longest: dict[Point, float] = {}
    for planned in reversed(plan):  # sources come first, so dependants are done already
        point = planned.point
        longest[point] = cost(point) + max((longest[p] for p in after[point]), default=0)
    return longest
