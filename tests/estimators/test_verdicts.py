"""The verdict rules: what makes an estimate reliable, how independent estimates of one
quantity are reconciled, and that no verdict looks at the exact value."""

import math

import pytest

from neuralrg.estimators import Verdict, judge_chain, judge_importance, reconcile, verdict_entry


def fields(value, err):
    return {"value": value, "err": err}


@pytest.mark.parametrize("args, reason", [
    ((3, 0.1, True, math.nan, math.nan), "too short"),
    ((100, 0.0, True, 1.0, 1e4), "no fluctuations"),
    ((100, 0.1, True, 1.05, 1e4), "R-hat 1.050 > 1.01"),
    ((100, 0.1, True, 1.001, 120.0), "bulk ESS 120 < 400"),
    ((100, 0.1, False, 1.001, 1e4), "window did not converge"),
])
def test_chain_verdicts_name_their_reason(args, reason):
    verdict = judge_chain(*args)
    assert not verdict.reliable and reason in verdict.reason


def test_importance_sampling_is_reliable_only_when_confirmed():
    unconfirmed = judge_importance(0.3, 5000.0, 0.1)
    alone = reconcile({"importance_sampling": (fields(1.0, 0.1), unconfirmed)})
    assert not alone["importance_sampling"]["reliable"]
    assert "nothing confirms it" in alone["importance_sampling"]["reason"]
    both = reconcile({"markov_chain": (fields(1.05, 0.1), Verdict(True)),
                      "importance_sampling": (fields(1.0, 0.1), unconfirmed)})
    assert both["importance_sampling"]["reliable"] and both["markov_chain"]["reliable"]
    assert "confirmed" in both["importance_sampling"]["note"]


def test_an_unconfirmed_estimate_never_brings_down_a_solid_one():
    judged = reconcile({"markov_chain": (fields(1.0, 0.01), Verdict(True)),
                        "importance_sampling": (fields(2.0, 0.01),
                                                judge_importance(0.3, 5000.0, 0.01))})
    assert judged["markov_chain"]["reliable"]
    assert not judged["importance_sampling"]["reliable"]
    assert "disagree by" in judged["importance_sampling"]["reason"]


def test_two_solid_estimates_that_disagree_are_both_unreliable():
    judged = reconcile({"a": (fields(1.0, 0.01), Verdict(True)),
                        "b": (fields(1.1, 0.01), Verdict(True))})
    assert not judged["a"]["reliable"] and not judged["b"]["reliable"]
    entry = verdict_entry({"a": (fields(1.0, 0.01), Verdict(True)),
                           "b": (fields(1.1, 0.01), Verdict(True))}, exact=None)
    assert not entry["reliable"] and "disagree" in entry["reason"]


def test_the_reported_value_is_the_most_precise_reliable_estimate():
    entry = verdict_entry({"markov_chain": (fields(1.0, 0.05), Verdict(True)),
                           "importance_sampling": (fields(1.01, 0.01),
                                                   judge_importance(0.2, 5000.0, 0.01))},
                          exact=1.0)
    assert entry["estimator"] == "importance_sampling" and entry["value"] == 1.01
    assert entry["pull"] == pytest.approx(1.0) and entry["reliable"]


def test_verdicts_do_not_look_at_the_exact_value():
    estimates = {"markov_chain": (fields(1.0, 0.05), Verdict(True)),
                 "importance_sampling": (fields(3.0, 0.01), judge_importance(0.6, 5e3, 0.01))}
    with_exact = verdict_entry(estimates, exact=1.0)
    without = verdict_entry(estimates, exact=None)
    assert without["pull"] is None and without["exact"] is None
    for key in ("value", "err", "reliable", "reason", "estimates"):
        assert with_exact[key] == without[key]
