"""Two-dimensional toy densities for demonstrations and tests (event shape ``(2,)``, the
flow's lattice pinned to L = 2, d = 1: one 1D patch).

* ``ring2d``: a ring of radius 2 and width 0.4, ln p = -(|x| - 2)^2 / (2 * 0.4^2);
* ``mog2``: two unit-variance Gaussians at (+-2, 0) with equal weights;
* ``wave``: a sine valley, ln p = -((x2 - sin(pi x1 / 2)) / 0.4)^2 / 2 - x1^2 / 8.

Their ln Z are computed by quadrature on a fine grid (``quadrature_ln_z``), which serves
as the exact reference.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from neuralrg.targets.base import TargetBase

TOY_DENSITIES: dict[str, Callable[[Tensor], Tensor]] = {
    "ring2d": lambda x: -((x.norm(dim=1) - 2.0) ** 2) / (2 * 0.4**2),
    "mog2": lambda x: torch.logaddexp(
        -0.5 * ((x[:, 0] - 2) ** 2 + x[:, 1] ** 2), -0.5 * ((x[:, 0] + 2) ** 2 + x[:, 1] ** 2)
    ) - math.log(2.0),
    "wave": lambda x: -0.5 * ((x[:, 1] - torch.sin(math.pi * x[:, 0] / 2)) / 0.4) ** 2
    - x[:, 0] ** 2 / 8,
}


class ToyDensity(TargetBase):
    """One of :data:`TOY_DENSITIES`.

    >>> round(ToyDensity("mog2").quadrature_ln_z(), 6)  # two normalised Gaussians: 2 pi
    1.837877
    """

    event_shape = (2,)
    n_sites = 2
    fixed_lattice = {"L": 2, "d": 1}

    def __init__(self, name: str):
        if name not in TOY_DENSITIES:
            allowed = ", ".join(TOY_DENSITIES)
            raise ValueError(f"toy density {name!r} is unknown; allowed: {allowed}")
        self.name = name
        self._log_prob = TOY_DENSITIES[name]

    def log_prob(self, x: Tensor) -> Tensor:
        if tuple(x.shape[1:]) != self.event_shape:
            raise ValueError(f"x has shape {tuple(x.shape)}; expected (batch, 2)")
        return self._log_prob(x)

    def describe(self) -> str:
        return f"the toy density {self.name}"

    def exact_ln_z(self) -> float:
        return self.quadrature_ln_z()

    def quadrature_ln_z(self, half_width: float = 12.0, points: int = 2401) -> float:
        """ln Z by a Riemann sum on a square grid (float64; the tails are negligible)."""
        grid = torch.linspace(-half_width, half_width, points, dtype=torch.float64)
        xy = torch.cartesian_prod(grid, grid)
        step = float(grid[1] - grid[0])
        return float(torch.logsumexp(self.log_prob(xy), 0)) + 2 * math.log(step)


def toy_target(name: str) -> type:
    """A target class for the toy density ``name`` (built without options)."""
    return type(f"Toy_{name}", (ToyDensity,), {"__init__": lambda self: ToyDensity.__init__(
        self, name), "__doc__": f"The toy density {name} (see :mod:`neuralrg.targets.toy`)."})
