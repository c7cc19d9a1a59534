"""The verdict rule (README, "How the verdict is decided"), one deterministic case per rule, on in-memory records.

Every verdict-changing finding rests on a test that excludes the null it refutes; losing significance, a reported
delta inside the interval, or a gain larger than reported change nothing. Gains and reversals are judged alike.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import stats
from audit.claim import Claim
from audit.errors import InputError
from audit.records import Records
from audit.verify import verify


def paired(b: int, c: int, both: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    """0/1 arms with b treatment-only passes, c baseline-only passes, and the concordant counts."""
    base = np.array([0] * b + [1] * c + [1] * both + [0] * neither, dtype=float)
    treat = np.array([1] * b + [0] * c + [1] * both + [0] * neither, dtype=float)
    return base, treat


def block(arm, scores, budget=512, scoring="exact", variant="default", clusters=None, ids=None):
    n = len(scores)
    ids = ids if ids is not None else [f"q{i:04d}" for i in range(n)]
    rows = {"arm": [arm] * n, "item_id": ids, "variant": [variant] * n, "budget": [budget] * n,
            "scoring": [scoring] * n, "score": list(map(float, scores)), "text": ["x"] * n, "target": ["1"] * n,
            "finish_reason": ["stop"] * n, "completion_tokens": [1.0] * n, "prompt_hash": [None] * n,
            "doc_hash": [None] * n, "source": ["mem"] * n, "line": list(range(1, n + 1)), "extracted": [None] * n,
            "cluster": list(clusters) if clusters is not None else [None] * n}
    return pd.DataFrame(rows)


def records(*blocks) -> Records:
    return Records(table=pd.concat(blocks, ignore_index=True))


def claim(budgets=(512,), scorings=("exact",), variants=(), reported=None, options=None, direction="greater",
          higher=None) -> Claim:
    logs = {b: f"mem/{b}" for b in budgets}
    return Claim.model_validate({
        "claim": {"title": "rule", "direction": direction, "reported": reported or {},
                  "settings": {"max_tokens": budgets[0], "scoring": scorings[0]}},
        "samples": {"format": "jsonl", "baseline": logs, "treatment": logs,
                    "variants": {v: {"baseline": logs, "treatment": logs} for v in variants}},
        "perturbations": {"scorings": list(scorings), "higher_is_better": higher or {}},
        "options": {"resamples": 1000, **(options or {})},
    })


def run(c: Claim, rec: Records):
    return verify(c, records=rec)


def by(out, check, code):
    return [f for f in out.findings if f.check == check and f.code == code]


def impacts(out):
    return {(f.check, f.code): f.impact for f in out.findings if f.impact not in ("none",)}


# --- fragile needs evidence of change ------------------------------------------------------------------------------


def test_a_gain_that_is_weaker_but_not_shown_to_change_is_not_fragile():
    """+0.08 (significant) at 512 → +0.05 (interval covers 0) at 1024, change −0.03 [−0.07, 0.00]: it was called
    'vanishes' (critical, fragile); the change is not shown beyond the margin, so it is info and supported."""
    b512, t512 = paired(b=44, c=12, both=100, neither=244)   # +0.08, score p ≈ 2e-5
    b1024, t1024 = b512.copy(), t512.copy()
    t1024[:12] = 0                                            # 12 treatment-only wins lost: +0.05
    out = run(claim(budgets=(512, 1024)),
              records(block("baseline", b512), block("treatment", t512),
                      block("baseline", b1024, budget=1024), block("treatment", t1024, budget=1024)))
    big = next(c for c in out.report.cells if c.budget == 1024)
    assert big.delta == pytest.approx(0.05)
    assert out.report.verdict == "supported", out.report.verdict_reason
    (f,) = [f for f in out.findings if f.check == "truncation" and f.statistic.get("budget") == 1024]
    assert f.code == "not_shown_to_change" and f.impact == "none"
    assert f.statistic["change"] == pytest.approx(-0.03)
    assert f.statistic["change_ci_high"] > -f.statistic["margin"]  # not shown beyond the margin


def test_a_gain_shown_to_collapse_is_fragile_and_its_interval_agrees():
    b, t = paired(b=60, c=10, both=100, neither=230)          # +0.125
    b2, t2 = b.copy(), t.copy()
    t2[:45] = 0                                               # +0.0125 at 1024
    out = run(claim(budgets=(512, 1024)),
              records(block("baseline", b), block("treatment", t),
                      block("baseline", b2, budget=1024), block("treatment", t2, budget=1024)))
    assert out.report.verdict == "fragile"
    (f,) = by(out, "truncation", "shrinks")
    s = f.statistic
    assert s["change_ci_high"] < -s["margin"] and s["p_break_holm"] < 0.025
    # The one-sided p against −margin agrees with the interval: bound beyond −margin ⇔ p < α/2.
    assert s["p_break"] < 0.025


def test_three_ood_variants_that_change_nothing_are_not_fragile():
    b, t = paired(b=40, c=10, both=150, neither=200)          # +0.075, significant
    blocks = [block("baseline", b), block("treatment", t)]
    for v in ("v1", "v2", "v3"):
        b2, t2 = b.copy(), t.copy()
        t2[:6] = 0                                            # each variant a little weaker, not significantly
        blocks += [block("baseline", b2, variant=v), block("treatment", t2, variant=v)]
    out = run(claim(variants=("v1", "v2", "v3")), records(*blocks))
    assert out.report.verdict == "supported", out.report.verdict_reason
    fams = {f.statistic["family_size"] for f in out.findings if "family_size" in f.statistic}
    assert fams == {3}


def test_holds_is_shown_by_tost_within_the_margin():
    rng = np.random.default_rng(0)
    n = 2000
    b = (rng.random(n) < 0.4).astype(float)
    t = b.copy()
    flip = rng.choice(np.flatnonzero(b == 0), 300, replace=False)
    t[flip] = 1.0                                             # +0.15
    t2 = t.copy()
    t2[flip[:4]] = 0.0                                        # +0.148 at 1024: a 4-item change
    out = run(claim(budgets=(512, 1024), options={"margin": 0.03}),
              records(block("baseline", b), block("treatment", t),
                      block("baseline", b, budget=1024), block("treatment", t2, budget=1024)))
    (f,) = by(out, "truncation", "holds_at_budget")
    assert f.outcome == "pass" and "TOST" in f.title
    assert -0.03 < f.statistic["change_ci_low"] and f.statistic["change_ci_high"] < 0.03


# --- not_reproduced needs evidence against ------------------------------------------------------------------------


def test_a_gain_larger_than_reported_is_supported():
    """+0.150 [+0.09, +0.21] against a reported +0.05 used to be not_reproduced ('outside the CI')."""
    b, t = paired(b=70, c=10, both=120, neither=200)          # +0.15 on 400
    out = run(claim(reported={"delta": 0.05}), records(block("baseline", b), block("treatment", t)))
    assert out.report.verdict == "supported"
    assert by(out, "significance", "larger_than_reported")
    assert not any(f.impact == "not_reproduced" for f in out.findings)


def test_a_reported_delta_inside_a_non_significant_interval_is_inconclusive():
    """CI about [−0.002, +0.06] containing the reported +0.05: not significant is not refuted."""
    b, t = paired(b=19, c=9, both=100, neither=172)           # +0.033 on 300, score p = 0.059
    out = run(claim(reported={"delta": 0.05}), records(block("baseline", b), block("treatment", t)))
    (cell,) = out.report.cells
    assert cell.ci_low < 0 < 0.05 < cell.ci_high
    assert out.report.verdict == "inconclusive"
    assert by(out, "significance", "not_significant") or by(out, "significance", "underpowered")


def test_a_delta_significantly_below_the_reported_one_is_not_reproduced():
    b, t = paired(b=30, c=10, both=100, neither=260)          # +0.05 [0.02, 0.08]
    out = run(claim(reported={"delta": 0.20}), records(block("baseline", b), block("treatment", t)))
    assert out.report.verdict == "not_reproduced"
    (f,) = by(out, "significance", "smaller_than_reported")
    assert f.statistic["ci_high"] < 0.20 and f.statistic["p_below_reported"] < 0.025
    assert "still significant" in f.detail


@pytest.mark.parametrize("b,c,verdict", [(11, 3, "inconclusive"), (3, 11, "inconclusive"),
                                         (13, 3, "supported"), (3, 13, "not_reproduced")])
def test_mirror_image_data_get_mirror_image_verdicts(b, c, verdict):
    """11 vs 3 discordant (exact p = 0.057) used to be inconclusive one way and not_reproduced the other. One test
    judges both: McNemar with continuity correction, (|b − c| − 1)/√(b + c): 11 vs 3 → p = 0.061 both ways;
    13 vs 3 → p = 0.024 both ways."""
    base, treat = paired(b=b, c=c, both=30, neither=56)
    out = run(claim(), records(block("baseline", base), block("treatment", treat)))
    (cell,) = out.report.cells
    assert cell.p_value == pytest.approx(stats.score_inference(max(b, c), min(b, c), 100).test.p_value)
    assert out.report.verdict == verdict


def test_a_small_reversal_that_is_not_significant_is_not_critical():
    """n = 10, 0 vs 3 discordant (exact p = 0.25, score p = 0.083): nothing is shown."""
    base, treat = paired(b=0, c=3, both=4, neither=3)
    out = run(claim(), records(block("baseline", base), block("treatment", treat)))
    assert out.report.verdict == "inconclusive"
    assert not [f for f in out.findings if f.severity == "critical"]


def test_a_precise_null_is_named():
    rng = np.random.default_rng(1)
    n = 4000
    b = (rng.random(n) < 0.5).astype(float)
    t = b.copy()
    idx = rng.choice(n, 200, replace=False)
    t[idx] = 1 - t[idx]
    out = run(claim(options={"margin": 0.05}), records(block("baseline", b), block("treatment", t)))
    (f,) = by(out, "significance", "precise_null")
    assert -0.05 < f.statistic["ci_low"] and f.statistic["ci_high"] < 0.05


def test_reported_numbers_on_another_scale_are_refused():
    b, t = paired(b=30, c=10, both=100, neither=260)
    with pytest.raises(InputError) as exc:
        run(claim(reported={"delta": 15}), records(block("baseline", b), block("treatment", t)))
    assert "give it as a fraction: 0.15" in str(exc.value)


def test_counts_whose_score_interval_excludes_zero_are_supported():
    """4/89 vs 12/89: the score interval [+0.006, +0.181] excludes 0 and the score test agrees (p = 0.037)."""
    c = Claim.model_validate({"claim": {"title": "counts", "reported": {"baseline": {"passes": 4, "n": 89},
                                                                          "treatment": {"passes": 12, "n": 89}}}})
    out = verify(c)
    assert out.report.verdict == "supported"
    (f,) = by(out, "significance", "reproduced")
    assert f.statistic["ci_low"] == pytest.approx(0.00619, abs=1e-4) and f.statistic["p_value"] < 0.05
    assert f.statistic["fisher_p"] > 0.05  # shown beside: the conditional exact test is conservative


# --- polarity, clusters --------------------------------------------------------------------------------------------


def test_an_error_rate_claim_is_not_reversed_by_a_higher_is_better_scoring():
    """direction: less (an error rate). Edit similarity rises with the treatment: in its own polarity that is a
    gain, not the critical reversal it was called."""
    err_b, err_t = paired(b=10, c=60, both=50, neither=280)   # error rate falls by 0.125: the claimed gain
    sim_b, sim_t = 1 - err_b, 1 - err_t                        # similarity rises by 0.125
    out = run(claim(scorings=("errors", "edit-similarity"), direction="less"),
              records(block("baseline", err_b, scoring="errors"), block("treatment", err_t, scoring="errors"),
                      block("baseline", sim_b, scoring="edit-similarity"),
                      block("treatment", sim_t, scoring="edit-similarity")))
    assert out.report.verdict == "supported", out.report.verdict_reason
    assert not [f for f in out.findings if f.severity == "critical"]
    (f,) = [f for f in out.findings if f.check == "scoring" and f.statistic.get("scoring") == "edit-similarity"]
    assert f.statistic["polarity"] == 1 and f.impact == "none"


def test_a_polarity_override_is_honoured():
    b, t = paired(b=60, c=10, both=50, neither=280)
    out = run(claim(scorings=("exact", "loss")),
              records(block("baseline", b), block("treatment", t),
                      block("baseline", 1 - b, scoring="loss"), block("treatment", 1 - t, scoring="loss")))
    assert out.report.verdict == "fragile"  # 'loss' read in the claimed (greater) direction: a reversal
    out = run(claim(scorings=("exact", "loss"), higher={"loss": False}),
              records(block("baseline", b), block("treatment", t),
                      block("baseline", 1 - b, scoring="loss"), block("treatment", 1 - t, scoring="loss")))
    assert out.report.verdict == "supported"


def test_few_clusters_use_t_with_c_minus_1_df_and_say_so():
    rng = np.random.default_rng(2)
    n, C = 100, 5
    cl = np.arange(n) % C
    b = (rng.random(n) < 0.4).astype(float)
    t = (rng.random(n) < 0.6).astype(float)
    out = run(claim(options={"cluster_field": "passage"}),
              records(block("baseline", b, clusters=cl), block("treatment", t, clusters=cl)))
    (cell,) = out.report.cells
    assert cell.ci_method == "cluster-t"
    (f,) = by(out, "significance", "few_clusters")
    assert f.statistic["clusters"] == 5


# --- the p-value and the interval never disagree -------------------------------------------------------------------


@pytest.mark.parametrize("cc", [0.0, 1.0])
@settings(max_examples=200, deadline=None)
@given(b=st.integers(0, 40), c=st.integers(0, 40), rest=st.integers(0, 60))
def test_tango_interval_excludes_zero_exactly_when_the_score_test_rejects(cc, b, c, rest):
    n = b + c + rest
    if n < 2:
        return
    inf = stats.score_inference(b, c, n, correction=cc)
    iv, p = inf.interval, inf.test.p_value
    assert -1.0 <= iv.low <= inf.value <= iv.high <= 1.0
    if abs(p - 0.05) > 1e-9:
        assert (p < 0.05) == (iv.low > 0 or iv.high < 0)
    # and the one-sided p at a bound is α/2
    if -1 < iv.low and b + c > 0:
        assert inf.p_value(iv.low, "greater") == pytest.approx(0.025, abs=1e-6)


def test_tango_interval_matches_the_published_value():
    """Fagerland, Lydersen & Laake (2014, Stat Med 33:2850), airway hyper-responsiveness: n = 21, 1 pair changes one
    way and 7 the other; Tango's score interval for the difference −0.286 is [−0.517, −0.026]."""
    iv = stats.tango_interval(1, 7, 21)
    assert (iv.low, iv.high) == pytest.approx((-0.517, -0.026), abs=5e-4)


def test_tango_constrained_mle_is_the_maximum_likelihood():
    from scipy.optimize import minimize_scalar

    b, c, n, d = 5, 2, 40, 0.2

    def nll(q):
        return -(b * math.log(q + d) + c * math.log(q) + (n - b - c) * math.log(1 - 2 * q - d))

    res = minimize_scalar(nll, bounds=(1e-9, (1 - d) / 2 - 1e-9), method="bounded", options={"xatol": 1e-12})
    assert stats._tango_q(b, c, n, d) == pytest.approx(res.x, abs=1e-7)


def test_mcnemar_power_matches_simulation():
    rng = np.random.default_rng(0)
    n, psi, d = 200, 0.4, 0.1
    x = rng.multinomial(n, [(psi + d) / 2, (psi - d) / 2, 1 - psi], size=20000)
    bb, cc = x[:, 0], x[:, 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(bb + cc > 0, np.maximum(np.abs(bb - cc) - 1, 0) / np.sqrt(bb + cc), 0)  # continuity-corrected
    sim = float(np.mean(z > 1.959963984540054))
    assert stats.mcnemar_power(n, psi, d) == pytest.approx(sim, abs=0.01)  # 3.5 simulation SEs


def test_exact_fisher_power_and_mde_at_4_of_89():
    assert stats.fisher_power(89, 89, 4 / 89, 4 / 89 + 0.087) == pytest.approx(0.457, abs=0.001)
    assert stats.mde_fisher(89, 89, 4 / 89) == pytest.approx(0.1366, abs=5e-4)


def test_holm_adjusted_matches_statsmodels_and_keeps_nan():
    from statsmodels.stats.multitest import multipletests

    p = [0.01, 0.04, float("nan"), 0.03, 0.2]
    ours = stats.holm_adjusted(p)
    ref = multipletests([0.01, 0.04, 0.03, 0.2], method="holm")[1]
    assert math.isnan(ours[2])
    assert list(ours[[0, 1, 3, 4]]) == pytest.approx(list(ref))
