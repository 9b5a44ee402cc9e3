"""The scan grid parser and the order of a scan's points."""

import pytest

from neuralrg.exact import T_CRITICAL_2D
from neuralrg.scaling import GROWN, SCRATCH, WARM, Point, critical_path, parse_grid, plan_scan


@pytest.mark.parametrize("texts, expected", [
    ("2.1:2.5:9", (2.1, 2.15, 2.2, 2.25, 2.3, 2.35, 2.4, 2.45, 2.5)),
    (["2.0", "2.6"], (2.0, 2.6)),
    (["2.6,2.0", "Tc"], (2.0, round(T_CRITICAL_2D, 11), 2.6)),
    (["tc"], (round(T_CRITICAL_2D, 11),)),
    (["2.0:2.2:3", "2.5"], (2.0, 2.1, 2.2, 2.5)),
])
def test_grids_parse_to_sorted_distinct_values(texts, expected):
    assert parse_grid(texts) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("texts, message", [
    ([], "the T grid is empty"),
    ([" ", ","], "the T grid is empty"),
    (["0"], "T=0.0 must be a finite number > 0"),
    (["-1:2:3"], "T=-1.0 must be a finite number > 0"),
    (["2:1:3"], "start=2 must be below stop=1"),
    (["2:3:1"], "T count=1 must be an integer in [2, 1000]"),
    (["2:3:x"], "count='x' must be an integer >= 2"),
    (["2:3"], "a range is start:stop:count"),
    (["nan"], "T=nan must be a finite number"),
    (["abc"], "T='abc' is not a number"),
    (["2.0", "2.0000001"], "T=2 is in the grid twice"),
    (["1:2:5000"], "T count=5000 must be an integer in [2, 1000]"),
])
def test_bad_grids_are_refused_by_name(texts, message):
    with pytest.raises(ValueError, match=None) as error:
        parse_grid(texts)
    assert message in str(error.value)


def test_other_parameters_take_any_finite_value_but_not_tc():
    assert parse_grid("-0.1:0.1:3", "kappa") == pytest.approx((-0.1, 0.0, 0.1))
    with pytest.raises(ValueError, match="'Tc' stands for a temperature"):
        parse_grid("Tc", "kappa")


GRID = parse_grid("2.1:2.5:9")


def test_lanes_start_at_tc_and_run_outwards_each_from_its_neighbour():
    plan = plan_scan([8], GRID, start=T_CRITICAL_2D)
    assert plan[0].point == Point(8, 2.25) and plan[0].start == SCRATCH
    up = [p.point.value for p in plan if p.lane == "up"]
    down = [p.point.value for p in plan if p.lane == "down"]
    assert up == pytest.approx([2.3, 2.35, 2.4, 2.45, 2.5])
    assert down == pytest.approx([2.2, 2.15, 2.1])
    for planned in plan[1:]:
        assert planned.start == WARM and planned.source.L == 8
        assert abs(planned.source.value - planned.point.value) == pytest.approx(0.05)


def test_every_source_trains_before_its_dependants_and_larger_sizes_grow():
    plan = plan_scan([16, 8, 32], GRID, start=2.3)
    seen = set()
    for planned in plan:
        assert planned.source is None or planned.source in seen
        seen.add(planned.point)
    assert len(seen) == 27
    starts = {(p.point.L, p.start) for p in plan if p.lane == "start"}
    assert starts == {(8, SCRATCH), (16, GROWN), (32, GROWN)}
    grown = next(p for p in plan if p.point.L == 16 and p.lane == "start")
    assert grown.source == Point(8, 2.3)


def test_no_growth_without_the_half_size_and_no_warm_starts_when_asked():
    plan = plan_scan([8, 32], GRID)
    assert all(p.start == SCRATCH for p in plan if p.lane == "start")
    assert plan_scan([8], GRID, start=None)[0].point.value == pytest.approx(2.3)  # the middle
    assert all(p.start == SCRATCH and p.source is None for p in plan_scan([8, 16], GRID,
                                                                          warm=False))
    assert all(p.start != GROWN for p in plan_scan([8, 16], GRID, grow=False))


def test_the_critical_path_puts_the_long_lanes_of_large_sizes_first():
    plan = plan_scan([8, 16], GRID, start=T_CRITICAL_2D)
    path = critical_path(plan, cost=lambda p: p.L**2)
    start8, start16 = Point(8, 2.25), Point(16, 2.25)
    assert path[start8] == 64 + path[start16]  # every L=16 point waits for it
    assert path[start16] == 256 * 6  # itself and the longer (up) lane of five
    assert path[Point(16, 2.5)] == 256 and path[Point(8, 2.5)] == 64
