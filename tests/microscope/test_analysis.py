"""The RG microscope's science on hand-built cases with known answers."""

import math

import pytest
import torch

from neuralrg.flows.bijector import Bijector
from neuralrg.flows.hierarchy import HierarchicalBijector
from neuralrg.flows.layouts import PatchLayer, mera_layout, tebd_layout
from neuralrg.microscope.analysis import (
    binned_mutual_information,
    coverage,
    effective_energy,
    effective_energy_constant,
    encode_views,
    gaussian_mutual_information,
    jacobian,
    latent_cut,
    mass_outside,
    mean_off_diagonal,
    receptive_field_extent,
    rms_radius,
    scale_views,
    showcase_latents,
)

DISENTANGLER_GAIN = 3.0


class Linear(Bijector):
    """x = A z on flattened configurations; an exactly known Jacobian."""

    def __init__(self, matrix: torch.Tensor, shape: tuple[int, ...]):
        super().__init__()
        self.matrix, self.shape = matrix, shape

    def forward(self, z):
        x = z.reshape(z.shape[0], -1) @ self.matrix.T
        return x.reshape(z.shape[0], *self.shape), z.new_full((z.shape[0],), self._log_det())

    def inverse(self, x):
        z = torch.linalg.solve(self.matrix, x.reshape(x.shape[0], -1).T).T
        return z.reshape(x.shape[0], *self.shape), x.new_full((x.shape[0],), -self._log_det())

    def _log_det(self) -> float:
        return float(torch.linalg.slogdet(self.matrix)[1])


def haar_matrix(patch_size: int) -> torch.Tensor:
    """Orthonormal Haar transform of a patch; row 0 is the (scaled) block sum."""
    one = torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=torch.float64) / math.sqrt(2)
    return one if patch_size == 2 else torch.kron(one, one)


def haar_mera(L: int, d: int, n_disentanglers: int) -> HierarchicalBijector:
    """MERA whose decimators are Haar transforms (RG: patch -> H patch) and whose
    disentanglers multiply their patch by DISENTANGLER_GAIN in the RG direction."""
    def make_block(layer: PatchLayer) -> Bijector:
        size = layer.patch_size
        if layer.kind == "decimator":
            return Linear(haar_matrix(size).T, (size,))
        return Linear(torch.eye(size, dtype=torch.float64) / DISENTANGLER_GAIN, (size,))

    return HierarchicalBijector((L,) * d, mera_layout(L, d, n_disentanglers), make_block)


def block_sums(x: torch.Tensor, block: int) -> torch.Tensor:
    """Sum of x over each block^d cube whose corner is a multiple of ``block``."""
    batch, d, L = x.shape[0], x.dim() - 1, x.shape[1]
    shape = [batch] + [L // block, block] * d
    return x.reshape(shape).sum(dim=tuple(range(2, 2 + 2 * d, 2)))


@pytest.mark.parametrize("d", [1, 2], ids=["1d", "2d"])
@pytest.mark.parametrize("n_disentanglers", [0, 1], ids=["no-disentangler", "disentangler"])
def test_scale_views_of_a_hand_built_configuration_follow_the_layout(d, n_disentanglers):
    L = 8
    bijector = haar_mera(L, d, n_disentanglers)
    x = torch.randn(3, *(L,) * d, dtype=torch.float64)
    expected = [
        DISENTANGLER_GAIN ** (s * n_disentanglers) * block_sums(x, 2**s) / 2 ** (s * d / 2)
        for s in reversed(range(4))
    ]
    z = bijector.inverse(x)[0]
    for views in (scale_views(bijector, z), encode_views(bijector, x)):
        assert [tuple(v.shape[1:]) for v in views] == [(2**k,) * d for k in range(4)]
        for view, want in zip(views, expected, strict=True):
            torch.testing.assert_close(view, want)


def test_tebd_has_a_single_view_which_is_the_configuration():
    bijector = HierarchicalBijector((4, 4), tebd_layout(4, 2, 2), lambda layer: Linear(
        torch.eye(layer.patch_size) * 2.0, (layer.patch_size,)))
    z = torch.randn(2, 4, 4)
    views = scale_views(bijector, z)
    assert len(views) == 1
    torch.testing.assert_close(views[0], bijector(z)[0])


def test_receptive_fields_of_a_linear_bijector_are_its_jacobian_columns():
    torch.manual_seed(0)
    matrix = torch.randn(16, 16, dtype=torch.float64) + 4 * torch.eye(16, dtype=torch.float64)
    bijector = Linear(matrix, (4, 4))
    jac = jacobian(bijector, torch.randn(5, 4, 4, dtype=torch.float64))
    assert jac.shape == (5, 16, 16)
    for k in (0, 7, 15):
        torch.testing.assert_close(jac[:, :, k], matrix[:, k].expand(5, 16))


def test_rms_radius_on_the_periodic_lattice():
    weights = torch.zeros(3, 8, dtype=torch.float64)
    weights[0, [2, 3]] = 1.0  # neighbours: radius 1/2
    weights[1, [0, 7]] = 1.0  # neighbours across the boundary: also 1/2
    weights[2, [0, 2, 4, 6]] = 1.0  # spread: spacing 2 on the ring of 8
    radius = rms_radius(weights, (8,))
    torch.testing.assert_close(radius[:2], torch.tensor([0.5, 0.5], dtype=torch.float64))
    assert radius[2] == pytest.approx(math.sqrt((1 + 1 + 9 + 9) / 4))  # best centre: a gap


def test_haar_receptive_fields_widen_with_scale():
    bijector = haar_mera(8, 2, 0)
    groups = bijector.latent_groups()
    jac = jacobian(bijector, torch.zeros(1, 8, 8, dtype=torch.float64))
    extent = receptive_field_extent(jac, groups, (8, 8))
    assert extent[0] < extent[1] < extent[2], extent
    assert extent[0] == pytest.approx(math.sqrt(0.5))  # 2x2 wavelet: four sites at (±1/2, ±1/2)
    assert extent[1] == pytest.approx(math.sqrt(2.5))  # 4x4 block: (±1/2, ±3/2) per axis
    assert extent[3] == pytest.approx(extent[2])  # both cover the whole 8x8 lattice uniformly


def test_showcase_latents_come_from_their_scale():
    bijector = haar_mera(8, 2, 1)
    groups = bijector.latent_groups()
    chosen = showcase_latents(bijector, groups, (8, 8))
    assert [len(c) for c in chosen] == [3, 3, 3, 1]
    for sites, group in zip(chosen, groups, strict=True):
        assert set(sites) <= set(group.tolist())


def test_gaussian_mi_of_independent_variables_is_zero_within_error():
    n = 4000
    mi, err = gaussian_mutual_information(torch.randn(n, 12, dtype=torch.float64))
    off = ~torch.eye(12, dtype=torch.bool)
    assert (mi[off].abs() < 5 * err[off]).all()
    pair_sd = 1 / (math.sqrt(2) * n)
    assert abs(mean_off_diagonal(mi)) < 4 * pair_sd / math.sqrt(off.sum())


@pytest.mark.parametrize("rho", [0.3, 0.6, 0.9])
def test_gaussian_mi_of_correlated_pairs_matches_the_formula(rho):
    n, exact = 4000, -0.5 * math.log(1 - rho**2)
    a, b = torch.randn(2, n, 20, dtype=torch.float64)
    y = rho * a + math.sqrt(1 - rho**2) * b
    for transform in (lambda v: v, lambda v: v.pow(3) + torch.exp(v)):  # monotone: same MI
        estimates = []
        for k in range(20):
            mi, err = gaussian_mutual_information(torch.stack([a[:, k], transform(y[:, k])], 1))
            assert abs(mi[0, 1] - exact) < 4 * err[0, 1]
            estimates.append(float(mi[0, 1]))
        assert abs(sum(estimates) / 20 - exact) < 4 * float(err[0, 1]) / math.sqrt(20)


def test_binned_mi_is_zero_for_independent_and_sees_non_monotone_dependence():
    n = 4000
    mi = binned_mutual_information(torch.randn(n, 12, dtype=torch.float64))
    pair_sd = math.sqrt(2 * 7**2) / (2 * n)  # 2n I ~ chi^2 with (bins - 1)^2 dof
    assert abs(mean_off_diagonal(mi)) < 4 * pair_sd / math.sqrt(132)
    x = torch.randn(n, dtype=torch.float64)
    pair = torch.stack([x, x**2 + 0.1 * torch.randn(n, dtype=torch.float64)], 1)
    assert float(binned_mutual_information(pair)[0, 1]) > 0.3
    assert float(gaussian_mutual_information(pair)[0][0, 1]) < 0.01


def test_effective_energy_of_an_exact_flow_is_the_prior_energy_plus_constant():
    torch.manual_seed(1)
    matrix = torch.randn(9, 9, dtype=torch.float64) + 3 * torch.eye(9, dtype=torch.float64)
    bijector = Linear(matrix, (3, 3))
    precision = torch.linalg.inv(matrix @ matrix.T)

    def log_prob(x):  # N(0, A A^T), unnormalised
        flat = x.reshape(x.shape[0], -1)
        return -0.5 * ((flat @ precision) * flat).sum(1)

    ln_z = 4.5 * math.log(2 * math.pi) + float(torch.linalg.slogdet(matrix)[1])
    z = torch.randn(6, 3, 3, dtype=torch.float64)
    energy = effective_energy(bijector, log_prob, z)
    constant = effective_energy_constant(9, ln_z)
    torch.testing.assert_close(energy - constant, 0.5 * z.reshape(6, -1).pow(2).sum(1))
    direction = torch.zeros(3, 3, dtype=torch.float64)
    direction[1, 1] = 1.0
    t = torch.linspace(-2, 2, 5, dtype=torch.float64)
    cut = latent_cut(bijector, log_prob, z, direction, t) - constant
    perp = z.reshape(6, -1).pow(2).sum(1) - z[:, 1, 1] ** 2
    torch.testing.assert_close(cut, 0.5 * (t[:, None] ** 2 + perp[None]))


def test_coverage_gives_both_kl_divergences_of_shifted_gaussians():
    """q = N(0, 1)^d against pi~ = 3 exp(-|x - mu|^2 / 2): both KLs are |mu|^2 / 2 = 0.25 nats,
    within 4 standard errors of their sample means."""
    generator = torch.Generator().manual_seed(11)
    d, n, mu = 2, 20000, torch.full((2,), 0.5, dtype=torch.float64)
    ln_z = math.log(3.0) + 0.5 * d * math.log(2 * math.pi)

    def log_w(x):  # ln pi~ - ln q
        return math.log(3.0) - 0.5 * (x - mu).pow(2).sum(1) + 0.5 * x.pow(2).sum(1) \
            + 0.5 * d * math.log(2 * math.pi)

    x_q = torch.randn(n, d, generator=generator, dtype=torch.float64)
    x_pi = mu + torch.randn(n, d, generator=generator, dtype=torch.float64)
    w_q, w_pi = log_w(x_q), log_w(x_pi)
    result, kl = coverage(w_q, w_pi, ln_z), 0.5 * float(mu.pow(2).sum())
    for key, w in (("kl_flow_target", w_q), ("kl_target_flow", w_pi)):
        assert abs(result[key] - kl) < 4 * float(w.std()) / math.sqrt(n), key


def test_mass_outside_is_twice_the_tail_for_one_distribution_and_more_for_a_narrow_one():
    generator = torch.Generator().manual_seed(12)
    n = 20000
    reference = torch.randn(n, generator=generator, dtype=torch.float64)
    same = torch.randn(n, generator=generator, dtype=torch.float64)
    wider = 3 * torch.randn(n, generator=generator, dtype=torch.float64)
    error = math.sqrt(0.02 * 0.98 / n)
    assert abs(mass_outside(reference, same) - 0.02) < 5 * error
    assert mass_outside(reference, wider) > 0.4  # P(|3 Z| > 2.33) = 0.44
