"""audit compare: what changed between two audits of the same claim; exit 0 same verdict, 1 changed, 2 bad input."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from audit.cli import main
from audit.compare import compare, load_report
from conftest import write_jsonl
from test_reports import fragile_claim, supported_claim


def verify_to(claim: Path, out: Path, *args: str) -> Path:
    res = CliRunner().invoke(main, ["verify", str(claim), "--out", str(out), "--resamples", "1000", *args])
    assert res.exit_code in (0, 1), res.output
    return out / "report.json"


def run(*args: str):
    return CliRunner().invoke(main, ["compare", *args], catch_exceptions=False)


@pytest.fixture(scope="module")
def audits(tmp_path_factory):
    """fragile (seed 0), fragile again with seed 5, and the same claim after its baseline logs were fixed."""
    root = tmp_path_factory.mktemp("claim")
    claim = fragile_claim(root)
    first = verify_to(claim, root / "a")
    reseeded = verify_to(claim, root / "b", "--seed", "5")
    # A re-run of the baseline that is no longer cut at 16 tokens (its 64-token outputs at both budgets): the
    # baseline now wins, so the claim is not reproduced.
    base16 = [json.loads(x) for x in (root / "logs/base_64.jsonl").read_text().splitlines()]
    write_jsonl(root / "logs/base_16.jsonl", base16)
    fixed = verify_to(claim, root / "c")
    other = verify_to(supported_claim(tmp_path_factory.mktemp("other")), tmp_path_factory.mktemp("o"))
    return {"first": first, "reseeded": reseeded, "fixed": fixed, "other": other}


def test_identical_audits(audits):
    res = run(str(audits["first"]), str(audits["first"]))
    assert res.exit_code == 0
    assert "verdict unchanged: fragile" in res.output
    for section in ("claim", "cells", "findings", "options", "sources"):
        assert f"{section}: no change" in res.output


def test_reseeded_audit_changes_intervals_not_verdict(audits):
    res = run(str(audits["first"]), str(audits["reseeded"]))
    assert res.exit_code == 0, res.output
    assert "verdict unchanged: fragile" in res.output
    assert "~ seed: 0 → 5" in res.output
    assert "sources: no change" in res.output
    data = json.loads(run(str(audits["first"]), str(audits["reseeded"]), "--json").output)
    assert data["verdict"] == {"old": "fragile", "new": "fragile", "changed": False,
                               "reason_old": data["verdict"]["reason_old"], "reason_new": data["verdict"]["reason_new"]}
    assert data["options"] == [{"key": "seed", "status": "changed", "old": 0, "new": 5, "notes": []}]
    assert all(c["status"] == "changed" for c in data["cells"])  # only CIs move with the seed
    assert all(not any(n.startswith("delta") for n in c["notes"]) for c in data["cells"])
    assert data["exit_code"] == 0


def test_fixed_logs_change_the_verdict(audits):
    res = run(str(audits["first"]), str(audits["fixed"]))
    assert res.exit_code == 1, res.output
    assert "verdict CHANGED: fragile → not_reproduced" in res.output
    out = res.output
    assert "- truncation.vanishes" in out and "- truncation.confounded_by_truncation" in out  # removed findings
    assert "+ truncation.holds_at_budget" in out  # added
    assert "~ variant=default budget=16 scoring=last-number: delta 0.4333 → " in out
    assert "sha256" in out and "baseline budget=16 base_16.jsonl" in out
    data = json.loads(run(str(audits["first"]), str(audits["fixed"]), "--json").output)
    assert data["verdict"]["changed"] is True and data["exit_code"] == 1
    assert [s["key"] for s in data["sources"]] == ["baseline budget=16 base_16.jsonl"]
    statuses = {f["key"].split(" [")[0]: f["status"] for f in data["findings"]}
    assert statuses["truncation.vanishes"] == "removed" and statuses["truncation.holds_at_budget"] == "added"


def test_findings_matched_by_subject_never_by_title(audits):
    a, b = load_report(audits["first"]), load_report(audits["reseeded"])
    c = compare(a, b)
    keys = [f.key for f in c.findings]
    assert len(keys) == len(set(keys)) == len(a.findings)  # one-to-one, nothing added or removed
    (rev,) = [k for k in keys if k.startswith("truncation.vanishes ")]
    assert rev == "truncation.vanishes [variant=default budget=64 scoring=last-number]"
    # A reworded title does not break the match: the subject, not the text, identifies the finding.
    i = next(i for i, f in enumerate(b.findings) if f.code == "vanishes")
    reworded = b.model_copy(update={"findings": [*b.findings[:i], b.findings[i].model_copy(
        update={"title": "Entirely different words"}), *b.findings[i + 1:]]})
    (ch,) = [x for x in compare(a, reworded).findings if x.key == rev]
    assert ch.status in ("same", "changed") and ch.old is not None and ch.new is not None


@pytest.mark.parametrize("content, needle", [
    (None, "report file not found"),
    ("{not json", "not valid JSON"),
    ("[1, 2]", "not an audit report"),
    ('{"schema_version": 1}', "unsupported report schema_version 1"),
    ('{"schema_version": 2, "verdict": "great"}', "not a report.json of this audit version"),
])
def test_unreadable_input_is_exit_2_naming_the_file(audits, tmp_path, content, needle):
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    res = run(str(audits["first"]), str(bad))
    assert res.exit_code == 2
    assert needle in res.output and str(bad) in res.output


def test_both_files_bad_are_both_named(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text("nope")
    res = run(str(a), str(b))
    assert res.exit_code == 2
    assert str(a) in res.output and str(b) in res.output and "2 problem(s)" in res.output


def test_different_claims_are_incompatible(audits):
    res = run(str(audits["first"]), str(audits["other"]))
    assert res.exit_code == 2
    assert "audit different claims" in res.output and str(audits["other"]) in res.output
    assert "--any-claim" in res.output
    res = run(str(audits["first"]), str(audits["other"]), "--any-claim")
    assert res.exit_code == 1  # fragile → supported
    assert "claim: " in res.output and "claim.title: synthetic truncation artifact → supported gain" in res.output
