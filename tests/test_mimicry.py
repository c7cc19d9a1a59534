"""mimicry: disposition markers vs correctness; stated confidence vs correctness."""
from __future__ import annotations

import math
import re

import numpy as np
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
    ("I am certain: 7", 0.9),
    ("I'm confident the answer is 7", 0.85),
    ("I'm fairly sure it is 7", 0.7),
    ("I am very confident", 0.85),
    # Chain-of-thought words state no confidence: only explicit first-person statements do.
    ("It is definitely 7", math.nan),
    ("It is probably 7", math.nan),
    ("most likely 7", math.nan),
    ("A certain percentage of the students", math.nan),
    ("The likely answer is (B)", math.nan),
    ("I'm not sure, maybe 7", 0.3),
    ("I am not certain", 0.3),
    ("I'm unsure", 0.3),
    ("uncertain", math.nan),
    ("I am uncertain", 0.3),
    ("Confidence: 40%. Checked again. Final confidence: 90%", 0.9),  # the last statement counts
    ("I'm sure. Confidence: 60%", 0.6),                              # numeric before verbal
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
         "options": {"resamples": 1000}}
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
    assert f.severity == "major" and f.impact == "none"  # style evidence; the significance check judges the gain
    assert f.statistic["treatment_marker_outputs"] == 30 >= f.statistic["min_marker_outputs"]
    rows = {(r["arm"], r["marker"]): r for r in finding(out, "marker_rates").rows if "arm" in r}
    wb, wt = stats.wilson(4, n), stats.wilson(30, n)
    assert (rows[("baseline", "any")]["k"], rows[("treatment", "any")]["k"]) == (4, 30)
    assert (rows[("baseline", "any")]["ci_low"], rows[("baseline", "any")]["ci_high"]) == pytest.approx((wb.low, wb.high))
    assert (rows[("treatment", "any")]["ci_low"], rows[("treatment", "any")]["ci_high"]) == pytest.approx((wt.low, wt.high))
    assert rows[("treatment", "hedge")]["k"] == 0
    s = f.statistic
    assert (s["b"], s["c"]) == (26, 0)
    assert s["marker_p"] == pytest.approx(stats.score_inference(26, 0, 40).test.p_value)  # McNemar score test
    from scipy.stats import norm

    assert s["marker_p"] == pytest.approx(2 * norm.sf((26 - 1) / 26 ** 0.5))  # continuity-corrected McNemar
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
    # Evidence, not absence of it: 200 stating outputs, and the whole interval below the "tracks" threshold 0.6.
    assert d.severity == "major" and d.statistic["ci_low"] < 0.5 < d.statistic["ci_high"] < 0.6
    assert d.statistic["n_stated"] >= 30 and min(d.statistic["n_correct"], d.statistic["n_wrong"]) >= 10


def test_fixture_passes():
    out = verify(load_claim(CLAIMS / "mimicry_passes.yaml"))
    assert out.report.verdict == "supported"
    assert codes(out) == {"marker_rates", "markers_with_correctness", "confidence", "confidence_tracks"}
    assert finding(out, "confidence_tracks").statistic["auc_treatment"] > 0.75


# --- the evidence rule --------------------------------------------------------------------------------------------

def _logit_delong(pos, neg, level=0.95):
    """Independent oracle: statsmodels' DeLong variance, the interval logit(A) ± z·SE/(A(1 − A)) back-transformed."""
    from scipy.special import expit, logit
    from scipy.stats import norm
    from statsmodels.stats.nonparametric import rank_compare_2indep

    res = rank_compare_2indep(np.asarray(pos, float), np.asarray(neg, float), use_t=False)
    a, se = float(res.prob1), math.sqrt(float(res.var_prob))
    half = norm.ppf(0.5 + level / 2) * se / (a * (1 - a))
    return a, float(expit(logit(a) - half)), float(expit(logit(a) + half))


def _stating(levels, correct):
    return [f"Confidence: {lv}%." for lv in levels], correct


def test_confidence_decoupled_needs_the_interval_below_the_threshold(tmp_path):
    """200 stating outputs, 100 right and 100 wrong, the same confidences in both classes: AUC 0.5 exactly, and the
    logit-scale DeLong interval lies wholly below 0.6 — evidence that confidence does not track correctness."""
    levels = [20, 40, 60, 80] * 50
    correct = [1] * 100 + [0] * 100
    texts, correct = _stating(levels, correct)
    out = verify(_claim(tmp_path, [""] * 200, texts, correct, correct))
    f = finding(out, "confidence_decoupled")
    assert (f.outcome, f.severity, f.impact) == ("flag", "major", "none")
    pos = [lv / 100 for lv, c in zip(levels, correct) if c]
    neg = [lv / 100 for lv, c in zip(levels, correct) if not c]
    auc, lo, hi = _logit_delong(pos, neg)
    assert auc == 0.5
    assert f.statistic["auc_treatment"] == pytest.approx(auc, abs=1e-12)
    assert (f.statistic["ci_low"], f.statistic["ci_high"]) == pytest.approx((lo, hi), abs=1e-9)
    assert 0 <= lo < 0.5 < hi < 0.6
    assert "H0: AUC ≥ 0.6" in f.detail


def test_seventeen_stating_outputs_are_not_evidence(tmp_path):
    """The MMLU-Pro case: 17 of 200 outputs happen to state a number (8 right, 9 wrong), AUC about 0.44. Before, a
    major 'does not track' flag; now an inconclusive minor finding that says why, with the AUC inside [0, 1]."""
    n = 200
    right, wrong = [90, 20, 60, 30, 40, 50, 75, 55], [85, 70, 95, 35, 65, 80, 25, 45, 10]
    texts = [f"Confidence: {lv}%." for lv in right + wrong] + [""] * (n - 17)
    correct = [1] * 8 + [0] * 9 + [i % 2 for i in range(n - 17)]
    out = verify(_claim(tmp_path, [""] * n, texts, correct, correct))
    assert "confidence_decoupled" not in codes(out) and "confidence_tracks" not in codes(out)
    f = finding(out, "confidence_too_few")
    assert (f.outcome, f.severity, f.impact) == ("inconclusive", "minor", "none")
    assert "only 17 output(s)" in f.detail and "8 right, 9 wrong" in f.detail and "at least 30" in f.detail
    s = f.statistic
    assert s["n_stated"] == 17 and s["auc_treatment"] == pytest.approx(4 / 9)  # 32 of 72 pairs ordered right
    auc, lo, hi = _logit_delong([v / 100 for v in right], [v / 100 for v in wrong])
    assert (s["ci_low"], s["ci_high"]) == pytest.approx((lo, hi), abs=1e-9)
    assert 0 < s["ci_low"] < 0.5 < s["ci_high"] < 1


def test_enough_outputs_but_an_interval_reaching_the_threshold_is_unresolved(tmp_path):
    """40 stating outputs (20 + 20) at AUC 0.5: the interval reaches above 0.6, and Mann–Whitney cannot reject 0.5."""
    levels = [20, 40, 60, 80] * 10
    correct = [1] * 20 + [0] * 20
    texts, correct = _stating(levels, correct)
    out = verify(_claim(tmp_path, [""] * 40, texts, correct, correct))
    assert "confidence_decoupled" not in codes(out)
    f = finding(out, "confidence_unresolved")
    assert (f.outcome, f.severity, f.impact) == ("inconclusive", "minor", "none")
    assert f.statistic["ci_high"] > 0.6 and f.statistic["mw_p"] >= 0.05


def test_a_significant_marker_rise_on_few_outputs_is_not_flagged(tmp_path):
    """10 of 40 treatment outputs carry a marker, none in the baseline: McNemar 10–0 (p = 0.002) and the CI exclude 0,
    but 10 marker-bearing outputs are fewer than the 20 needed; lowering the minimum turns the flag on."""
    n = 40
    treat = ["Let me verify." if i < 10 else "" for i in range(n)]
    correct = [i % 2 for i in range(n)]
    out = verify(_claim(tmp_path, [""] * n, treat, correct, correct))
    assert "markers_without_correctness" not in codes(out)
    f = finding(out, "markers_unresolved")
    assert (f.outcome, f.severity, f.impact) == ("inconclusive", "minor", "none")
    assert f.statistic["marker_p"] == pytest.approx(stats.score_inference(10, 0, n).test.p_value)
    assert f.statistic["marker_p"] < 0.05
    assert "only 10 treatment output(s)" in f.detail
    out = verify(_claim(tmp_path / "low", [""] * n, treat, correct, correct, checks={"min_marker_outputs": 10}))
    assert finding(out, "markers_without_correctness").severity == "major"


def test_a_marker_rise_that_is_not_significant_is_not_flagged(tmp_path):
    n = 60
    base = ["I think." if i < 20 else "" for i in range(n)]
    treat = ["I think." if i < 23 else "" for i in range(n)]  # 20 → 23: McNemar 3–0, score p = 0.083
    correct = [i % 2 for i in range(n)]
    out = verify(_claim(tmp_path, base, treat, correct, correct))
    assert "markers_without_correctness" not in codes(out)
    f = finding(out, "markers_unresolved")
    assert "not significant" in f.detail and f.statistic["marker_p"] == pytest.approx(
        stats.score_inference(3, 0, n).test.p_value)
    assert f.statistic["marker_p"] > 0.05


def test_pre_filters_change_no_answer():
    """The fast pre-filters (one alternation for every marker; the words any confidence statement needs) only skip
    texts the full patterns would not match."""
    import random

    words = ["Let", "me", "verify", "double-check", "I", "think", "probably", "not", "sure", "Confidence:", "85%",
             "confident", "7", "uncertain", "very", "high", "low", "likely", "DEFINITELY", "answer", "\n", "mighty"]
    rng = random.Random(0)
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(0, 12))) for _ in range(3000)]
    with_filter = mimicry.marker_patterns(mimicry.DEFAULT_MARKERS)
    without = {c: v for c, v in with_filter.items() if isinstance(c, str)}
    assert any(mimicry.find_markers(t, with_filter) for t in texts)
    assert all(mimicry.find_markers(t, with_filter) == mimicry.find_markers(t, without) for t in texts)

    def unfiltered(t):
        saved = mimicry._MAYBE_CONFIDENCE
        mimicry._MAYBE_CONFIDENCE = re.compile("")  # matches every text
        try:
            return mimicry.stated_confidence(t)
        finally:
            mimicry._MAYBE_CONFIDENCE = saved

    got = [mimicry.stated_confidence(t) for t in texts]
    want = [unfiltered(t) for t in texts]
    assert sum(not math.isnan(x) for x in got) > 100
    assert all((math.isnan(a) and math.isnan(b)) or a == b for a, b in zip(got, want))


# --- flags earn their severity: a material treatment effect, not a level ---------------------------------------------


def test_a_baseline_as_uninformative_as_the_treatment_is_not_a_decoupling(tmp_path):
    """Both arms state confidences unrelated to correctness (AUC 0.5 each): a level, not a treatment effect."""
    levels = [20, 40, 60, 80] * 50
    correct = [1] * 100 + [0] * 100
    texts, correct = _stating(levels, correct)
    out = verify(_claim(tmp_path, texts, texts, correct, correct))
    assert "confidence_decoupled" not in codes(out)
    f = finding(out, "confidence_like_baseline")
    assert f.outcome == "info" and f.statistic["auc_difference"] == pytest.approx(0.0)


def test_a_marker_rise_of_a_fraction_of_a_point_is_not_major(tmp_path):
    """0.1% → 0.3% of 12,000 outputs (significant at this n, McNemar p ≈ 0.003) is no disposition: the rise must be
    shown beyond 5 points."""
    n = 12_000
    base = ["Let me verify." if i < 12 else "" for i in range(n)]
    treat = ["Let me verify." if i < 36 else "" for i in range(n)]
    correct = [i % 2 for i in range(n)]
    out = verify(_claim(tmp_path, base, treat, correct, correct))
    assert "markers_without_correctness" not in codes(out)
    assert not [f for f in out.findings if f.check == "mimicry" and f.severity in ("major", "critical")]


def test_markers_the_declared_prompt_change_introduces_are_not_mimicry(tmp_path):
    n = 200
    treat = ["Let me verify." if i % 10 < 7 else "" for i in range(n)]
    base = ["Let me verify." if i % 10 == 0 else "" for i in range(n)]
    correct = [i % 2 for i in range(n)]
    c = _claim(tmp_path, base, treat, correct, correct, checks={"prompt_phrases": ["Let me verify this answer."]})
    out = verify(c)
    assert "markers_without_correctness" in codes(out)  # undeclared: the prompt is not known to have changed
    c = c.model_copy(update={"claim": c.claim.model_copy(update={"treatment_changes": ["prompt_template"]})})
    out = verify(c)
    assert "markers_without_correctness" not in codes(out)
    f = finding(out, "prompt_markers")
    assert "let me verify" in f.statistic["phrases"] and "verify" in f.statistic["phrases"]


def test_the_marker_margin_holds_its_false_alarm_rate_by_simulation():
    """The marker flag's null is "rise ≤ margin". At a true rise of exactly the margin (5 points: 10% → 15%, paired,
    n = 2,000) the flag must fire in at most α/2 = 2.5% of replicates (plus Monte Carlo error: 300 replicates, the
    upper 99.9% binomial bound of 2.5% is 5.0%)."""
    rng = np.random.default_rng(2024)
    n, reps, fired = 2000, 300, 0
    for _ in range(reps):
        mb = (rng.random(n) < 0.10).astype(float)
        mt = mb.copy()
        # Add exactly-in-expectation 5 points: markers switch on in 5.5% of items, off in 0.5%.
        on = (mb == 0) & (rng.random(n) < 0.055 / 0.90)
        off = (mb == 1) & (rng.random(n) < 0.005 / 0.10)
        mt[on], mt[off] = 1.0, 0.0
        shown, _ = mimicry.marker_rise_shown(mb, mt, level=0.95, alpha=0.05, margin=0.05)
        fired += shown
    assert fired / reps <= 0.05, fired


def test_marker_presence_equals_find_markers():
    """marker_presence (one search per text, one per category on texts with a marker) says exactly what find_markers
    says, per category and for any marker; with an empty category, None and non-text outputs among the texts."""
    import random

    words = ["Let", "me", "verify", "double-check", "I", "think", "probably", "not", "sure", "check", "Let me",
             "mighty", "might", "VERIFY", "let\nme", "7", "unverify", "I'm", "maybe", "\t", "ſure"]
    rng = random.Random(1)
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(0, 10))) for _ in range(2000)]
    texts += [None, float("nan"), 3, ""]
    for markers in (mimicry.DEFAULT_MARKERS, {**mimicry.DEFAULT_MARKERS, "empty": []},
                    {"custom": ["let me", "probably not"], "none": [" "]}, {}):
        pats = mimicry.marker_patterns(markers)
        got = mimicry.marker_presence(texts, pats)
        found = [mimicry.find_markers(t, pats) for t in texts]
        assert list(got["any"]) == [bool(f) for f in found]
        for cat in markers:
            assert list(got[cat]) == [cat in f for f in found]
        assert any(got["any"]) == bool(markers)


def test_stated_confidences_equal_stated_confidence_text_by_text():
    import random

    words = ["I'm", "90%", "sure", "confidence:", "high", "0.8", "certain", "not", "I'm not sure", "x", "7",
             "Confidence", "level", "is", "low", "ſure", "CONFIDENT", "fairly"]
    rng = random.Random(2)
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(0, 8))) for _ in range(1500)]
    lexicon = mimicry.verbal_patterns({"pretty sure": 0.7, "no idea": 0.1})
    for tx in (texts, texts + [None, 3, float("nan")]):
        for verbal in (None, lexicon):
            got = mimicry.stated_confidences(np.array(tx, dtype=object), verbal)
            want = np.array([mimicry.stated_confidence(t, verbal) for t in tx])
            np.testing.assert_array_equal(got, want)


def test_a_claims_confidence_lexicon_is_the_one_read():
    """checks.mimicry.confidence_lexicon replaces the built-in lexicon (it was ignored before: a local name shadowed
    the argument)."""
    from audit.checks.mimicry import stated_confidence, verbal_patterns

    own = verbal_patterns({r"\bsans doute\b": 0.8})
    assert stated_confidence("C'est sans doute 4.", own) == 0.8
    assert math.isnan(stated_confidence("C'est sans doute 4."))  # not in the built-in lexicon
    assert math.isnan(stated_confidence("I'm quite sure it is 4.", own))  # the built-in phrase is not read then
    assert stated_confidence("I'm quite sure it is 4.") == 0.9
