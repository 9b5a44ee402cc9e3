"""Temperature scans and finite-size scaling, as libraries (no files, no runs): the grid of
a scan, the order of its points (each from a trained neighbour), the free energy integrated
from the measured energy between neighbours, Binder crossings and heat-capacity peaks with
bootstrap error bars, data collapse, the exact Ising curves and the figures. The scan job
that trains the points lives in :mod:`neuralrg.jobs.scan`."""

from neuralrg.scaling.curves import Curve
from neuralrg.scaling.fss import ISING_2D, Exponents, Located, binder_crossing, collapse, peak
from neuralrg.scaling.grid import parse_grid, value_label
from neuralrg.scaling.integration import (
    NeighbourEstimate,
    Step,
    ThermoPoint,
    combine,
    disagreement,
    energy_step,
    integrated_free_energies,
)
from neuralrg.scaling.order import (
    GROWN,
    SCRATCH,
    WARM,
    PlannedPoint,
    Point,
    critical_path,
    plan_scan,
)

__all__ = ["GROWN", "ISING_2D", "SCRATCH", "WARM", "Curve", "Exponents", "Located",
           "NeighbourEstimate", "PlannedPoint", "Point", "Step", "ThermoPoint",
           "binder_crossing", "collapse", "combine", "critical_path", "disagreement",
           "energy_step", "integrated_free_energies", "parse_grid", "peak", "plan_scan",
           "value_label"]
