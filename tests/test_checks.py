"""Checks and verdicts on synthetic logs whose answer is known by construction."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.claim import load_claim
from audit.cli import main
from audit.verify import verify
from checks.reported_numbers import decimals, granular_k, rounds_to
from conftest import arm_rows, jsonl_claim, write_lmeval_run


def codes(outcome, check=None):
    return {f.code for f in outcome.findings if check is None or f.check == check}


def finding(outcome, check, code):
    (f,) = [f for f in outcome.findings if f.check == check and f.code == code]
    return f


def truncation_logs(n=60, seed=1):
    """Baseline reasons at length and is cut off at 16 tokens; at 64 it finishes and beats the treatment."""
    rng = np.random.default_rng(seed)
    base64 = [int(rng.random() < 0.7) for _ in range(n)]
    treat = [int(rng.random() < 0.4) for _ in range(n)]
    cut = "Let me check this step by"
    return {
        "logs/base_16.jsonl": arm_rows([0] * n, [cut] * n),
        "logs/base_64.jsonl": arm_rows(base64, [f"{cut} step. So it is {c}" for c in base64]),
        "logs/treat_16.jsonl": arm_rows(treat, [str(c) for c in treat]),
        "logs/treat_64.jsonl": arm_rows(treat, [str(c) for c in treat]),
    }


def test_truncation_artifact_is_fragile(claim_dir):
    p = claim_dir(jsonl_claim([16, 64], 16, ["last-number"]), truncation_logs())
    out = verify(load_claim(p))
    assert out.report.verdict == "fragile"
    assert out.report.exit_code == 1
    # Every baseline output is cut at 16 tokens: no untruncated item is left to test the gain on, so the verdict
    # rests on the reversal at 64 tokens; the confound is flagged without changing the verdict.
    assert {"reverses", "confounded_by_truncation", "rates", "per_budget"} <= codes(out, "truncation")
    assert finding(out, "truncation", "confounded_by_truncation").impact == "none"
    rates = {(r["arm"], r["budget"]): r for r in finding(out, "truncation", "rates").rows}
    assert rates[("baseline", 16)]["rate"] == 1.0 and rates[("baseline", 16)]["evidence"] == "prefix of budget 64: 60"
    assert rates[("treatment", 16)]["rate"] == 0.0
    assert rates[("baseline", 64)]["rate"] is None or np.isnan(rates[("baseline", 64)]["rate"])
    rev = finding(out, "truncation", "reverses")
    assert rev.statistic["delta_claimed"] > 0 > rev.statistic["delta"]
    assert rev.evidence and rev.evidence[0]["baseline_output_at_claimed"].startswith("Let me check")


def test_robust_gain_is_supported(claim_dir):
    n = 80
    base = [1 if i % 4 == 0 else 0 for i in range(n)]          # 25%
    treat = [1 if i % 4 != 3 else 0 for i in range(n)]         # 75%
    logs = {f"logs/{a}_{b}.jsonl": arm_rows(c) for b in (16, 64) for a, c in (("base", base), ("treat", treat))}
    c = jsonl_claim([16, 64], 16, ["exact", "last-number"], baseline=0.25, treatment=0.75, delta=0.5, n=n)
    out = verify(load_claim(claim_dir(c, logs)))
    assert out.report.verdict == "supported", [f.title for f in out.findings]
    assert out.report.exit_code == 0
    assert "reproduced" in codes(out, "significance")
    assert "holds_at_budget" in codes(out, "truncation")
    sig = finding(out, "significance", "reproduced")
    assert sig.statistic["b"] == 40 and sig.statistic["c"] == 0  # 40 items only the treatment gets right


def test_no_gain_with_power_is_not_reproduced(claim_dir):
    n = 400
    rng = np.random.default_rng(3)
    base = [int(x) for x in rng.random(n) < 0.5]
    treat = [int(x) for x in rng.random(n) < 0.5]
    logs = {"logs/base_16.jsonl": arm_rows(base), "logs/treat_16.jsonl": arm_rows(treat)}
    c = jsonl_claim([16], 16, baseline=round(float(np.mean(base)), 3), treatment=round(float(np.mean(base)) + 0.2, 3),
                    delta=0.2, n=n)
    out = verify(load_claim(claim_dir(c, logs)))
    assert out.report.verdict == "not_reproduced"
    # The reported +0.2 lies far beyond the measured interval: H0 "delta >= reported" is rejected one-sided.
    assert codes(out, "significance") & {"smaller_than_reported", "reversed"}
    assert "differs_from_logs" in codes(out, "reported_numbers")


def test_tiny_sample_is_inconclusive(claim_dir):
    logs = {"logs/base_16.jsonl": arm_rows([0, 1, 0, 0]), "logs/treat_16.jsonl": arm_rows([1, 1, 0, 1])}
    out = verify(load_claim(claim_dir(jsonl_claim([16], 16, delta=0.5), logs)))
    assert out.report.verdict == "inconclusive"
    f = finding(out, "significance", "underpowered")
    # 4 pairs: even 4 discordant pairs all one way give (4 − 1)/√4 = 1.5 < 1.96, so no outcome can reject: power 0
    # at the reported 0.5 and no detectable effect at all (MDE NaN).
    assert f.statistic["mde"] is None or np.isnan(f.statistic["mde"])
    assert f.statistic["power_at_reported"] == 0.0


def test_single_item_is_inconclusive_never_zero_width(claim_dir):
    logs = {"logs/base_16.jsonl": arm_rows([0]), "logs/treat_16.jsonl": arm_rows([1])}
    out = verify(load_claim(claim_dir(jsonl_claim([16], 16), logs)))
    assert out.report.verdict == "inconclusive"
    (cell,) = out.report.cells
    assert cell.ci_low is None and cell.ci_high is None


def test_scoring_sign_change_is_fragile(claim_dir):
    n = 60
    base = [1 if i % 3 == 0 else 0 for i in range(n)]
    treat = [1 if i % 3 != 2 else 0 for i in range(n)]
    # Treatment answers in prose; under a strict first-line scorer its gain disappears and reverses.
    base_rows = arm_rows(base)
    treat_rows = [{"id": f"q{i:04d}", "output": f"I think it is\n{c}", "target": "1"} for i, c in enumerate(treat)]
    logs = {"logs/base_16.jsonl": base_rows, "logs/treat_16.jsonl": treat_rows}
    out = verify(load_claim(claim_dir(jsonl_claim([16], 16, ["last-number", "first-line-exact"]), logs)))
    assert out.report.verdict == "fragile"
    f = finding(out, "scoring", "sign_change")
    assert f.statistic["scoring"] == "first-line-exact" and f.statistic["delta"] < 0


def test_arms_scored_differently(tmp_path):
    texts = ["1", "2", "3", "4"] * 10
    sc_b = {"strict-match": [0, 1, 0, 1] * 10}
    sc_t = {"strict-match": [1, 1, 1, 1] * 10}
    write_lmeval_run(tmp_path / "b", "add_direct", 16, texts, sc_b, "B", version=1.0)
    write_lmeval_run(tmp_path / "t", "add_verify", 16, texts, sc_t, "T", version=2.0)
    p = tmp_path / "c.yaml"
    p.write_text(json.dumps({"claim": {"title": "t", "settings": {"max_tokens": 16}},
                             "samples": {"format": "lm-eval", "baseline": {16: "b/samples_*.jsonl"},
                                         "treatment": {16: "t/samples_*.jsonl"}}}))
    out = verify(load_claim(p))
    f = finding(out, "scoring", "arms_scored_differently")
    assert f.rows == [{"field": "task_version", "baseline": 1.0, "treatment": 2.0}]
    assert out.report.verdict == "fragile"


# --- reported numbers ------------------------------------------------------------------------------------------

def counts_claim(tmp_path, **reported):
    p = tmp_path / "c.yaml"
    p.write_text(json.dumps({"claim": {"title": "t", "reported": reported}}))
    return load_claim(p)


def test_impossible_rate_and_bad_delta(tmp_path):
    out = verify(counts_claim(tmp_path, baseline=0.153, treatment=0.30, delta=0.18, n=40))
    assert {"impossible_rate", "delta_arithmetic"} <= codes(out, "reported_numbers")
    # Numbers that contradict each other cannot all be the claim: untrusted, inconclusive at best (not refuted).
    assert out.report.verdict == "inconclusive"


def test_fisher_tea_tasting_one_sided_p_detected(tmp_path):
    """Fisher's tea tasting: 3/4 vs 1/4; one-sided p = 0.2429, two-sided 0.4857 (reference/statistics.md)."""
    out = verify(counts_claim(tmp_path, baseline={"passes": 1, "n": 4}, treatment={"passes": 3, "n": 4},
                              p_value=0.2429, test="fisher"))
    f = finding(out, "reported_numbers", "p_value_one_sided")
    assert any(r["matches"] and r["alternative"] == "greater" and "fisher" in r["test"].lower() for r in f.rows)
    out2 = verify(counts_claim(tmp_path, baseline={"passes": 1, "n": 4}, treatment={"passes": 3, "n": 4},
                               p_value=0.4857, test="fisher"))
    assert "p_value_reproduced" in codes(out2, "reported_numbers")


def test_underpowered_4_of_89_vs_6_of_89(tmp_path):
    """The DESIGN.md example: 4/89 vs 6/89 cannot show a gain; MDE far above the observed 2.2 points."""
    out = verify(counts_claim(tmp_path, baseline={"passes": 4, "n": 89}, treatment={"passes": 6, "n": 89}))
    assert out.report.verdict == "inconclusive"
    f = finding(out, "significance", "underpowered")
    from scipy.stats import fisher_exact

    assert f.statistic["fisher_p"] == pytest.approx(fisher_exact([[6, 83], [4, 85]]).pvalue, rel=1e-9)
    from statsmodels.stats.proportion import test_proportions_2indep

    mn = test_proportions_2indep(6, 89, 4, 89, method="score", compare="diff", correction=True)
    assert f.statistic["p_value"] == pytest.approx(mn.pvalue, rel=1e-9)
    # Exact Fisher power: 80% needs +0.137 from 4/89 (the normal formula with the baseline variance says 0.087,
    # where the exact power is only 46%).
    assert f.statistic["mde"] == pytest.approx(0.1366, abs=5e-4)
    assert f.statistic["power_method"].startswith("exact Fisher")


def test_counts_only_strong_gain_supported(tmp_path):
    out = verify(counts_claim(tmp_path, baseline={"passes": 48, "n": 80}, treatment={"passes": 56, "n": 70}))
    f = finding(out, "significance", "reproduced")
    # Miettinen–Nurminen, Newcombe (1998, Stat Med 17:873) Table II: 0.0528 to 0.3382 (statsmodels 0.15's restricted
    # MLE gives an upper bound of 0.3440; audit.stats._mn_restricted_mle says why).
    assert (f.statistic["ci_low"], f.statistic["ci_high"]) == pytest.approx((0.0528, 0.3382), abs=5e-5)
    assert (f.statistic["newcombe_ci_low"], f.statistic["newcombe_ci_high"]) == pytest.approx((0.0524, 0.3339),
                                                                                             abs=5e-5)  # shown beside
    assert out.report.verdict == "supported"


@pytest.mark.parametrize("value,n_dec", [(0.15, 2), (0.3, 1), (0.125, 3), (1.0, 0), (3.1e-05, 6)])
def test_decimals(value, n_dec):
    assert decimals(value) == n_dec


def test_granularity():
    assert granular_k(0.15, 40) == [6]
    assert granular_k(0.153, 40) == []
    assert granular_k(0.33, 3) == [1]
    assert rounds_to(0.04966, 0.05) and not rounds_to(0.0551, 0.05)


# --- properties ---------------------------------------------------------------------------------------------------

outcomes = st.lists(st.integers(0, 1), min_size=2, max_size=40)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(base=outcomes, data=st.data())
def test_swapping_arms_flips_every_delta(tmp_path_factory, base, data):
    treat = data.draw(st.lists(st.integers(0, 1), min_size=len(base), max_size=len(base)))
    d = tmp_path_factory.mktemp("swap")
    from conftest import write_jsonl

    write_jsonl(d / "b.jsonl", arm_rows(base))
    write_jsonl(d / "t.jsonl", arm_rows(treat))
    def claim(b, t):
        p = d / f"{b}.yaml"
        p.write_text(json.dumps({"claim": {"title": "t"}, "samples": {"format": "jsonl", "baseline": {16: b},
                                                                      "treatment": {16: t}},
                                 "options": {"resamples": 1000}}))
        return verify(load_claim(p)).report
    r1, r2 = claim("b.jsonl", "t.jsonl"), claim("t.jsonl", "b.jsonl")
    (c1,), (c2,) = r1.cells, r2.cells
    assert c1.delta == pytest.approx(-c2.delta, abs=1e-12)
    if c1.ci_low is not None:
        assert (c1.ci_low, c1.ci_high) == pytest.approx((-c2.ci_high, -c2.ci_low), abs=1e-12)
    assert c1.p_value == pytest.approx(c2.p_value)
    assert 0.0 <= c1.p_value <= 1.0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(base=outcomes)
def test_identical_arms_never_flagged(tmp_path_factory, base):
    d = tmp_path_factory.mktemp("same")
    from conftest import write_jsonl

    for b in (16, 64):
        write_jsonl(d / f"b{b}.jsonl", arm_rows(base))
    p = d / "c.yaml"
    p.write_text(json.dumps({"claim": {"title": "t", "settings": {"max_tokens": 16}},
                             "samples": {"format": "jsonl", "baseline": {16: "b16.jsonl", 64: "b64.jsonl"},
                                         "treatment": {16: "b16.jsonl", 64: "b64.jsonl"}},
                             "perturbations": {"scorings": ["exact", "last-number"]},
                             "options": {"resamples": 1000}}))
    out = verify(load_claim(p))
    assert out.report.verdict != "supported"
    for f in out.findings:
        assert f.outcome != "flag", f.title
        assert f.impact not in ("fragile", "not_reproduced")
    for c in out.report.cells:
        assert c.delta == 0 and c.p_value == 1.0


def test_cli_verify_writes_outputs(claim_dir, tmp_path):
    p = claim_dir(jsonl_claim([16, 64], 16, ["last-number"]), truncation_logs())
    res = CliRunner().invoke(main, ["verify", str(p), "--out", str(tmp_path / "out"), "--seed", "7"])
    assert res.exit_code == 1, res.output
    assert "FRAGILE" in res.output and "truncation.reverses" in res.output
    report = json.loads((tmp_path / "out/report.json").read_text())
    assert report["verdict"] == "fragile" and report["options"]["seed"] == 7
    assert (tmp_path / "out/report.html").read_text().count('class="card') == len(report["findings"])
    assert "audit: fragile" in (tmp_path / "out/summary.md").read_text()


def test_same_seed_same_numbers(claim_dir):
    p = claim_dir(jsonl_claim([16, 64], 16, ["last-number"]), truncation_logs())
    a = verify(load_claim(p)).report
    b = verify(load_claim(p)).report
    assert [c.model_dump() for c in a.cells] == [c.model_dump() for c in b.cells]
    assert [f.model_dump() for f in a.findings] == [f.model_dump() for f in b.findings]
