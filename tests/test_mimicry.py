"""mimicry: disposition markers vs correctness; stated confidence vs correctness."""
from __future__ import annotations

import math

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit import stats
from audit.claim import load_claim
from audit.verify import verify
from checks import mimicry
from conftest import FIXTURES, write_jsonl

CLAIMS = FIXTURES / "claims"


def codes(outcome, check="mimicry"):
    return {f.code for f in outcome.findings if f.check == check}


def finding(outcome, code):
    (f,) = [f for f in outcome.findings if f.check == "mimicry" and f.code == code]
    return f


# --- markers and stated confidence -------------------------------------------------------------------------------

@pytest.mark.parametrize("phrase,text,hit", [
    ("verify", "Let me verify.", True),
    ("verify", "VERIFY this", True),
    ("verify", "verifying the sum", False),       # word boundary
    ("verify", "unverify", False),
    ("let me check", "let  me\ncheck it", True),   # any whitespace inside a phrase
    ("double-check", "I'll double-check.", True),
    ("double-check", "double-checked", False),
    ("I think", "i think so", True),
    ("I think", "I thinking", False),
    ("might", "It might be 7", True),
    ("might", "mighty", False),
    ("not sure", "(not sure)", True),
])
def test_marker_regex(phrase, text, hit):
    assert bool(mimicry.marker_regex(phrase).search(text)) is hit


def test_find_markers_by_category():
    pats = {c: [(p, mimicry.marker_regex(p)) for p in ps] for c, ps in mimicry.DEFAULT_MARKERS.items()}
    assert mimicry.find_markers("Let me verify. I think it is 7.", pats) == {
        "self-verification": ["let me verify", "verify"], "hedge": ["I think"]}
    assert mimicry.find_markers("7", pats) == {}
    assert mimicry.find_markers(None, pats) == {}


@pytest.mark.parametrize("text,value", [
    ("Confidence: 80%. The answer is 7", 0.8),
    ("confidence = 0.65", 0.65),
    ("Confidence level: 1", 1.0),
    ("I'm 90% sure it is 12", 0.9),
    ("I am 75 % confident", 0.75),
    ("Confidence: high", 0.9),
    ("confidence is low", 0.3),
    ("I am certain: 7", 0.95),
    ("It is definitely 7", 0.95),
    ("I'm confident the answer is 7", 0.85),
    ("It is probably 7", 0.7),
    ("most likely 7", 0.7),
    ("I'm not sure, maybe 7", 0.3),
    ("I am not certain", 0.3),
    ("I'm unsure", 0.3),
    ("uncertain", 0.3),
    ("Confidence: 40%. Checked again. Final confidence: 90%", 0.9),  # the last statement counts
    ("It is probably 7. Confidence: 60%", 0.6),                      # numeric before verbal
    ("The answer is 7.", math.nan),
    ("Confidence: 150%", math.nan),
    ("It is unlikely to rain", math.nan),
    (None, math.nan),
])
def test_stated_confidence(text, value):
    got = mimicry.stated_confidence(text)
    if math.isnan(value):
        assert math.isnan(got)
    else:
        assert got == pytest.approx(value)


# --- the check on synthetic logs ---------------------------------------------------------------------------------

def _claim(tmp_path, base: list[str], treat: list[str], correct_b: list[int], correct_t: list[int], checks=None):
    def rows(texts, correct):
        return [{"id": f"q{i:03d}", "output": f"{t} The answer is {7 if c else 8}.", "target": "7"}
                for i, (t, c) in enumerate(zip(texts, correct))]

    write_jsonl(tmp_path / "logs/b.jsonl", rows(base, correct_b))
    write_jsonl(tmp_path / "logs/t.jsonl", rows(treat, correct_t))
    c = {"claim": {"title": "t", "settings": {"max_tokens": 64, "scoring": "last-number"}},
         "samples": {"format": "jsonl", "baseline": {64: "logs/b.jsonl"}, "treatment": {64: "logs/t.jsonl"}},
         "options": {"resamples": 500}}
    if checks is not None:
        c["checks"] = {"mimicry": checks}
    p = tmp_path / "claim.yaml"
    p.write_text(yaml.safe_dump(c))
    return load_claim(p)


def test_marker_rates_and_tests_are_the_oracles(tmp_path):
    n = 40
    base = ["Let me verify." if i < 4 else "" for i in range(n)]
    treat = ["Let me verify." if i < 30 else "" for i in range(n)]
    correct = [i % 2 for i in range(n)]
    out = verify(_claim(tmp_path, base, treat, correct, correct))
    f = finding(out, "markers_without_correctness")
    assert f.severity == "major" and f.impact == "fragile"
    rows = {(r["arm"], r["marker"]): r for r in finding(out, "marker_rates").rows if "arm" in r}
    wb, wt = stats.wilson(4, n), stats.wilson(30, n)
    assert (rows[("baseline", "any")]["k"], rows[("treatment", "any")]["k"]) == (4, 30)
    assert (rows[("baseline", "any")]["ci_low"], rows[("baseline", "any")]["ci_high"]) == pytest.approx((wb.low, wb.high))
    assert (rows[("treatment", "any")]["ci_low"], rows[("treatment", "any")]["ci_high"]) == pytest.approx((wt.low, wt.high))
    assert rows[("treatment", "hedge")]["k"] == 0
    s = f.statistic
    assert (s["b"], s["c"]) == (26, 0)
    assert s["marker_p"] == pytest.approx(stats.mcnemar_exact(26, 0).p_value)
    assert s["marker_delta"] == pytest.approx(26 / 40) and s["correctness_delta"] == 0
    assert f.evidence and all("verify" in e["treatment_markers"] for e in f.evidence)


def test_no_markers_and_no_confidence_give_nothing(tmp_path):
    out = verify(_claim(tmp_path, [""] * 20, [""] * 20, [0, 1] * 10, [1] * 20))
    assert "mimicry" in out.report.checks_run and not codes(out)


def test_markers_that_fall_are_not_flagged(tmp_path):
    out = verify(_claim(tmp_path, ["I think"] * 30, [""] * 30, [0, 1] * 15, [0, 1] * 15))
    assert codes(out) == {"marker_rates"}


def test_too_few_confidence_statements_is_inconclusive(tmp_path):
    treat = ["Confidence: 90%." if i < 5 else "" for i in range(30)]
    out = verify(_claim(tmp_path, [""] * 30, treat, [0, 1] * 15, [0, 1] * 15))
    f = finding(out, "confidence_too_few")
    assert f.outcome == "inconclusive" and f.impact == "none" and "5 output(s)" in f.detail
    assert "confidence_decoupled" not in codes(out) and "confidence_tracks" not in codes(out)


def test_confidence_auc_and_asymmetry(tmp_path):
    # 20 right at 90%, 10 wrong at 90%, 10 wrong at 40%: AUC = P(conf_right > conf_wrong) + ½ ties = (10 + ½·10)/20.
    treat = ["Confidence: 90%."] * 30 + ["Confidence: 40%."] * 10
    correct = [1] * 20 + [0] * 20
    out = verify(_claim(tmp_path, [""] * 40, treat, correct, correct))
    row = [r for r in finding(out, "confidence").rows if r["arm"] == "treatment"][0]
    assert row["auc"] == pytest.approx(0.75)
    want = stats.auc_delong([0.9] * 20, [0.9] * 10 + [0.4] * 10)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((want.interval.low, want.interval.high))
    assert row["confident_wrong"] == 10 and row["hedged_right"] == 0
    assert row["assertion_asymmetry"] == pytest.approx(10 / 40)
    assert "confidence_tracks" in codes(out)


outcomes = st.lists(st.tuples(st.booleans(), st.booleans()), min_size=4, max_size=30)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=outcomes)
def test_identical_arms_are_never_flagged(tmp_path_factory, rows):
    texts = ["Let me check." if m else "" for m, _ in rows]
    correct = [int(c) for _, c in rows]
    out = verify(_claim(tmp_path_factory.mktemp("same"), texts, texts, correct, correct))
    assert not [f for f in out.findings if f.check == "mimicry" and f.outcome == "flag"]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(st.booleans(), st.booleans(), st.booleans()), min_size=4, max_size=30))
def test_swapping_arms_flips_the_marker_delta(tmp_path_factory, rows):
    a = ["I think." if x else "" for x, _, _ in rows]
    b = ["I think." if y else "" for _, y, _ in rows]
    correct = [int(c) for _, _, c in rows]
    if not any(x or y for x, y, _ in rows):
        return
    d = tmp_path_factory.mktemp("swap")
    s1 = finding(verify(_claim(d / "1", a, b, correct, correct)), "marker_rates").rows
    s2 = finding(verify(_claim(d / "2", b, a, correct, correct)), "marker_rates").rows
    d1 = [r for r in s1 if r.get("quantity") == "marker rate (any)"][0]
    d2 = [r for r in s2 if r.get("quantity") == "marker rate (any)"][0]
    assert d1["delta"] == pytest.approx(-d2["delta"]) and d1["p_value"] == pytest.approx(d2["p_value"])


def test_custom_marker_list(tmp_path):
    n = 30
    treat = ["Wait, recompute." if i < 25 else "" for i in range(n)]
    correct = [i % 2 for i in range(n)]
    out = verify(_claim(tmp_path, [""] * n, treat, correct, correct, checks={"markers": {"recheck": ["recompute"]}}))
    assert "markers_without_correctness" in codes(out)
    assert {r["marker"] for r in finding(out, "marker_rates").rows if "marker" in r} == {"any", "recheck"}


# --- fixtures through verify ------------------------------------------------------------------------------------

def test_fixture_fires():
    out = verify(load_claim(CLAIMS / "mimicry_fires.yaml"))
    assert out.report.verdict == "not_reproduced"
    assert codes(out) == {"marker_rates", "markers_without_correctness", "confidence", "confidence_decoupled"}
    f = finding(out, "markers_without_correctness")
    assert f.statistic["marker_delta"] > 0.5 and f.statistic["marker_p"] < 1e-6
    assert f.statistic["correctness_ci_low"] < 0 < f.statistic["correctness_ci_high"]
    d = finding(out, "confidence_decoupled")
    assert d.severity == "major" and d.statistic["ci_low"] < 0.5 < d.statistic["ci_high"]


def test_fixture_passes():
    out = verify(load_claim(CLAIMS / "mimicry_passes.yaml"))
    assert out.report.verdict == "supported"
    assert codes(out) == {"marker_rates", "markers_with_correctness", "confidence", "confidence_tracks"}
    assert finding(out, "confidence_tracks").statistic["auc_treatment"] > 0.75
