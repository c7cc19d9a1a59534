"""emergence: discontinuous vs continuous metrics, exact match predicted from per-token accuracy (Schaeffer et al.
2023, arXiv:2304.15004), resolution at 0/n."""
from __future__ import annotations

import math

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import stats
from audit.claim import load_claim
from audit.verify import verify
from checks import emergence
from conftest import FIXTURES, write_jsonl

CLAIMS = FIXTURES / "claims"
TOY_P = [0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
TOY_EM = [0.000977, 0.006047, 0.02825, 0.1074, 0.3487, 0.5987]  # reference/statistics.md, L = 10


def codes(outcome, check="emergence"):
    return {f.code for f in outcome.findings if f.check == check}


def finding(outcome, code):
    (f,) = [f for f in outcome.findings if f.check == "emergence" and f.code == code]
    return f


# --- oracles ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("p,em", list(zip(TOY_P, TOY_EM)))
def test_schaeffer_toy_model(p, em):
    """L = 10, p → exact match p^L and expected token edit distance L(1 − p), via stats and via the check."""
    assert stats.exact_match_from_token_accuracy(p, 10) == pytest.approx(em, rel=2e-3)
    lengths = np.full(7, 10)
    assert emergence.predicted_exact_match(np.full(7, p), lengths, "pooled") == pytest.approx(em, rel=2e-3)
    assert emergence.predicted_exact_match(np.full(7, p), lengths, "per_item") == pytest.approx(em, rel=2e-3)
    assert emergence.expected_edit_distance(np.full(7, p), lengths) == pytest.approx(10 * (1 - p), rel=1e-12)
    assert stats.edit_distance_from_token_accuracy(p, 10) == pytest.approx(10 * (1 - p), rel=1e-12)


@pytest.mark.parametrize("p", [0.7, 0.9])
def test_simulated_independent_errors_follow_p_to_the_L(p):
    """Seeded simulation of Schaeffer's model: 10-digit targets, each digit right with probability p."""
    rng = np.random.default_rng(int(p * 100))
    n, L = 20_000, 10
    acc, lengths, em, ed = [], [], [], []
    for _ in range(n):
        t = rng.integers(0, 10, size=L)
        wrong = rng.random(L) > p
        o = np.where(wrong, (t + rng.integers(1, 10, size=L)) % 10, t)
        ts, os_ = "".join(map(str, t)), "".join(map(str, o))
        a, n_tok, exact = emergence.token_accuracy(os_, ts)
        acc.append(a)
        lengths.append(n_tok)
        em.append(exact)
        ed.append(emergence.token_edit_distance(list(os_), list(ts)))
    acc, lengths = np.array(acc), np.array(lengths)
    target = p ** L
    se = math.sqrt(target * (1 - target) / n)
    assert np.mean(em) == pytest.approx(target, abs=4 * se)
    assert emergence.predicted_exact_match(acc, lengths, "pooled") == pytest.approx(target, abs=4 * se)
    # The per-item plug-in overstates exact match under independent errors (Jensen): E[a^L] > p^L.
    assert emergence.predicted_exact_match(acc, lengths, "per_item") > target + 10 * se
    # Levenshtein can only undercut the Hamming count of substitutions, and rarely does.
    assert np.mean(ed) == pytest.approx(L * (1 - p), rel=0.03)
    assert emergence.expected_edit_distance(acc, lengths) == pytest.approx(L * (1 - p), rel=0.02)


def test_token_accuracy_is_positional():
    assert emergence.token_accuracy("12355", "12345") == (0.8, 5, False)
    assert emergence.token_accuracy(" 12345 ", "12345") == (1.0, 5, True)
    assert emergence.token_accuracy("1234", "12345") == (0.8, 5, False)
    assert emergence.token_accuracy("123456", "12345") == (1.0, 5, False)  # every target token, but not exact
    assert emergence.token_accuracy("the cat sat", "the dog sat", "whitespace") == (pytest.approx(2 / 3), 3, False)
    a, L, exact = emergence.token_accuracy("anything", "  ")
    assert math.isnan(a) and L == 0 and not exact


def _levenshtein(a, b):
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


@settings(max_examples=200, deadline=None)
@given(st.text("abc", max_size=12), st.text("abc", max_size=12))
def test_token_edit_distance_equals_textbook_dp(a, b):
    assert emergence.token_edit_distance(list(a), list(b)) == _levenshtein(a, b)



@pytest.mark.parametrize("a,b,d", [
    ("kitten", "sitting", 3), ("flaw", "lawn", 2), ("intention", "execution", 5), ("saturday", "sunday", 3),
    ("", "abc", 3), ("abc", "", 3), ("", "", 0)])
def test_token_edit_distance_known_values(a, b, d):
    """Textbook Levenshtein distances (Levenshtein 1966; Jurafsky & Martin ch. 2: intention → execution is 5 with
    unit substitution cost), on character token lists."""
    assert emergence.token_edit_distance(list(a), list(b)) == d


def test_token_edit_distance_compares_whole_tokens():
    """Whitespace tokens are compared as units, not as their characters."""
    assert emergence.token_edit_distance("the cat sat on the mat".split(), "the cat sat on mat".split()) == 1
    assert emergence.token_edit_distance(["ab", "c"], ["a", "bc"]) == 2
    assert emergence.token_edit_distance(["12", "34"], ["12", "34"]) == 0

# --- classification ----------------------------------------------------------------------------------------------

def _claim(tmp_path, base, treat, scorings, checks=None, claimed="exact", direction="greater"):
    write_jsonl(tmp_path / "logs/base_64.jsonl", base)
    write_jsonl(tmp_path / "logs/treat_64.jsonl", treat)
    c = {"claim": {"title": "t", "settings": {"max_tokens": 64, "scoring": claimed}, "direction": direction},
         "samples": {"format": "jsonl", "baseline": {64: "logs/base_64.jsonl"}, "treatment": {64: "logs/treat_64.jsonl"}},
         "perturbations": {"scorings": scorings}, "options": {"resamples": 1000}}
    if checks is not None:
        c["checks"] = {"emergence": checks}
    p = tmp_path / "claim.yaml"
    p.write_text(yaml.safe_dump(c))
    return load_claim(p)


def _rows(outputs, targets, sim=None):
    return [{"id": f"q{i:03d}", "output": o, "target": t, **({"scores": {"sim": s}} if sim is not None else {})}
            for i, (o, t, s) in enumerate(zip(outputs, targets, sim if sim is not None else [None] * len(outputs)))]


def test_classification_precedence(tmp_path, monkeypatch):
    import audit.scoring

    base = [{"id": f"q{i}", "output": o, "target": "1234", "scores": {"sim": s, "em01": float(o == "1234")}}
            for i, (o, s) in enumerate(zip(["1234", "1230", "0000", "1234", "1200", "1234"], [1, .75, 0, 1, .5, 1]))]
    claim = _claim(tmp_path, base, base, ["exact", "sim", "em01", "contains"])
    from audit.checks._common import Context

    rec = verify(claim).records
    ctx = Context(claim, rec, 0, 200, 0.95, 0.05, 0.8, 64, "exact")
    kinds = emergence.classify(ctx, emergence.Params())
    assert kinds["em01"] == ("discontinuous", "scores are all 0 or 1")
    assert kinds["sim"] == ("continuous", "scores are not all 0 or 1")
    if hasattr(audit.scoring, "KINDS"):
        assert kinds["exact"] == ("discontinuous", "audit.scoring")
    # Without kind_of, KINDS decides; the check's parameters override both.
    monkeypatch.delattr(audit.scoring, "kind_of", raising=False)
    monkeypatch.setattr(audit.scoring, "KINDS", {"contains": "continuous", "sim": "discontinuous"}, raising=False)
    kinds = emergence.classify(ctx, emergence.Params(continuous=["sim"], discontinuous=["em01"]))
    assert kinds["contains"] == ("continuous", "audit.scoring")
    assert kinds["sim"] == ("continuous", "checks.emergence.continuous")
    assert kinds["em01"] == ("discontinuous", "checks.emergence.discontinuous")
    # Without the registry at all, the values decide.
    monkeypatch.delattr(audit.scoring, "KINDS")
    kinds = emergence.classify(ctx, emergence.Params())
    assert kinds["contains"] == ("discontinuous", "scores are all 0 or 1")


def test_binary_scorings_only_and_no_config_give_nothing(tmp_path):
    targets = ["12"] * 10
    base = _rows(["12", "13"] * 5, targets)
    treat = _rows(["12"] * 10, targets)
    out = verify(_claim(tmp_path, base, treat, ["exact", "last-number"]))
    assert "emergence" in out.report.checks_run and not codes(out)


def test_configured_check_uses_token_accuracy_when_no_continuous_scoring(tmp_path):
    """No continuous scoring in the logs: the built-in per-token accuracy is the continuous metric."""
    rng = np.random.default_rng(1)
    targets = ["".join(map(str, rng.integers(0, 10, 6))) for _ in range(120)]
    base = _rows([t[:-1] + str((int(t[-1]) + 1) % 10) if i % 2 else t for i, t in enumerate(targets)], targets)
    treat = _rows([t if i % 4 else "000000" for i, t in enumerate(targets)], targets)
    out = verify(_claim(tmp_path, base, treat, ["exact"], checks={}))
    per = finding(out, "per_metric")
    assert [r["scoring"] for r in per.rows] == ["exact", "token-accuracy (character, built-in)"]
    f = finding(out, "discontinuous_only")
    assert f.severity == "critical"  # a 6-digit miss costs more per-token accuracy than five near misses gain
    assert f.statistic["continuous"]["token-accuracy (character, built-in)"]["delta"] < 0


def test_prose_answers_are_not_comparable(tmp_path):
    targets = [str(i) for i in range(40)]
    base = _rows([f"The answer is {t}" if i % 2 else "no idea" for i, t in enumerate(targets)], targets)
    treat = _rows([f"The answer is {t}" for t in targets], targets)
    out = verify(_claim(tmp_path, base, treat, ["last-number"], checks={}, claimed="last-number"))
    f = finding(out, "token_accuracy_not_comparable")
    assert f.outcome == "inconclusive" and f.impact == "none" and "extracts the answer" in f.detail
    assert "discontinuous_only" not in codes(out)
    assert "no_continuous_metric" in codes(out)


def test_resolution_flag_when_an_arm_scores_zero(tmp_path):
    targets = ["12345678"] * 30
    base = _rows(["12345600"] * 30, targets, [0.75] * 30)
    treat = _rows(["12345678"] * 10 + ["12345670"] * 20, targets, [1.0] * 10 + [0.875] * 20)
    out = verify(_claim(tmp_path, base, treat, ["exact", "sim"]))
    f = finding(out, "resolution")
    assert f.severity == "minor" and f.impact == "none"
    (row,) = f.rows
    assert (row["arm"], row["k"], row["n"]) == ("baseline", 0, 30)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((0.0, stats.wilson(0, 30).high))
    assert "sim" in f.detail


def test_independent_errors_are_explained_by_token_accuracy(tmp_path):
    """Both arms with independent digit errors (p = 0.85 vs 0.93, L = 8): exact match moves as p^L predicts."""
    rng = np.random.default_rng(7)
    n, L = 600, 8
    targets = ["".join(map(str, rng.integers(0, 10, L))) for _ in range(n)]

    def arm(p):
        outs, sims = [], []
        for t in targets:
            o = "".join(c if rng.random() < p else str((int(c) + 1) % 10) for c in t)
            outs.append(o)
            sims.append(sum(a == b for a, b in zip(o, t)) / L)
        return _rows(outs, targets, sims)

    out = verify(_claim(tmp_path, arm(0.85), arm(0.93), ["exact", "sim"]))
    f = finding(out, "explained_by_token_accuracy")
    assert f.severity == "minor" and f.impact == "none"
    s = f.statistic
    assert s["observed_ci_low"] <= s["predicted_em_delta"] <= s["observed_ci_high"]
    assert "holds_continuous" in codes(out)
    calib = finding(out, "calibration").rows
    assert {r["arm"] for r in calib} == {"baseline", "treatment"} and all(r["target_tokens"] == "8" for r in calib)
    assert out.report.verdict == "supported"


# --- fixtures through verify ------------------------------------------------------------------------------------

def test_fixture_fires_discontinuous_only():
    out = verify(load_claim(CLAIMS / "emergence_fires.yaml"))
    assert out.report.verdict == "fragile"
    assert codes(out) == {"per_metric", "discontinuous_only", "token_accuracy", "calibration", "not_explained"}
    f = finding(out, "discontinuous_only")
    assert f.severity == "major" and f.impact == "fragile"
    assert f.statistic["delta"] == pytest.approx(0.12) and f.statistic["ci_low"] > 0
    sim = f.statistic["continuous"]["similarity"]
    assert sim["ci_low"] <= 0 <= sim["ci_high"]
    # Evidence, not a lost significance: the similarity gain is shown smaller than the exact-match gain, on 300
    # items of which 36 change their exact-match score.
    assert sim["evidence"] == "smaller" and sim["gap_ci_low"] > 0 and sim["gap_n"] == 300
    assert f.statistic["changed_items"] >= f.statistic["min_changed"]
    tok = finding(out, "token_accuracy").rows
    assert tok[0]["token_accuracy"] == pytest.approx(tok[1]["token_accuracy"])  # per-token accuracy does not move


def test_fixture_passes():
    out = verify(load_claim(CLAIMS / "emergence_passes.yaml"))
    assert out.report.verdict == "supported"
    assert codes(out) == {"per_metric", "holds_continuous", "token_accuracy", "calibration", "not_explained"}
    assert not [f for f in out.findings if f.check == "emergence" and f.outcome == "flag"]
    kinds = {r["scoring"]: (r["kind"], r["kind_source"]) for r in finding(out, "per_metric").rows}
    assert kinds["similarity"] == ("continuous", "scores are not all 0 or 1")


def test_swapping_arms_mirrors_the_token_analysis(tmp_path):
    rng = np.random.default_rng(3)
    targets = ["".join(map(str, rng.integers(0, 10, 5))) for _ in range(50)]
    a = _rows([t if rng.random() < 0.5 else t[:-1] + "x" for t in targets], targets)
    b = _rows([t if rng.random() < 0.7 else t[:-2] + "xx" for t in targets], targets)
    one = finding(verify(_claim(tmp_path / "1", a, b, ["exact"], checks={})), "token_accuracy").statistic
    two = finding(verify(_claim(tmp_path / "2", b, a, ["exact"], checks={})), "token_accuracy").statistic
    assert one["token_accuracy_delta"] == pytest.approx(-two["token_accuracy_delta"])
    assert one["predicted_em_delta"] == pytest.approx(-two["predicted_em_delta"])
    assert one["observed_em_delta"] == pytest.approx(-two["observed_em_delta"])


def test_uniform_improvement_counts_as_a_continuous_gain(tmp_path):
    """Every item moves from one digit off to exact: every paired difference is equal, so the bootstrap interval is
    undefined and the paired t has zero variance; McNemar decides for exact match, a sign test for similarity."""
    targets = ["12345678"] * 12
    base = _rows(["12345670"] * 12, targets, [0.875] * 12)
    treat = _rows(["12345678"] * 12, targets, [1.0] * 12)
    out = verify(_claim(tmp_path, base, treat, ["exact", "sim"]))
    assert "holds_continuous" in codes(out) and "discontinuous_only" not in codes(out)
    assert "resolution" in codes(out)  # baseline 0/12, treatment 12/12


# --- per-scoring polarity and the evidence rule --------------------------------------------------------------------

def test_direction_less_reads_edit_similarity_as_higher_is_better(tmp_path):
    """The claimed metric is an error indicator (direction: less); the built-in edit similarity is higher-is-better
    whatever the claim's direction. The treatment fixes 60% of the baseline's one-digit misses: errors fall and
    similarity rises — a gain under both, not a 'critical reversal'."""
    rng = np.random.default_rng(5)
    n = 100
    targets = ["".join(map(str, rng.integers(0, 10, 8))) for _ in range(n)]
    miss = [t[:-1] + str((int(t[-1]) + 1) % 10) for t in targets]
    base_ok = [i % 2 == 0 for i in range(n)]
    treat_ok = [ok or i % 10 in (1, 3, 5) for i, ok in enumerate(base_ok)]

    def rows(ok):
        return [{"id": f"q{i:03d}", "output": targets[i] if k else miss[i], "target": targets[i],
                 "scores": {"err": float(not k)}} for i, k in enumerate(ok)]

    out = verify(_claim(tmp_path, rows(base_ok), rows(treat_ok), ["err", "edit-similarity"], claimed="err",
                        direction="less"))
    assert out.report.verdict == "supported"
    better = {r["scoring"]: r["better"] for r in finding(out, "per_metric").rows if "better" in r}
    assert better["err"] == "lower" and better["edit-similarity"] == "higher"
    assert "discontinuous_only" not in codes(out)
    f = finding(out, "holds_continuous")
    assert f.statistic["delta"] == pytest.approx(-0.3) and f.statistic["better"] == "lower"
    assert f.statistic["continuous"]["edit-similarity"]["ci_low"] > 0
    # The per-token analysis reads "right" as a low error score, so it agrees with the error indicator.
    tok = finding(out, "token_accuracy").rows
    assert all(r["agreement_with_scoring"] == 1.0 for r in tok if "agreement_with_scoring" in r)


def _mixed(n_items, em_b, em_t, sim_b, sim_t, target="12345678"):
    wrong = target[:-1] + "0"

    def rows(em, sim):
        return [{"id": f"q{i:03d}", "output": target if e else wrong, "target": target, "scores": {"sim": s}}
                for i, (e, s) in enumerate(zip(em, sim))]

    return rows(em_b, sim_b), rows(em_t, sim_t)


def test_a_gain_on_few_changed_items_is_not_evidence(tmp_path):
    """8 items move from one digit off to exact (McNemar 8–0, p = 0.008) and 8 other misses get worse, so the
    similarity does not move — but the exact-match gain rests on 8 items, fewer than the 10 needed."""
    n = 60
    em_b = [0] * 30 + [1] * 30
    em_t = [1] * 8 + [0] * 22 + [1] * 30
    sim_b = [0.875] * 30 + [1.0] * 30
    sim_t = [1.0] * 8 + [0.75] * 8 + [0.875] * 14 + [1.0] * 30
    base, treat = _mixed(n, em_b, em_t, sim_b, sim_t)
    out = verify(_claim(tmp_path, base, treat, ["exact", "sim"]))
    assert "discontinuous_only" not in codes(out)
    f = finding(out, "discontinuous_only_unresolved")
    assert (f.outcome, f.severity, f.impact) == ("inconclusive", "minor", "none")
    assert f.statistic["changed_items"] == 8 and "only 8 item(s)" in f.detail
    assert out.report.verdict == "supported"
    out = verify(_claim(tmp_path / "low", base, treat, ["exact", "sim"], checks={"min_changed": 5}))
    g = finding(out, "discontinuous_only")
    assert g.severity == "major" and g.statistic["continuous"]["sim"]["evidence"] == "smaller"


def test_a_continuous_delta_merely_not_significant_is_not_evidence(tmp_path):
    """12 exact-match flips (significant); the similarity moves +0.15 [n.s.] with a large spread, and the difference of
    the two gains (+0.15) has a CI covering 0: the continuous gain is not shown smaller, so no flag."""
    n = 40
    em_b = [0] * 32 + [1] * 8
    em_t = [1] * 12 + [0] * 20 + [1] * 8
    sim_b = [0.0] * 12 + [0.0] * 7 + [1.0] * 13 + [1.0] * 8
    sim_t = [1.0] * 12 + [1.0] * 7 + [0.0] * 13 + [1.0] * 8
    base, treat = _mixed(n, em_b, em_t, sim_b, sim_t)
    out = verify(_claim(tmp_path, base, treat, ["exact", "sim"], checks={"continuous": ["sim"]}))
    assert "discontinuous_only" not in codes(out)
    f = finding(out, "discontinuous_only_unresolved")
    sim = f.statistic["continuous"]["sim"]
    assert sim["ci_low"] < 0 < sim["ci_high"] and sim["gap"] == pytest.approx(0.15)
    assert sim["gap_ci_low"] < 0 < sim["gap_ci_high"] and sim["evidence"] is None
    # The interval is the paired bootstrap of the per-item difference of gains, recomputed here.
    gap = (np.array(em_t) - np.array(em_b)) - (np.array(sim_t) - np.array(sim_b))
    se = gap.std(ddof=1) / math.sqrt(n)
    assert sim["gap_ci_high"] - sim["gap_ci_low"] == pytest.approx(2 * 1.96 * se, rel=0.15)


def test_off_scale_continuous_metric_supports_a_flag_only_by_a_reversal(tmp_path):
    """A log-likelihood (not on the 0–1 scale of exact match) cannot be 'shown smaller'; a significant reversal is
    evidence on any scale."""
    n = 100
    em_b = [0] * 60 + [1] * 40
    em_t = [1] * 20 + [0] * 40 + [1] * 40
    flat = [-2.0] * n
    wobble = [-1.0 if i % 2 else -3.0 for i in range(n)]  # mean change 0
    base, treat = _mixed(n, em_b, em_t, flat, wobble)
    out = verify(_claim(tmp_path, base, treat, ["exact", "sim"]))
    f = finding(out, "discontinuous_only_unresolved")
    assert "not on the 0–1 scale" in f.detail
    worse = [-3.0 if i % 10 < 7 else -1.0 for i in range(n)]  # 70% fall by 1, 30% rise by 1: mean −0.4
    base, treat = _mixed(n, em_b, em_t, flat, worse)
    out = verify(_claim(tmp_path / "rev", base, treat, ["exact", "sim"]))
    g = finding(out, "discontinuous_only")
    assert g.severity == "critical" and g.impact == "fragile"
    assert g.statistic["continuous"]["sim"]["evidence"] == "reverses"
