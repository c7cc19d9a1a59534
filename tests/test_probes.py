"""probes: AUC with DeLong CIs, Mann–Whitney against chance, paired DeLong ID vs OOD; the loader's errors."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import stats
from audit.claim import load_claim
from audit.errors import InputError
from audit.importers import probes as probe_files
from audit.verify import verify
from checks import probes
from conftest import FIXTURES, arm_rows, jsonl_claim

CLAIMS = FIXTURES / "claims"
DATA = FIXTURES / "data" / "probes"


def codes(outcome, check="probes"):
    return {f.code for f in outcome.findings if f.check == check}


def finding(outcome, code):
    (f,) = [f for f in outcome.findings if f.check == "probes" and f.code == code]
    return f


# --- oracles ----------------------------------------------------------------------------------------------------

def test_hanley_mcneil_ct_through_the_loader():
    """Hanley & McNeil (1982) CT ratings: AUC 0.8932, DeLong SE 0.03072; the 95% CI on the logit scale is
    logit(0.8932) ± 1.96 · 0.03072 / (0.8932 · 0.1068) → [0.8164, 0.9402] (the untransformed one: [0.8330, 0.9534])."""
    s, problems = probe_files.load_probe_set(DATA / "hanley_mcneil_ct.csv", "ct", id_column="case",
                                             score_column="rating", label_column="abnormal")
    assert problems == []
    assert (s.pos.size, s.neg.size) == (51, 58)
    a = probes.set_auc(s, level=0.95)
    assert a.delong.value == pytest.approx(0.8932, abs=5e-5)
    assert a.delong.se == pytest.approx(0.03072, abs=5e-6)
    assert (a.delong.interval.low, a.delong.interval.high) == pytest.approx((0.8164, 0.9402), abs=5e-5)
    assert a.delong.interval.method == "delong-logit"
    assert a.mw.p_value < 1e-12
    # The structural components give the same variance (the unpaired case of the paired computation).
    aucs, cov = stats.delong_covariance(s.pos, s.neg)
    assert aucs[0] == pytest.approx(0.8932, abs=5e-5)
    assert math.sqrt(cov[0, 0]) == pytest.approx(0.03072, abs=5e-6)


# --- fixtures through verify ------------------------------------------------------------------------------------

def test_fixture_fires_ood_collapse():
    out = verify(load_claim(CLAIMS / "probes_fires.yaml"))
    assert out.report.verdict == "fragile"
    assert codes(out) == {"aucs", "id_above_chance", "ood_chance"}
    f = finding(out, "ood_chance")
    assert f.severity == "critical" and f.impact == "fragile"
    s = f.statistic
    assert s["auc_id"] == pytest.approx(0.683, abs=0.02) and s["auc_ood"] == pytest.approx(0.516, abs=0.01)
    assert s["ood_ci_low"] < 0.5 < s["ood_ci_high"] and s["ood_mw_p"] >= 0.05
    assert s["test"] == "delong-paired" and s["n_shared"] == 400 and s["p_value"] < 1e-6
    assert f.evidence and all(e["label"] == 1 and e["id_score"] is not None for e in f.evidence)
    assert finding(out, "id_above_chance").impact == "reproduced"  # the probe is the claim's only evidence


def test_fixture_passes_ood_holds():
    out = verify(load_claim(CLAIMS / "probes_passes.yaml"))
    assert out.report.verdict == "supported"
    assert codes(out) == {"aucs", "id_above_chance", "ood_holds"}
    tests = {f.statistic["set"]: f.statistic["test"] for f in out.findings if f.code == "ood_holds"}
    assert tests == {"paraphrase": "delong-paired", "new_domain": "delong-unpaired-z"}
    rows = {r["set"]: r for r in finding(out, "aucs").rows}
    assert all(r["auc"] > 0.6 and r["ci_low"] > 0.5 for r in rows.values())


def test_claim_without_probes_gets_no_probe_findings(tmp_path):
    from conftest import write_jsonl

    write_jsonl(tmp_path / "logs/base_16.jsonl", arm_rows([0, 1] * 10))
    write_jsonl(tmp_path / "logs/treat_16.jsonl", arm_rows([1, 1] * 10))
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(jsonl_claim([16], 16)))
    out = verify(load_claim(p))
    assert "probes" in out.report.checks_run and not codes(out)


def _probe_claim(tmp_path: Path, id_file: str, ood: dict, **extra) -> Path:
    p = tmp_path / "claim.yaml"
    p.write_text(yaml.safe_dump({"claim": {"title": "probe"},
                                 "probes": {"in_distribution": id_file, "ood": ood, **extra},
                                 "options": {"resamples": 1000}}))
    return p


def test_claimed_auc_outside_ci_is_not_reproduced(tmp_path):
    p = _probe_claim(tmp_path, str(DATA / "id.csv"), {"paraphrase": str(DATA / "ood_paraphrase.jsonl")},
                     claimed_auc=0.9)
    out = verify(load_claim(p))
    assert out.report.verdict == "not_reproduced"
    assert "claimed_auc_outside_ci" in codes(out)


def test_chance_in_distribution_is_inconclusive(tmp_path):
    rng = np.random.default_rng(0)
    rows = "id,score,label\n" + "".join(f"i{i},{rng.normal():.4f},{i % 2}\n" for i in range(60))
    (tmp_path / "id.csv").write_text(rows)
    (tmp_path / "ood.csv").write_text(rows)
    out = verify(load_claim(_probe_claim(tmp_path, "id.csv", {"same": "ood.csv"})))
    assert out.report.verdict == "inconclusive"
    assert "id_not_above_chance" in codes(out) and "ood_chance" not in codes(out)


def test_single_class_ood_is_inconclusive_not_zero(tmp_path):
    (tmp_path / "ood.jsonl").write_text("".join(json.dumps({"id": f"x{i}", "score": i / 10, "label": 1}) + "\n"
                                                for i in range(10)))
    out = verify(load_claim(_probe_claim(tmp_path, str(DATA / "id.csv"), {"positives_only": "ood.jsonl"})))
    f = finding(out, "ood_no_auc")
    assert f.outcome == "inconclusive" and "negative" in f.detail
    row = [r for r in finding(out, "aucs").rows if r["set"] == "positives_only"][0]
    assert row["auc"] is None or math.isnan(row["auc"])


# --- loader errors ----------------------------------------------------------------------------------------------

def test_bad_files_report_every_problem_with_file_line_and_fix(tmp_path):
    (tmp_path / "id.csv").write_text("id,score,label\na,0.5,1\nb,high,0\nc,0.2,2\na,0.1,0\nd,,1\n")
    (tmp_path / "ood.jsonl").write_text('{"id": "a", "score": 0.4, "label": 1}\n{"id": "b", "score": \n[1, 2]\n')
    with pytest.raises(InputError) as exc:
        verify(load_claim(_probe_claim(tmp_path, "id.csv", {"rw": "ood.jsonl", "gone": "missing.csv"})))
    probs = exc.value.problems
    got = {(Path(p.file).name if p.file else None, p.line, p.field) for p in probs}
    assert ("id.csv", 3, "score") in got            # not a number
    assert ("id.csv", 4, "label") in got            # label 2
    assert ("id.csv", 5, "id") in got               # repeated id
    assert any(Path(p.file).name == "id.csv" and p.line == 6 and "missing value" in p.message for p in probs)
    assert any(Path(p.file).name == "ood.jsonl" and p.line == 2 and "JSON" in p.message for p in probs)
    assert any(Path(p.file).name == "ood.jsonl" and p.line == 3 and "object" in p.message for p in probs)
    assert any("missing.csv" in p.message and p.field == "probes.ood.gone" for p in probs)
    assert all(p.fix for p in probs)


def test_missing_column_suggests_the_close_name(tmp_path):
    (tmp_path / "id.csv").write_text("id,scores,label\na,0.5,1\n")
    with pytest.raises(InputError) as exc:
        verify(load_claim(_probe_claim(tmp_path, "id.csv", {"rw": "id.csv"})))
    p = exc.value.problems[0]
    assert p.line == 1 and "score" in p.message and "score→scores" in p.fix and "score_column" in p.fix


def test_unknown_suffix_and_configured_columns(tmp_path):
    (tmp_path / "id.txt").write_text("x")
    with pytest.raises(InputError) as exc:
        verify(load_claim(_probe_claim(tmp_path, "id.txt", {"rw": "id.txt"})))
    assert ".txt" in exc.value.problems[0].message and ".csv" in exc.value.problems[0].fix
    (tmp_path / "id.tsv").write_text("item\tp\ty\n" + "".join(f"i{i}\t{i}\t{int(i >= 5)}\n" for i in range(10)))
    out = verify(load_claim(_probe_claim(tmp_path, "id.tsv", {"same": "id.tsv"}, id_column="item",
                                         score_column="p", label_column="y")))
    row = finding(out, "aucs").rows[0]
    assert row["auc"] == 1.0 and row["n_pos"] == 5



def test_load_probes_without_probes_is_none(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({"claim": {"title": "t", "reported": {"baseline": {"passes": 4, "n": 89},
                                                                      "treatment": {"passes": 6, "n": 89}}}}))
    assert probe_files.load_probes(load_claim(p)) is None


def test_the_check_reads_the_loaded_sets_not_the_files(tmp_path):
    """The files are read once, before the checks: the check gives the same findings after they are gone."""
    from audit.checks._common import Context

    for name in ("id.csv", "ood_paraphrase.jsonl"):
        (tmp_path / name).write_bytes((DATA / name).read_bytes())
    claim = load_claim(_probe_claim(tmp_path, "id.csv", {"paraphrase": "ood_paraphrase.jsonl"}))
    sets = probe_files.load_probes(claim)
    assert list(sets.ood) == ["paraphrase"] and sets.in_distribution.name == "in-distribution"
    want = [(f.code, f.statistic) for f in verify(claim).findings if f.check == "probes"]
    for name in ("id.csv", "ood_paraphrase.jsonl"):
        (tmp_path / name).unlink()
    ctx = Context(claim, None, 0, 1000, 0.95, 0.05, 0.8, None, None, probe_sets=sets)
    got = [(f.code, f.statistic) for f in probes.run(ctx, probes.Params())]
    assert [c for c, _ in got] == [c for c, _ in want] and "ood_holds" in {c for c, _ in got}
    with pytest.raises(RuntimeError, match="probe_sets"):
        probes.run(Context(claim, None, 0, 1000, 0.95, 0.05, 0.8, None, None), probes.Params())

def test_labels_accept_booleans_and_words():
    got = [probe_files._label(x) for x in (True, 0, 1.0, "yes", "FALSE", " 1 ", "2", None)]
    assert got == [1, 0, 1, 1, 0, 1, None, None]


def test_swapping_labels_mirrors_the_auc():
    rng = np.random.default_rng(9)
    y = (np.arange(50) % 2).astype(int)
    s = y + rng.normal(size=50)
    a = probes.set_auc(probe_files.ProbeSet("a", "-", np.arange(50).astype(str), s, y), 0.95)
    b = probes.set_auc(probe_files.ProbeSet("b", "-", np.arange(50).astype(str), s, 1 - y), 0.95)
    assert a.delong.value == pytest.approx(1 - b.delong.value, abs=1e-12)
    assert a.delong.se == pytest.approx(b.delong.se, rel=1e-10)


def test_inverted_ood_probe_is_flagged_as_inverted(tmp_path):
    rng = np.random.default_rng(2)
    y = np.arange(200) % 2
    s = y * 1.0 + rng.normal(size=200)
    (tmp_path / "id.csv").write_text("id,score,label\n" + "".join(f"i{i},{v:.4f},{l}\n" for i, (v, l) in enumerate(zip(s, y))))
    (tmp_path / "ood.csv").write_text("id,score,label\n" + "".join(f"i{i},{-v:.4f},{l}\n" for i, (v, l) in enumerate(zip(s, y))))
    out = verify(load_claim(_probe_claim(tmp_path, "id.csv", {"flipped": "ood.csv"})))
    f = finding(out, "ood_chance")
    assert "inverts" in f.title and f.statistic["auc_ood"] == pytest.approx(1 - f.statistic["auc_id"])
    assert out.report.verdict == "fragile"


# --- AUC intervals inside [0, 1] ----------------------------------------------------------------------------------

def _logit_oracle(pos, neg, level=0.95):
    """statsmodels' DeLong variance, scipy's logit/expit: logit(A) ± z·SE/(A(1 − A)), back-transformed (Pepe 2003)."""
    from scipy.special import expit, logit
    from scipy.stats import norm
    from statsmodels.stats.nonparametric import rank_compare_2indep

    r = rank_compare_2indep(np.asarray(pos, float), np.asarray(neg, float), use_t=False)
    a, se = float(r.prob1), math.sqrt(float(r.var_prob))
    half = norm.ppf(0.5 + level / 2) * se / (a * (1 - a))
    return a, se, float(expit(logit(a) - half)), float(expit(logit(a) + half)), r.conf_int(alpha=1 - level)


def test_auc_interval_that_used_to_pass_one_is_now_inside():
    """AUC 0.90 on 10 + 10 scores: the untransformed DeLong interval is [0.751, 1.049]; on the logit scale it is
    [0.632, 0.979], with the same DeLong SE."""
    pos = [3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    neg = [0, 1, 2, 3.5, 4.5, 1.5, 0.5, 2.5, 9.5, -1]
    auc, se, lo, hi, (wald_lo, wald_hi) = _logit_oracle(pos, neg)
    assert auc == pytest.approx(0.9) and wald_hi > 1
    est = stats.auc_delong(pos, neg)
    assert est.value == pytest.approx(auc, abs=1e-12) and est.se == pytest.approx(se, rel=1e-12)
    assert (est.interval.low, est.interval.high) == pytest.approx((lo, hi), abs=1e-12)
    assert (est.interval.low, est.interval.high) == pytest.approx((0.6323, 0.9792), abs=5e-5)


@pytest.mark.parametrize("level", [0.8, 0.9, 0.99])
def test_auc_logit_interval_against_the_oracle_at_other_levels(level):
    rng = np.random.default_rng(int(level * 100))
    pos, neg = np.round(rng.normal(1.2, 1, 25), 1), np.round(rng.normal(0, 1, 30), 1)
    auc, se, lo, hi, _ = _logit_oracle(pos, neg, level)
    est = stats.auc_delong(pos, neg, level=level)
    assert (est.interval.low, est.interval.high) == pytest.approx((lo, hi), abs=1e-12)
    assert est.interval.level == level


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=2, max_size=25), st.lists(st.integers(0, 6), min_size=2, max_size=25))
def test_auc_interval_always_lies_inside_0_1(pos, neg):
    est = stats.auc_delong(pos, neg)
    iv = est.interval
    if iv.ok:
        assert 0 < iv.low <= est.value <= iv.high < 1
    else:
        assert iv.reason and (est.value in (0.0, 1.0) or not est.se > 0 or math.isnan(est.se))


@pytest.mark.parametrize("pos,neg,auc", [([3, 4, 5], [0, 1, 2], 1.0), ([0, 1, 2], [3, 4, 5], 0.0)])
def test_auc_at_zero_or_one_has_nan_bounds_with_a_reason(pos, neg, auc):
    est = stats.auc_delong(pos, neg)
    assert est.value == auc and not est.interval.ok and math.isnan(est.interval.low)
    assert "perfect separation" in est.reason and est.interval.reason == est.reason


# --- the evidence rule for the probe flags -----------------------------------------------------------------------

def _probe_claim_checks(tmp_path: Path, ood: dict, checks: dict | None = None, **extra) -> Path:
    p = tmp_path / "claim.yaml"
    c = {"claim": {"title": "probe"}, "probes": {"in_distribution": str(DATA / "id.csv"), "ood": ood, **extra},
         "options": {"resamples": 1000}}
    if checks is not None:
        c["checks"] = {"probes": checks}
    p.write_text(yaml.safe_dump(c))
    return p


def _write_set(path: Path, pos, neg) -> str:
    rows = [(f"new-{i}", v, 1) for i, v in enumerate(pos)] + [(f"new-n{i}", v, 0) for i, v in enumerate(neg)]
    path.write_text("id,score,label\n" + "".join(f"{i},{v},{y}\n" for i, v, y in rows))
    return str(path)


def test_ood_at_chance_without_a_shown_drop_is_not_a_collapse(tmp_path):
    """20 + 20 new OOD items at AUC 0.525 (Mann–Whitney p = 0.40): indistinguishable from chance, but the unpaired
    ID − OOD difference has a CI that covers 0, so no critical flag and no verdict change."""
    pos = [round(i / 20 + 0.03, 3) for i in range(20)]
    neg = [round(i / 20, 3) for i in range(20)]
    out = verify(load_claim(_probe_claim_checks(tmp_path, {"small": _write_set(tmp_path / "ood.csv", pos, neg)})))
    assert "ood_chance" not in codes(out)
    f = finding(out, "ood_unresolved")
    assert (f.outcome, f.severity, f.impact) == ("inconclusive", "minor", "none")
    s = f.statistic
    assert s["test"] == "delong-unpaired-z" and s["diff_ci_low"] < 0 < s["diff_ci_high"] and s["ood_mw_p"] >= 0.05
    assert "not shown" in f.detail
    assert out.report.verdict == "supported"


def test_a_shown_drop_on_too_few_items_is_not_a_collapse(tmp_path):
    """8 + 8 OOD items at AUC 0.23: the drop from ID excludes 0, but 8 per class are fewer than the 10 needed;
    lowering ``min_per_class`` turns the critical flag on."""
    pos, neg = [1, 2, 3, 4, 5, 6, 7, 20], [8, 9, 10, 11, 12, 13, 14, 0]
    ood = {"tiny": _write_set(tmp_path / "ood.csv", pos, neg)}
    out = verify(load_claim(_probe_claim_checks(tmp_path, ood)))
    assert "ood_chance" not in codes(out)
    f = finding(out, "ood_unresolved")
    assert f.statistic["diff_ci_low"] > 0 and "only 8 positive(s) and 8 negative(s)" in f.detail
    out = verify(load_claim(_probe_claim_checks(tmp_path, ood, checks={"min_per_class": 5})))
    g = finding(out, "ood_chance")
    assert (g.severity, g.impact) == ("critical", "fragile") and out.report.verdict == "fragile"


def test_a_probe_better_than_claimed_is_not_a_failure(tmp_path):
    out = verify(load_claim(_probe_claim_checks(tmp_path, {"paraphrase": str(DATA / "ood_paraphrase.jsonl")},
                                                claimed_auc=0.6)))
    assert "claimed_auc_outside_ci" not in codes(out)
    f = finding(out, "claimed_auc_exceeded")
    assert f.outcome == "info" and f.statistic["ci_low"] > 0.6
    assert out.report.verdict == "supported"
