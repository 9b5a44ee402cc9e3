"""Lattice phi^4 theory in the hopping parametrisation.

S(phi) = sum_x [ -2 kappa sum_mu phi_x phi_{x + e_mu} + phi_x^2 + lambda (phi_x^2 - 1)^2 ],
ln pi(phi) = -S(phi), on the periodic ``L^d`` lattice (kappa: hopping, lambda: quartic
coupling). The action is even, pi(phi) = pi(-phi).
"""

from __future__ import annotations

from torch import Tensor

from neuralrg.targets.lattice import LatticeTarget, PeriodicLattice
from neuralrg.validation import check_real


class Phi4(LatticeTarget):
    """Unnormalised phi^4 density.

    >>> import torch
    >>> target = Phi4(L=4, d=2, kappa=0.3, lam=0.02)
    >>> round(float(target.log_prob(torch.zeros(1, 4, 4))[0]), 6)  # 16 sites x -lambda
    -0.32
    """

    z2_symmetric = True
    scan_parameter = "kappa"

    def __init__(self, L: int = 8, d: int = 2, kappa: float = 0.3, lam: float = 0.02):
        self.lattice = PeriodicLattice(L, d)
        self.kappa = check_real("kappa", kappa, 0, low_open=False)
        self.lam = check_real("lam", lam, 0, low_open=False)
        self.L, self.d = L, d

    def describe(self) -> str:
        return f"{self.L}^{self.d} phi^4, kappa = {self.kappa:g}, lambda = {self.lam:g}"

    def derived_ln_z(self) -> dict[str, tuple[float, float]]:
        """The free energy per site in units of k_B T, f = -ln Z / N."""
        return {"free_energy_per_site": (-1.0 / self.n_sites, 0.0)}

    def action(self, phi: Tensor) -> Tensor:
        dims = tuple(range(1, phi.dim()))
        hopping = sum(phi * phi.roll(1, dim) for dim in dims)
        local = phi**2 + self.lam * (phi**2 - 1) ** 2
        return (local - 2 * self.kappa * hopping).reshape(phi.shape[0], -1).sum(1)

    def log_prob(self, phi: Tensor) -> Tensor:
        self.check_shape(phi)
        return -self.action(phi)
