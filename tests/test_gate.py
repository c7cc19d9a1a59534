"""The CI gate: --fail-on semantics and exit codes, JUnit XML (validated against a vendored XSD), summary.md."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree

from audit.cli import main
from audit.errors import InputError
from audit.findings import Report
from audit.gate import DEFAULT_FAIL_ON, Gate, evaluate, exit_code
from test_reports import CLAIMS, audit, write_claim

XSD = Path(__file__).parent / "data" / "junit.xsd"
VERDICTS = ("supported", "fragile", "not_reproduced", "inconclusive")

# The synthetic claims' flagged findings (see tests/test_reports.py):
#   supported       — none
#   fragile         — critical/fragile ×2 (truncation), major/none (reported p-value)
#   not_reproduced  — critical/not_reproduced, major/not_reproduced ×2
#   inconclusive    — major/none (reported p-value); the verdict comes from an inconclusive finding
GATES = {
    None: (0, 1, 1, 1),
    DEFAULT_FAIL_ON: (0, 1, 1, 1),
    "not_reproduced,critical": (0, 1, 1, 0),
    "not_reproduced": (0, 0, 1, 0),
    "critical": (0, 1, 1, 0),
    "major": (0, 1, 1, 1),  # a severity means that severity or worse
    "inconclusive": (0, 0, 0, 1),
    "none": (0, 0, 0, 0),
    "supported": (1, 0, 0, 0),
    " Not-Reproduced , FRAGILE ": (0, 1, 1, 0),  # case, '-' and spaces are forgiven
}


@pytest.fixture(scope="module")
def claims(tmp_path_factory) -> dict[str, Path]:
    return {name: make(tmp_path_factory.mktemp(name)) for name, make in CLAIMS.items()}


@pytest.fixture(scope="module", autouse=True)
def verify_once():
    """The gate does not change the checks: run each claim's checks once and let every gate reuse them."""
    import audit.verify

    real, cache = audit.verify.run_checks, {}

    def cached(ctx):
        key = (str(ctx.claim.path), ctx.seed, ctx.resamples)
        if key not in cache:
            cache[key] = real(ctx)
        return cache[key]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(audit.verify, "run_checks", cached)
        yield


def run(*args: str):
    return CliRunner().invoke(main, ["verify", *args, "--resamples", "1000"], catch_exceptions=False)


@pytest.mark.parametrize("fail_on", list(GATES), ids=lambda g: "default" if g is None else g.strip())
def test_fail_on_exit_codes(claims, fail_on):
    for verdict, expected in zip(VERDICTS, GATES[fail_on]):
        extra = [] if fail_on is None else ["--fail-on", fail_on]
        res = run(str(claims[verdict]), "--json", *extra)
        assert res.exit_code == expected, (verdict, fail_on, res.output)
        report = json.loads(res.stdout)
        assert report["verdict"] == verdict
        assert report["exit_code"] == expected  # the report records the gate actually used
        assert report["gate"]["passed"] is (expected == 0)
        assert report["gate"]["fail_on"] == Gate.parse(fail_on).spec


@pytest.mark.parametrize("verdict", VERDICTS)
def test_written_report_and_console_reflect_the_gate(claims, verdict, tmp_path):
    res = run(str(claims[verdict]), "--out", str(tmp_path), "--fail-on", "not_reproduced,critical")
    expected = GATES["not_reproduced,critical"][VERDICTS.index(verdict)]
    assert res.exit_code == expected
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["exit_code"] == expected and report["gate"]["fail_on"] == "not_reproduced,critical"
    assert f"gate --fail-on not_reproduced,critical: {'passed' if expected == 0 else 'failed'}" in res.output
    html = (tmp_path / "report.html").read_text()
    assert f"exit code {expected}" in html and "--fail-on not_reproduced,critical" in html


@pytest.mark.parametrize("bad", ["bogus", "fragile,bogus", "", ",", "none,fragile", "critcal"])
def test_invalid_fail_on_is_a_usage_error(claims, bad):
    res = run(str(claims["supported"]), "--fail-on", bad)
    assert res.exit_code == 2, res.output
    assert "Invalid value for '--fail-on'" in res.output
    if bad != "none,fragile":
        for valid in ("supported", "fragile", "not_reproduced", "inconclusive", "critical", "major", "minor", "info"):
            assert valid in res.output


def test_gate_parse_and_evaluate(claims):
    g = Gate.parse("Fragile,major,critical")
    assert g.verdicts == {"fragile"} and g.severity == "major" and g.spec == "fragile,major,critical"
    assert g.severity_fails("critical") and g.severity_fails("major") and not g.severity_fails("minor")
    with pytest.raises(InputError) as exc:
        Gate.parse("bogus")
    assert "bogus" in str(exc.value) and "not_reproduced" in str(exc.value)
    report = audit(claims["fragile"]).report
    r = evaluate(report.findings, report.verdict, Gate.parse("not_reproduced,critical"))
    assert not r.passed and exit_code(r) == 1 and not r.verdict_fails
    assert {report.findings[i].code for i in r.failing_findings} == {"vanishes"}
    r = evaluate(report.findings, report.verdict, Gate.parse("not_reproduced,major"))
    assert {report.findings[i].code for i in r.failing_findings} >= {"vanishes", "confounded_by_truncation"}
    r = evaluate(report.findings, report.verdict, Gate.parse("not_reproduced"))
    assert r.passed and r.failing_findings == [] and exit_code(r) == 0
    r = evaluate(report.findings, report.verdict, Gate.parse("fragile"))
    assert not r.passed and r.verdict_fails


# ---------------------------------------------------------------------------------------------------------------
# JUnit


@pytest.fixture(scope="module")
def schema():
    return etree.XMLSchema(etree.parse(str(XSD)))


@pytest.mark.parametrize("verdict", VERDICTS)
@pytest.mark.parametrize("fail_on", [None, "not_reproduced", "minor"])
def test_junit_validates_and_matches_the_gate(claims, schema, verdict, fail_on, tmp_path):
    path = tmp_path / "junit.xml"
    extra = [] if fail_on is None else ["--fail-on", fail_on]
    res = run(str(claims[verdict]), "--junit", str(path), "--json", *extra)
    doc = etree.parse(str(path))
    assert schema.validate(doc), schema.error_log
    suite = doc.getroot().find("testsuite")
    cases = suite.findall("testcase")
    report = Report.model_validate_json(res.stdout)
    names = [c.get("name") for c in cases]
    assert names[:len(report.checks_run) + 1] == ["verdict", *report.checks_run]
    failed = [c for c in cases if c.find("failure") is not None]
    assert int(suite.get("failures")) == len(failed)
    assert int(suite.get("tests")) == len(cases)
    assert (len(failed) > 0) == (res.exit_code == 1)  # the suite fails exactly when the gate does
    skipped = [c for c in cases if c.find("skipped") is not None]
    assert int(suite.get("skipped")) == len(skipped)
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["verdict"] == verdict and props["exit_code"] == str(res.exit_code)
    # One failure element per flagged finding that fails the gate.
    gate = evaluate(report.findings, report.verdict, Gate.parse(fail_on))
    assert gate == report.gate  # JUnit reads the gate the report recorded
    n_finding_failures = sum(len(c.findall("failure")) for c in cases if c.get("name") != "verdict")
    assert n_finding_failures == len(gate.failing_findings)
    if verdict == "inconclusive":  # the check that could not decide is skipped, not failed
        sig = next(c for c in cases if c.get("name") == "significance")
        assert sig.find("skipped") is not None and sig.find("failure") is None
        v = cases[0]
        assert (v.find("failure") is not None) == (fail_on is None)
        assert (v.find("skipped") is not None) == (fail_on is not None)


def test_junit_counts_for_fragile(claims, tmp_path):
    path = tmp_path / "j.xml"
    run(str(claims["fragile"]), "--junit", str(path), "--fail-on", "not_reproduced,major")
    suite = etree.parse(str(path)).getroot().find("testsuite")
    trunc = next(c for c in suite.findall("testcase") if c.get("name") == "truncation")
    assert [f.get("type") for f in trunc.findall("failure")] == ["truncation.vanishes", "truncation.confounded_by_truncation"]
    rep = next(c for c in suite.findall("testcase") if c.get("name") == "reported_numbers")
    assert [f.get("type") for f in rep.findall("failure")] == ["reported_numbers.p_value_irreproducible"]
    assert "[critical]" in trunc.find("failure").get("message")


def test_junit_skips_checks_with_nothing_to_test(claims, schema, tmp_path):
    """A check with nothing to test in the claim is skipped with the reason, never a pass."""
    path = tmp_path / "j.xml"
    run(str(claims["fragile"]), "--junit", str(path))
    assert schema.validate(etree.parse(str(path)))
    by = {c.get("name"): c for c in etree.parse(str(path)).getroot().find("testsuite").findall("testcase")}
    ood = by["ood"].find("skipped")
    assert ood is not None and ood.get("message") == ("not applicable: no OOD prompt variants in the claim "
                                                      "(perturbations.ood, or samples.variants)")
    assert by["probes"].find("skipped").get("message") == "not applicable: no probes: block in the claim"
    assert by["ood"].find("system-out").text == ood.get("message")
    assert by["scoring"].find("skipped") is None  # a check that tested something is not skipped


def test_junit_counts_only_claim_skips_the_sample_checks(claims, schema, tmp_path):
    path = tmp_path / "j.xml"
    res = run(str(claims["inconclusive"]), "--junit", str(path), "--json")
    doc = etree.parse(str(path))
    assert schema.validate(doc), schema.error_log
    report = Report.model_validate_json(res.stdout)
    by = {c.get("name"): c for c in doc.getroot().find("testsuite").findall("testcase")}
    assert "truncation" not in report.checks_run
    for name in ("truncation", "scoring", "ood", "settings"):
        assert by[name].find("skipped").get("message").startswith("not applicable: needs per-item samples")


def test_junit_lists_flags_that_do_not_fail_the_gate(claims, tmp_path):
    path = tmp_path / "j.xml"
    res = run(str(claims["fragile"]), "--junit", str(path), "--fail-on", "not_reproduced", "--json")
    assert res.exit_code == 0
    report = Report.model_validate_json(res.stdout)
    quiet = [f for f in report.findings if f.outcome == "flag"]
    assert quiet and not report.gate.failing_findings
    suite = etree.parse(str(path)).getroot().find("testsuite")
    out = suite.find("system-out").text
    assert f"{len(quiet)} flagged finding(s) that do not fail the gate --fail-on not_reproduced:" in out
    for f in quiet:
        assert f"[{f.severity}] {f.check}.{f.code}: {f.title}" in out
    trunc = next(c for c in suite.findall("testcase") if c.get("name") == "truncation")
    assert trunc.find("failure") is None
    assert "[flag/critical, does not fail the gate --fail-on not_reproduced] vanishes:" in trunc.find("system-out").text


def test_xsd_rejects_malformed_junit(schema):
    bad = etree.fromstring(b'<testsuites><testsuite name="a" tests="1"><testcase name="x">'
                           b'<failure/><skipped/></testcase></testsuite></testsuites>')
    assert not schema.validate(bad)  # skipped must come before failures
    bad = etree.fromstring(b'<testsuites><testsuite name="a" tests="x"/></testsuites>')
    assert not schema.validate(bad)


def test_junit_survives_control_characters_and_markup(tmp_path):
    from audit.reports import render_junit

    report = audit(CLAIMS["fragile"](tmp_path)).report
    i = next(k for k, f in enumerate(report.findings) if f.outcome == "flag" and f.severity == "critical")
    f0 = report.findings[i].model_copy(update={"title": "bad \x00\x1b <tag> & ]]> done"})
    report = report.model_copy(update={"findings": [*report.findings[:i], f0, *report.findings[i + 1:]]})
    doc = etree.fromstring(render_junit(report).encode())
    assert any("<tag> & ]]>" in (f.get("message") or "") for f in doc.iter("failure"))


# ---------------------------------------------------------------------------------------------------------------
# Markdown summary


def test_summary_md(claims, tmp_path):
    path = tmp_path / "summary.md"
    res = run(str(claims["fragile"]), "--summary-md", str(path), "--fail-on", "not_reproduced,critical", "--json")
    assert res.exit_code == 1
    md = path.read_text()
    report = Report.model_validate_json(res.stdout)
    assert md.startswith("## ⚠️ audit: fragile")
    assert report.verdict_reason in md
    assert "**CI gate** `--fail-on not_reproduced,critical`: **failed** (exit 1)" in md
    assert "### Claimed vs measured" in md and "| delta |" in md and "| p-value |" in md
    assert "| variant | budget | scoring | n | baseline | treatment | delta | 95% CI | p | test |" in md
    assert md.count("**(claimed)**") == 1
    assert md.count("| default |") == len(report.cells)
    assert "`truncation.vanishes`" in md and "**fails the gate**" in md
    # The major reported_numbers flag does not fail this gate and is listed without the mark.
    line = next(ln for ln in md.splitlines() if "reported_numbers.p_value_irreproducible" in ln)
    assert "fails the gate" not in line
    assert "Reproduce: `audit verify" in md and "--fail-on not_reproduced,critical" in md
    # The truncation rates with the no-answer rates beside them.
    assert "### Outputs cut off by the budget, and with no answer" in md
    assert "| budget | arm | truncated |\n" in md and "| 16 | baseline | 100.0% (60/60) |" in md
    assert "_No no-answer rate: no scoring of this audit extracts an answer" in md


def test_summary_md_shows_no_answer_rates_beside_truncation():
    """The truncation fixture (real lm-eval logs): strict-match finds no answer where the baseline was cut off."""
    from audit.reports import render_summary
    from conftest import REPO

    md = render_summary(audit(REPO / "fixtures/claims/truncation.yaml").report)
    assert "| budget | arm | truncated | no answer (strict-match) | no answer (flexible-extract) |" in md
    assert "| 32 | baseline | 74.0% (37/50) | 74.0% (37/50) | 0.0% (0/50) |" in md
    assert "| 64 | baseline | unknown | 0.0% (0/50) | 0.0% (0/50) |" in md


def test_reproduce_command_is_relative_to_the_claim_and_uses_the_given_out(claims, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    claim = claims["fragile"]
    res = run(str(claim), "--out", "audit-out/run 1", "--summary-md", "ci/summary.md", "--fail-on", "none")
    assert res.exit_code == 0, res.output
    out = os.path.relpath(tmp_path / "audit-out" / "run 1", claim.parent)
    expected = f"audit verify claim.yaml --seed 0 --resamples 1000 --fail-on none --out '{out}'"
    for md in ((tmp_path / "audit-out/run 1/summary.md").read_text(), (tmp_path / "ci/summary.md").read_text()):
        assert f"Reproduce: `{expected}` (in the claim file's folder)" in md
    html = (tmp_path / "audit-out/run 1/report.html").read_text()
    assert f"# in the claim file&#39;s folder\n{expected.replace(chr(39), '&#39;')}</pre>" in html
    assert str(tmp_path) not in expected  # nothing of this machine's absolute paths
    res = run(str(claim), "--out", str(tmp_path / "abs"), "--fail-on", "none")  # an absolute --out stays as given
    assert f"--out {tmp_path / 'abs'}" in (tmp_path / "abs" / "summary.md").read_text()


def test_terminal_shows_no_answer_rates_beside_truncation(claims):
    res = run(str(claims["fragile"]))
    assert "outputs cut off by the budget, and with no answer:" in res.output
    lines = res.output.splitlines()
    head = next(i for i, ln in enumerate(lines) if "outputs cut off by the budget" in ln)
    assert lines[head + 1].split() == ["budget", "arm", "truncated"]
    assert lines[head + 2].split() == ["16", "baseline", "100.0%", "(60/60)"]
    assert "(no no-answer rate: no scoring of this audit extracts an answer)" in res.output
    from conftest import REPO

    res = run(str(REPO / "fixtures/claims/truncation.yaml"))
    lines = res.output.splitlines()
    head = next(i for i, ln in enumerate(lines) if "outputs cut off by the budget" in ln)
    assert lines[head + 1].split() == ["budget", "arm", "truncated", "no", "answer", "(strict-match)", "no", "answer",
                                       "(flexible-extract)"]
    assert lines[head + 2].split() == ["32", "baseline", "74.0%", "(37/50)", "74.0%", "(37/50)", "0.0%", "(0/50)"]


def test_summary_md_counts_only_and_escaping(tmp_path):
    claim = {"claim": {"title": "pipes | and <b>tags</b>", "reported": {"baseline": {"passes": 4, "n": 89},
                                                                        "treatment": {"passes": 6, "n": 89}}}}
    path = write_claim(tmp_path, claim)
    md_path = tmp_path / "s.md"
    res = run(str(path), "--summary-md", str(md_path))
    assert res.exit_code == 1
    md = md_path.read_text()
    assert "audit: inconclusive" in md
    assert "pipes \\| and &lt;b&gt;tags&lt;/b&gt;" in md and "<b>" not in md
    assert "recomputed from the reported counts" in md
    assert "### Every cell" not in md  # no samples, no cells
    assert "_inconclusive_ `significance.underpowered`" in md


def test_unwritable_ci_file_is_exit_2(claims, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    res = run(str(claims["supported"]), "--junit", str(blocker / "junit.xml"))
    assert res.exit_code == 2
    assert "cannot write junit file" in res.output
