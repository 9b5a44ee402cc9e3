"""Thermodynamic integration: the quadrature on exact energies, and the relaxed Ising model's
path against enumeration and Kaufman."""

import math

import numpy as np
import pytest
import torch

from neuralrg.exact import T_CRITICAL_2D, enumerate_ising, exact_ising
from neuralrg.mcmc.thermodynamic import ThermodynamicPath, thermodynamic_ln_z
from neuralrg.targets import RelaxedIsing


@pytest.mark.parametrize("L", [8, 64])
def test_forty_nodes_integrate_kaufmans_energy_to_1e_4(L):
    """The quadrature alone: exact mean energies at the nodes give the exact ln Z."""
    rng = np.random.default_rng(0)

    def exact_energies(beta, chains, steps, therm):  # exact means, noise of 1e-9
        energy = exact_ising(L, 1 / beta).energy_per_site * L * L
        return energy + 1e-9 * rng.normal(size=(steps, chains))

    result = thermodynamic_ln_z(ThermodynamicPath(1 / T_CRITICAL_2D, L * L * math.log(2), 0.0,
                                                  exact_energies), 40, 2, 8)
    assert result.value == pytest.approx(exact_ising(L, T_CRITICAL_2D).ln_z, abs=1e-4)


@pytest.mark.parametrize("L,T", [(4, T_CRITICAL_2D), (4, 1.5)])
def test_relaxed_ising_path_matches_enumeration(L, T):
    target = RelaxedIsing(L, T)
    path = target.thermodynamic_path(torch.Generator().manual_seed(0))
    result = thermodynamic_ln_z(path, 20, 8, 400)
    exact = enumerate_ising(L, T).ln_z - target.ln_z_shift
    assert abs(result.value - exact) < 4 * result.err, (result.value, exact, result.err)
    assert len(result.energies) == 20 and all(e.n_chains == 8 for e in result.energies)


def test_bad_node_count():
    with pytest.raises(ValueError, match="n_nodes=0"):
        thermodynamic_ln_z(ThermodynamicPath(1.0, 0.0, 0.0, None), 0)
