import math

import pytest
import torch

from neuralrg.exact import T_CRITICAL_2D, enumerate_ising, exact_ising
from neuralrg.targets.ising import RelaxedIsing, ising_energy, log_cosh
from neuralrg.targets.lattice import Circulant, PeriodicLattice


@pytest.mark.parametrize("L,d", [(2, 1), (5, 1), (33, 1), (2, 2), (3, 2), (4, 2), (7, 2), (32, 2)])
def test_fft_energy_equals_dense(L, d):
    target = RelaxedIsing(L, 2.5, d)
    spectrum = target.spectrum
    fft, dense = Circulant(1 / spectrum, dense=False), Circulant(1 / spectrum, dense=True)
    x = torch.randn(6, *target.event_shape, dtype=torch.float64)
    assert torch.allclose(fft.quadratic(x), dense.quadratic(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("L,d", [(2, 1), (5, 1), (2, 2), (3, 2), (4, 2)])
def test_precision_matrix_is_inverse_of_k_plus_a(L, d):
    target = RelaxedIsing(L, 1.7, d, dense=True)
    lattice = PeriodicLattice(L, d)
    k_prime = lattice.adjacency_matrix() / 1.7 + target.diagonal_shift * torch.eye(
        lattice.n_sites, dtype=torch.float64
    )
    x = torch.randn(4, lattice.n_sites, dtype=torch.float64)
    expected = torch.einsum("bi,ij,bj->b", x, torch.linalg.inv(k_prime), x)
    assert torch.allclose(
        target.precision.quadratic(x.reshape(4, *lattice.shape)), expected, rtol=1e-12
    )
    assert math.isclose(float(torch.linalg.eigvalsh(k_prime).min()), 0.1, rel_tol=1e-12)


def test_large_lattice_builds_no_dense_matrix():
    target = RelaxedIsing(32, T_CRITICAL_2D, 2)
    assert not target.precision.dense


def test_adjacency_counts_bonds_twice_on_l2():
    assert PeriodicLattice(2, 1).adjacency_matrix().tolist() == [[0.0, 2.0], [2.0, 0.0]]


def test_log_cosh_is_stable():
    x = torch.tensor([-1e4, -50.0, 0.0, 3.0, 1e4], dtype=torch.float64)
    expected = torch.tensor(
        [1e4 - math.log(2), 50 - math.log(2), 0.0, math.log(math.cosh(3.0)), 1e4 - math.log(2)],
        dtype=torch.float64,
    )
    assert torch.allclose(log_cosh(x), expected, rtol=1e-14, atol=1e-12)
    assert torch.isfinite(log_cosh(torch.tensor([1e30]))).all()


def test_ising_energy_matches_adjacency_quadratic_form():
    lattice = PeriodicLattice(3, 2)
    spins = torch.randint(0, 2, (5, 3, 3)).double() * 2 - 1
    flat = spins.reshape(5, -1)
    expected = -0.5 * torch.einsum("bi,ij,bj->b", flat, lattice.adjacency_matrix(), flat)
    assert torch.allclose(ising_energy(spins), expected)


def relaxed_ln_z_by_quadrature_1d_two_sites(T: float) -> float:
    target = RelaxedIsing(2, T, d=1)
    grid = torch.linspace(-36, 36, 3601, dtype=torch.float64)
    x = torch.cartesian_prod(grid, grid)
    step = float(grid[1] - grid[0])
    return float(torch.logsumexp(target.log_prob(x), 0)) + 2 * math.log(step)


@pytest.mark.parametrize("T", [0.8, 2.0, 5.0])
def test_shift_c_by_quadrature_on_two_sites(T):
    target = RelaxedIsing(2, T, d=1)
    ln_z_ising = exact_ising(2, T, d=1).ln_z
    ln_z_relaxed = relaxed_ln_z_by_quadrature_1d_two_sites(T)
    assert ln_z_relaxed + target.ln_z_shift == pytest.approx(ln_z_ising, rel=1e-9)


def test_shift_c_by_importance_sampling_on_2x2():
    """ln Z_relaxed by importance sampling from a broad Gaussian, with a 4-sigma check."""
    T, n = T_CRITICAL_2D, 400_000
    target = RelaxedIsing(2, T, d=2, dense=True)
    k_prime = PeriodicLattice(2, 2).adjacency_matrix() / T + target.diagonal_shift * torch.eye(
        4, dtype=torch.float64
    )
    proposal = torch.distributions.MultivariateNormal(
        torch.zeros(4, dtype=torch.float64), 1.5 * (k_prime + k_prime @ k_prime)
    )
    torch.manual_seed(7)
    x = proposal.sample((n,))
    log_w = target.log_prob(x.reshape(n, 2, 2)) - proposal.log_prob(x)
    ln_z = float(torch.logsumexp(log_w, 0)) - math.log(n)
    w = torch.exp(log_w - log_w.max())
    err = float(w.std() / w.mean()) / math.sqrt(n)
    expected = exact_ising(2, T).ln_z - target.ln_z_shift
    assert abs(ln_z - expected) < 4 * err and err < 5e-3


def test_spins_given_x_reproduce_enumerated_energy():
    """x ~ pi is drawn by enumerating spins and x | s ~ N(K' s, K'); then s | x recovers Ising."""
    L, T, n = 2, 3.0, 200_000
    target = RelaxedIsing(L, T, d=2, dense=True)
    gen = torch.Generator().manual_seed(3)
    exact = enumerate_ising(L, T)
    lattice = PeriodicLattice(L, 2)
    k_prime = lattice.adjacency_matrix() / T + target.diagonal_shift * torch.eye(
        4, dtype=torch.float64
    )
    states = torch.cartesian_prod(*[torch.tensor([-1.0, 1.0], dtype=torch.float64)] * 4)
    log_weights = -ising_energy(states.reshape(-1, 2, 2)) / T
    picks = torch.multinomial(torch.softmax(log_weights, 0), n, replacement=True, generator=gen)
    chol = torch.linalg.cholesky(k_prime)
    x = states[picks] @ k_prime + torch.randn(n, 4, generator=gen, dtype=torch.float64) @ chol.T
    spins = target.sample_spins(x.reshape(n, 2, 2), gen)
    energy = ising_energy(spins) / 4
    assert abs(float(energy.mean()) - exact.energy_per_site) < 4 * float(energy.std()) / math.sqrt(
        n
    )
    improved = target.improved_spins(x.reshape(n, 2, 2)).mean((1, 2))
    assert abs(float(improved.mean())) < 4 * float(improved.std()) / math.sqrt(n)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(L=4, T=0.0), "T=0.0"),
        (dict(L=4, T=-1.0), "T=-1.0"),
        (dict(L=4, T=float("nan")), "T=nan"),
        (dict(L=4, T=float("inf")), "T=inf"),
        (dict(L=1, T=1.0), "L=1"),
        (dict(L=4, T=1.0, d=3), "d=3"),
        (dict(L=4, T=1.0, diagonal_shift=-10.0), "diagonal_shift"),
    ],
)
def test_bad_input_is_a_clear_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RelaxedIsing(**kwargs)


def test_log_prob_rejects_wrong_shape():
    with pytest.raises(ValueError, match="expected"):
        RelaxedIsing(4, 2.0).log_prob(torch.zeros(3, 4, 5))
