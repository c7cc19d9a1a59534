"""log_integrity: replayed lm-eval samples against their results_*.json; the untrusted_input verdict cap; lm-eval's
own "<metric>,<filter>" scoring names."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from audit.claim import load_claim
from audit.cli import main
from audit.errors import InputError
from audit.findings import Finding
from audit.verify import decide
from audit.verify import verify as _verify

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def copy_fixture(tmp_path: Path, claim: dict | None = None) -> Path:
    """The committed truncation claim and its four lm-eval runs, copied so a test can damage them."""
    shutil.copytree(FIXTURES / "logs", tmp_path / "logs", ignore=shutil.ignore_patterns("inspect"))
    (tmp_path / "claims").mkdir()
    p = tmp_path / "claims" / "truncation.yaml"
    if claim is None:
        shutil.copy(FIXTURES / "claims" / "truncation.yaml", p)
    else:
        p.write_text(yaml.safe_dump(claim))
    return p


def samples_file(tmp_path: Path, run: str) -> Path:
    return next((tmp_path / "logs" / run).glob("samples_*.jsonl"))


def results_file(tmp_path: Path, run: str) -> Path:
    return next((tmp_path / "logs" / run).glob("results_*.json"))


def rewrite(path: Path, keep) -> None:
    lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    path.write_text("".join(json.dumps(d) + "\n" for d in lines if keep(d)))


def verify(claim):
    return _verify(claim).report


def integrity(report) -> list:
    return [f for f in report.findings if f.check == "log_integrity"]


def flagged(report):
    return [f for f in integrity(report) if f.code == "samples_do_not_support_results"]


def test_untouched_fixture_logs_pass(tmp_path):
    report = verify(load_claim(copy_fixture(tmp_path)))
    (f,) = integrity(report)
    assert f.code == "samples_support_results" and f.outcome == "pass"
    assert len(f.rows) == 8  # 2 arms × 2 budgets × 2 filters
    assert all(r["status"] == "matches" and r["documents_samples"] == r["documents_results"] == 50 for r in f.rows)
    assert report.verdict == "inconclusive"


def test_committed_claim_keeps_its_verdict():
    report = verify(load_claim(FIXTURES / "claims" / "truncation.yaml"))
    assert report.verdict == "inconclusive"
    assert [f.code for f in integrity(report)] == ["samples_support_results"]


def test_dropped_documents_flagged(tmp_path):
    """(a) Both arms' samples at 64 tokens trimmed to 45 of their 50 documents (trimming one arm alone already fails
    the pairing; at the claimed budget the reported n = 50 would no longer match): fewer documents than the
    results' n-samples."""
    p = copy_fixture(tmp_path)
    for run in ("add_direct_64", "add_verify_64"):
        rewrite(samples_file(tmp_path, run), lambda d: d["doc_id"] < 45)
    report = verify(load_claim(p))
    (f,) = flagged(report)
    assert f.severity == "major" and f.impact == "untrusted_input"
    assert "the samples hold 45 document(s), the results file says 50" in f.detail
    assert f.title.startswith("The samples do not support the published numbers")
    rows = [r for r in f.rows if r["arm"] == "treatment" and r["budget"] == 64]
    assert {r["status"].split(";")[0] for r in rows} == {"documents missing"}
    assert report.verdict == "inconclusive"
    assert "The samples do not support the published numbers" in report.verdict_reason
    # The budgets now hold different items: named once, and every cross-budget comparison uses the shared 45.
    (gap,) = [g for g in report.findings if g.code == "budgets_hold_different_items"]
    assert "budget 64 lacks 5 item(s) present at budget(s) 32 ('45', '46', '47', '48', '49')" in gap.title
    assert all(g.statistic["shared_items"] == 45 for g in report.findings
               if g.check == "truncation" and "shared_items" in g.statistic)


def test_removed_filter_flagged(tmp_path):
    """(b) Every flexible-extract line removed from one samples file."""
    p = copy_fixture(tmp_path)
    rewrite(samples_file(tmp_path, "add_verify_64"), lambda d: d["filter"] != "flexible-extract")
    claim = yaml.safe_load(p.read_text())
    claim["perturbations"]["scorings"] = ["strict-match"]  # the removed filter is not asked for
    p.write_text(yaml.safe_dump(claim))
    report = verify(load_claim(p))
    (f,) = flagged(report)
    assert "baseline at budget 64: filter 'flexible-extract' is in the results" in f.detail
    (row,) = [r for r in f.rows if r["status"] == "in the results, no sample lines"]
    assert (row["arm"], row["budget"], row["filter"]) == ("baseline", 64, "flexible-extract")
    assert report.verdict == "inconclusive"


def test_edited_results_value_flagged(tmp_path):
    """(c) The published strict-match number of one run edited from 0.22 to 0.30."""
    p = copy_fixture(tmp_path)
    rf = results_file(tmp_path, "add_direct_64")
    data = json.loads(rf.read_text())
    assert data["results"]["add_direct"]["exact_match,strict-match"] == pytest.approx(0.22)
    data["results"]["add_direct"]["exact_match,strict-match"] = 0.30
    rf.write_text(json.dumps(data))
    report = verify(load_claim(p))
    (f,) = flagged(report)
    (row,) = [r for r in f.rows if r["status"] == "value differs"]
    assert (row["arm"], row["budget"], row["filter"]) == ("treatment", 64, "strict-match")
    assert row["recomputed"] == pytest.approx(0.22) and row["published"] == pytest.approx(0.30)
    assert row["difference"] == pytest.approx(-0.08)


def test_edited_n_samples_flagged(tmp_path):
    p = copy_fixture(tmp_path)
    rf = results_file(tmp_path, "add_verify_32")
    data = json.loads(rf.read_text())
    data["n-samples"]["add_verify"] = {"original": 60, "effective": 60}
    rf.write_text(json.dumps(data))
    (f,) = flagged(verify(load_claim(p)))
    assert "the samples hold 50 document(s), the results file says 60 (n-samples effective, of 60 original)" in f.detail


def test_limit_is_reported_not_flagged(tmp_path):
    p = copy_fixture(tmp_path)
    rf = results_file(tmp_path, "add_verify_32")
    data = json.loads(rf.read_text())
    data["config"]["limit"] = 50
    data["n-samples"]["add_verify"] = {"original": 80, "effective": 50}
    rf.write_text(json.dumps(data))
    found = {f.code: f for f in integrity(verify(load_claim(p)))}
    assert set(found) == {"samples_support_results", "limited_run"}
    assert "evaluated 50 of 80 documents (--limit 50)" in found["limited_run"].detail


def test_missing_results_file_is_info(tmp_path):
    p = copy_fixture(tmp_path)
    results_file(tmp_path, "add_direct_32").unlink()
    found = {f.code: f for f in integrity(verify(load_claim(p)))}
    assert found["no_results_file"].outcome == "info"
    assert "treatment at budget 32: no results_*.json beside" in found["no_results_file"].detail


def test_cli_exit_code_and_reason(tmp_path):
    p = copy_fixture(tmp_path)
    for run in ("add_direct_64", "add_verify_64"):
        rewrite(samples_file(tmp_path, run), lambda d: d["doc_id"] < 45)
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["verify", str(p), "--out", str(out)])
    data = json.loads((out / "report.json").read_text())
    assert data["verdict"] == "inconclusive"
    assert res.exit_code == 1, res.output


# --- decide: the untrusted_input cap -----------------------------------------------------------------------------


def _f(impact: str, title: str, severity: str = "major") -> Finding:
    return Finding("x", "c", "flag" if impact != "reproduced" else "pass", title, severity=severity, impact=impact)


def test_decide_untrusted_input_caps_a_reproduced_gain():
    assert decide([_f("reproduced", "gain reproduced")])[0] == "supported"
    verdict, reason = decide([_f("reproduced", "gain reproduced"), _f("untrusted_input", "logs trimmed")])
    assert verdict == "inconclusive"
    assert reason.startswith("logs trimmed") and "inconclusive at best" in reason


def test_decide_untrusted_input_caps_fragile_and_counts():
    verdict, reason = decide([_f("reproduced", "gain"), _f("fragile", "breaks at 64"),
                              _f("untrusted_input", "a"), _f("untrusted_input", "b", "critical")])
    assert verdict == "inconclusive"
    assert reason.startswith("b (and 1 more input finding(s))")


def test_decide_untrusted_input_caps_not_reproduced_too():
    """A trimmed log refutes nothing: the items left cannot make a claim not_reproduced (it used to win)."""
    verdict, reason = decide([_f("untrusted_input", "trimmed"), _f("not_reproduced", "opposite")])
    assert verdict == "inconclusive" and reason.startswith("trimmed")


# --- lm-eval's own "<metric>,<filter>" names ----------------------------------------------------------------------


def test_metric_filter_names_map_to_filters(tmp_path):
    claim = yaml.safe_load((FIXTURES / "claims" / "truncation.yaml").read_text())
    claim["claim"]["settings"]["scoring"] = "exact_match,strict-match"
    claim["perturbations"]["scorings"] = ["exact_match,strict-match", "exact_match,flexible-extract"]
    claim["perturbations"]["higher_is_better"] = {"exact_match,flexible-extract": True}
    c = load_claim(copy_fixture(tmp_path, claim))
    assert c.scorings() == ["strict-match", "flexible-extract"]
    assert c.perturbations.higher_is_better == {"flexible-extract": True}
    report = verify(c)
    assert report.verdict == "inconclusive"
    assert {cell.scoring for cell in report.cells} == {"strict-match", "flexible-extract"}


def test_metric_filter_name_of_another_metric_is_an_error(tmp_path):
    claim = yaml.safe_load((FIXTURES / "claims" / "truncation.yaml").read_text())
    claim["perturbations"]["scorings"] = ["strict-match", "f1,flexible-extract"]
    p = copy_fixture(tmp_path, claim)
    with pytest.raises(InputError) as e:
        load_claim(p)
    msg = str(e.value)
    assert "perturbations.scorings[1]: 'f1,flexible-extract' names the lm-eval metric 'f1', but claim.metric is " \
           "'exact_match'" in msg
    res = CliRunner().invoke(main, ["validate", str(p)])
    assert res.exit_code == 2


def test_results_file_of_another_task_is_named_so(tmp_path):
    """Issue 19: a results file beside the samples that publishes another task is said to be one, not "no results"."""
    p = copy_fixture(tmp_path)
    rf = results_file(tmp_path, "add_direct_32")
    data = json.loads(rf.read_text())
    for key in ("results", "n-samples", "configs", "versions"):
        if isinstance(data.get(key), dict) and "add_direct" in data[key]:
            data[key]["gsm8k"] = data[key].pop("add_direct")
    rf.write_text(json.dumps(data))
    found = {f.code: f for f in integrity(verify(load_claim(p)))}
    assert found["no_results_file"].outcome == "info"
    detail = found["no_results_file"].detail
    assert "treatment at budget 32: " in detail and f"{rf.name} holds results of gsm8k, not task add_direct" in detail
    assert "publishes no document count" not in detail


def test_results_file_with_nan_is_still_read(tmp_path):
    """lm-eval writes NaN (json.dumps) for a nanmean of no values: the run's genuine output, read as before."""
    p = copy_fixture(tmp_path)
    rf = results_file(tmp_path, "add_direct_32")
    data = json.loads(rf.read_text())
    data["results"]["add_direct"]["nan_metric,none"] = float("nan")
    rf.write_text(json.dumps(data))
    found = {f.code: f for f in integrity(verify(load_claim(p)))}
    assert "samples_support_results" in found
