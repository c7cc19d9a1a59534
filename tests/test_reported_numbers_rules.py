"""reported_numbers: rounding tolerances that can fail, and a reported p of 0."""
from __future__ import annotations

import json

import pytest

from audit import stats
from audit.claim import load_claim
from audit.verify import verify
from checks import reported_numbers as rn


def counts_claim(tmp_path, **reported):
    p = tmp_path / "c.yaml"
    p.write_text(json.dumps({"claim": {"title": "t", "reported": reported}}))
    return load_claim(p)


def codes(outcome):
    return {f.code for f in outcome.findings if f.check == "reported_numbers"}


def finding(outcome, code):
    (f,) = [f for f in outcome.findings if f.check == "reported_numbers" and f.code == code]
    return f


# --- tolerances ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("x,tol", [
    (0.15, 0.005), (0.3, 0.05), (0.125, 0.0005), (3.1e-05, 5e-07),
    (0.0, 0.005), (1.0, 0.005),  # no decimals: two decimals, not ±0.5 (which would match anything on [0, 1])
    (15.0, 0.005), (20.0, 0.005),  # trailing zeros never widen it (Decimal.normalize made 20 "2E+1": ±5)
])
def test_half_unit(x, tol):
    assert rn.half_unit(x) == pytest.approx(tol, rel=1e-12)


def test_table_places_without_decimals_is_none():
    assert rn.table_places(0.0, 1.0, 1.0) is None
    assert rn.table_places(0.0, 0.35, None) == 2


def test_rate_of_zero_no_longer_matches_every_small_k():
    assert rn.granular_k(0.0, 10) == [0]
    assert not rn.rounds_to(0.3, 0.0)  # ±0.5 would have accepted 3/10 as "0"
    assert rn.rounds_to(0.004, 0.0) and not rn.rounds_to(0.006, 0.0)


def test_delta_of_zero_against_counts_is_checked(tmp_path):
    """4/89 vs 12/89 reported with delta 0: with the old ±0.5 tolerance any delta within half a unit 'matched'."""
    out = verify(counts_claim(tmp_path, baseline={"passes": 4, "n": 89}, treatment={"passes": 12, "n": 89},
                              delta=0))
    f = finding(out, "delta_arithmetic")
    assert f.severity == "critical"
    assert f.statistic["tolerance"] == pytest.approx(0.005)
    # A delta that does equal 8/89 to its reported precision still passes.
    out = verify(counts_claim(tmp_path, baseline={"passes": 4, "n": 89}, treatment={"passes": 12, "n": 89},
                              delta=0.09))
    assert "delta_consistent" in codes(out)


def test_integer_rates_are_read_to_two_decimals(tmp_path):
    """baseline 0, treatment 1, delta 0.6: the old tolerance 3 × 0.5 = 1.5 let any delta pass."""
    out = verify(counts_claim(tmp_path, baseline=0, treatment=1, delta=0.6, n=20))
    assert "delta_arithmetic" in codes(out)
    out = verify(counts_claim(tmp_path, baseline=0, treatment=1, delta=1, n=20))
    assert "delta_arithmetic" not in codes(out) and "delta_consistent" in codes(out)


# --- a reported p of 0 --------------------------------------------------------------------------------------------

def test_p_value_zero_is_impossible_and_read_as_below_0_001(tmp_path):
    """4/89 vs 12/89: every test gives p well above 0.001 (Fisher two-sided ≈ 0.06), so "p = 0" reproduces nothing.
    Before, "0" carried a ±0.5 tolerance and matched every variant with p ≤ 0.5."""
    out = verify(counts_claim(tmp_path, baseline={"passes": 4, "n": 89}, treatment={"passes": 12, "n": 89},
                              p_value=0, test="fisher"))
    z = finding(out, "p_value_zero")
    assert (z.outcome, z.severity, z.impact) == ("flag", "minor", "none")
    assert z.statistic["read_as"] == "p < 0.001"
    f = finding(out, "p_value_irreproducible")
    assert "p < 0.001" in f.title
    assert not any(r["matches"] for r in f.rows)
    from scipy.stats import fisher_exact

    fisher = [r for r in f.rows if "fisher" in r["test"].lower() and r["alternative"] == "two-sided"][0]
    assert fisher["p_value"] == pytest.approx(fisher_exact([[12, 77], [4, 85]]).pvalue, rel=1e-9)
    assert fisher["p_value"] > 0.001


def test_p_value_zero_matches_tests_below_0_001(tmp_path):
    """5/100 vs 60/100: Fisher two-sided p ≈ 1e-17 < 0.001, so "p = 0" reproduces (and is still called impossible)."""
    out = verify(counts_claim(tmp_path, baseline={"passes": 5, "n": 100}, treatment={"passes": 60, "n": 100},
                              p_value=0, test="fisher"))
    assert {"p_value_zero", "p_value_reproduced"} <= codes(out)
    f = finding(out, "p_value_reproduced")
    assert all(r["p_value"] < 0.001 for r in f.rows if r["matches"])
    assert stats.fisher_exact(60, 100, 5, 100).p_value < 0.001


def test_p_value_zero_without_counts_is_still_impossible(tmp_path):
    out = verify(counts_claim(tmp_path, baseline=0.4, treatment=0.5, p_value=0))
    assert {"p_value_zero", "p_value_no_counts"} <= codes(out)


def test_p_value_one_is_not_a_wildcard(tmp_path):
    """A reported p = 1 read as ±0.5 matched every test with p ≥ 0.5; read to two decimals it needs p ≥ 0.995."""
    assert not rn.p_matches(0.6, 1.0) and rn.p_matches(0.996, 1.0) and rn.p_matches(1.0, 1.0)
    out = verify(counts_claim(tmp_path, baseline={"passes": 40, "n": 89}, treatment={"passes": 45, "n": 89},
                              p_value=1))
    (f,) = [f for f in out.findings if f.check == "reported_numbers" and f.code.startswith("p_value")]
    wide = [r for r in f.rows if 0.5 <= r["p_value"] < 0.995]
    assert len(wide) >= 5 and not any(r["matches"] for r in wide)
    assert all(r["matches"] == (r["p_value"] >= 0.995) for r in f.rows)


def test_ordinary_p_values_keep_their_rounding(tmp_path):
    """Fisher's tea tasting (3/4 vs 1/4): two-sided p = 0.4857, reported as 0.49 (±0.005)."""
    out = verify(counts_claim(tmp_path, baseline={"passes": 1, "n": 4}, treatment={"passes": 3, "n": 4},
                              p_value=0.49, test="fisher"))
    assert "p_value_reproduced" in codes(out) and "p_value_zero" not in codes(out)
