"""ln Z entries and the quantities derived from them (the Ising ln Z, the free energy)."""

import pytest

from neuralrg.measure.free_energy import derived_entries
from neuralrg.targets import Phi4, RelaxedIsing


def test_derived_entries_carry_the_verdict_and_flip_the_pull_with_the_scale():
    entry = {"value": 10.0, "err": 0.5, "exact": 9.0, "pull": 2.0, "reliable": False,
             "reason": "why", "estimator": "bennett", "estimates": {}}
    derived = derived_entries(entry, {"up": (2.0, 1.0), "down": (-0.25, 0.0)})
    assert derived["up"] == {"value": 21.0, "err": 1.0, "exact": 19.0, "pull": 2.0,
                             "reliable": False, "reason": "why", "estimator": "bennett"}
    down = derived["down"]
    assert (down["value"], down["err"], down["exact"], down["pull"]) == (-2.5, 0.125, -2.25,
                                                                         -2.0)


def test_ising_free_energy_per_site_is_minus_t_ln_z_over_n():
    target = RelaxedIsing(4, 2.5)
    views = target.derived_ln_z()
    relaxed = target.exact_ln_z()
    ising = views["ising_ln_z"][0] * relaxed + views["ising_ln_z"][1]
    scale, offset = views["free_energy_per_site"]
    assert ising == pytest.approx(relaxed + target.ln_z_shift, rel=1e-14)
    assert scale * relaxed + offset == pytest.approx(-2.5 * ising / 16, rel=1e-12)


def test_phi4_free_energy_is_in_units_of_kt():
    assert Phi4(4).derived_ln_z() == {"free_energy_per_site": (-1 / 16, 0.0)}
