"""JUnit XML for CI test reporters (GitHub Actions reporters, GitLab `artifacts:reports:junit`, Jenkins).

One ``<testsuite name="audit">`` with one ``<testcase>`` per check that ran, plus ``audit.verdict``:

* a flagged finding that fails the gate is a ``<failure>`` of its check's test case (one per finding);
* a check whose findings include an inconclusive one, and nothing that fails, is ``<skipped>``;
* a check with nothing to test in this claim (no OOD variants, no probes, one output per item; or a check that needs
  per-item samples on a claim of reported numbers only) is ``<skipped>`` with the reason, never a pass;
* a flagged finding that does not fail the gate is listed in its test case's ``<system-out>`` and in the suite's
  (marked as such), so a CI reader sees every flag the page shows;
* ``audit.verdict`` fails when the verdict is in ``--fail-on``, is skipped when the verdict is inconclusive and not
  gated, and passes otherwise — so the suite has failures exactly when the gate failed (exit code 1).

Shape: the Jenkins/Ant JUnit schema (testsuites > testsuite > properties, testcase*, system-out, system-err;
testcase > skipped?, failure*, system-out?), validated in tests against tests/data/junit-10.xsd.
"""

from __future__ import annotations

import json
import re
from xml.etree import ElementTree as ET

from audit.findings import Outcome, Report, Verdict

_BAD_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _x(s: object) -> str:
    """Text safe for XML 1.0 (ElementTree escapes markup but not control characters, which XML forbids)."""
    return _BAD_XML.sub("\ufffd", "" if s is None else str(s))


def _describe(f) -> str:
    lines = [f.title]
    if f.detail:
        lines.append(f.detail)
    if f.statistic:
        lines.append("statistic: " + json.dumps(f.statistic, ensure_ascii=False, default=str))
    if f.provenance:
        lines.append("provenance: " + json.dumps(f.provenance, ensure_ascii=False, default=str))
    for e in f.evidence[:5]:
        lines.append(
            f"evidence item {e.get('item_id')}: baseline score {e.get('baseline_score')}, "
            f"treatment score {e.get('treatment_score')}"
        )
    return "\n".join(lines)


# Why a check that ran returned no finding: what it needs that the claim does not have (checks/<name>.py return
# nothing in exactly these cases). A check missing here is reported with the generic reason.
NOT_APPLICABLE = {
    "ood": "no OOD prompt variants in the claim (perturbations.ood, or samples.variants)",
    "probes": "no probes: block in the claim",
    "emergence": "no continuous scoring among the claim's scorings, and no checks.emergence block",
    "mimicry": "no disposition marker and no stated confidence in either arm's outputs at the claimed setting",
    "item_sets": "both arms hold the same items",
    "reduction": "one output per item (samples.reduce is not used)",
    "results_config": "not a results-only claim (samples.format: lm-eval-results)",
    "log_integrity": "no lm-eval samples with a results_*.json beside them to cross-check",
}
# Checks whose silence is a result, not a gap: they report only what they find.
NOTHING_FOUND = {
    "lengths": "no finding: the arms' output lengths do not differ by 25% or more with an interval that excludes 0",
}
NO_SAMPLES = "needs per-item samples; the claim gives reported numbers only (no samples:, no arms:)"


def _flag_line(f, fails: bool, fail_on: str) -> str:
    if f.outcome == Outcome.flag:
        mark = f"flag/{f.severity}" + ("" if fails else f", does not fail the gate --fail-on {fail_on}")
    else:
        mark = str(f.outcome)
    return f"[{mark}] {f.code}: {f.title}"


def render_junit(report: Report) -> str:
    """The report as JUnit XML: one test case for the verdict and one per check, the flags that do not fail the
    gate in the suite's output."""
    gate = report.gate
    failing = set(gate.failing_findings)

    suites = ET.Element("testsuites", name="audit")
    suite = ET.SubElement(suites, "testsuite", name="audit")
    props = ET.SubElement(suite, "properties")
    for k, v in (
        ("claim", report.title),
        ("claim_file", report.claim_file or ""),
        ("verdict", report.verdict),
        ("verdict_reason", report.verdict_reason),
        ("fail_on", gate.fail_on),
        ("gate", "passed" if gate.passed else "failed"),
        ("exit_code", str(report.exit_code)),
        ("seed", str(report.options.seed)),
        ("resamples", str(report.options.resamples)),
        ("audit_version", report.audit_version),
    ):
        ET.SubElement(props, "property", name=k, value=_x(v))

    outcomes = [_verdict_case(_case(suite, "verdict"), report)]
    names = list(dict.fromkeys([*report.checks_run, *(f.check for f in report.findings)]))
    for name in names:
        outcomes.append(_check_case(_case(suite, name), name, report, failing))
    if not report.cells and not report.sources:  # reported numbers only: the checks that need samples did not run
        from audit.checks import REGISTRY

        for name, spec in REGISTRY.items():
            if spec.needs_samples and name not in names:
                ET.SubElement(_case(suite, name), "skipped", message=_x(f"not applicable: {NO_SAMPLES}"))
                outcomes.append("skipped")

    ET.SubElement(suite, "system-out").text = _x("\n".join(_suite_out(report, failing)))
    ET.SubElement(suite, "system-err").text = ""
    stamp = report.created[:19]
    for el in (suites, suite):
        el.set("tests", str(len(outcomes)))
        el.set("failures", str(outcomes.count("failure")))
        el.set("errors", "0")
        el.set("time", "0")
    suites.set("disabled", "0")
    suite.set("skipped", str(outcomes.count("skipped")))
    suite.set("disabled", "0")
    suite.set("timestamp", stamp)
    suite.set("hostname", "audit")
    suite.set("id", "0")
    suite.set("package", "audit")
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def _case(suite: ET.Element, name: str) -> ET.Element:
    """A new test case of the suite, named after a check (or the verdict)."""
    return ET.SubElement(suite, "testcase", name=name, classname=f"audit.{name}", time="0")


def _verdict_case(tc: ET.Element, report: Report) -> str | None:
    """The verdict's test case filled in; its outcome ("failure", "skipped" or None: passed)."""
    gate = report.gate
    outcome = None
    if gate.verdict_fails:
        outcome = "failure"
        el = ET.SubElement(
            tc, "failure", message=_x(f"verdict {report.verdict}: {report.verdict_reason}"), type=report.verdict
        )
        el.text = _x(
            f"{report.verdict}: {report.verdict_reason}\ngate --fail-on {gate.fail_on}: " + "; ".join(gate.reasons)
        )
    elif report.verdict == Verdict.inconclusive:
        outcome = "skipped"
        ET.SubElement(tc, "skipped", message=_x(f"inconclusive: {report.verdict_reason}"))
    ET.SubElement(tc, "system-out").text = _x(f"verdict: {report.verdict}\n{report.verdict_reason}")
    return outcome


def _check_case(tc: ET.Element, name: str, report: Report, failing: set) -> str | None:
    """One check's test case filled in from its findings; its outcome ("failure", "skipped" or None: passed)."""
    mine = [(i, f) for i, f in enumerate(report.findings) if f.check == name]
    fails = [(i, f) for i, f in mine if i in failing]
    inconclusive = [f for _, f in mine if f.outcome == Outcome.inconclusive]
    outcome = None
    if fails:
        outcome = "failure"
        for _, f in fails:
            el = ET.SubElement(
                tc, "failure", message=_x(f"[{f.severity}] {f.code}: {f.title}"), type=f"{f.check}.{f.code}"
            )
            el.text = _x(_describe(f))
    elif inconclusive:
        outcome = "skipped"
        ET.SubElement(tc, "skipped", message=_x("inconclusive: " + "; ".join(f.title for f in inconclusive)))
    elif not mine and name in NOTHING_FOUND:
        ET.SubElement(tc, "system-out").text = _x(NOTHING_FOUND[name])
        return None
    elif not mine:
        why = "not applicable: " + NOT_APPLICABLE.get(name, "the check found nothing to test in this claim")
        ET.SubElement(tc, "skipped", message=_x(why))
        ET.SubElement(tc, "system-out").text = _x(why)
        return "skipped"
    out = "\n".join(_flag_line(f, i in failing, report.gate.fail_on) for i, f in mine)
    ET.SubElement(tc, "system-out").text = _x(out)
    return outcome


def _suite_out(report: Report, failing: set) -> list[str]:
    """The suite's output: command, verdict, gate, and every flag that does not fail the gate (a CI reader sees all)."""
    gate = report.gate
    quiet = [(i, f) for i, f in enumerate(report.findings) if f.outcome == Outcome.flag and i not in failing]
    suite_out = [
        f"audit {report.audit_version}: {report.command}",
        f"verdict: {report.verdict} — gate --fail-on "
        f"{gate.fail_on}: {'passed' if gate.passed else 'failed'} (exit {report.exit_code})",
    ]
    if quiet:
        suite_out.append(f"{len(quiet)} flagged finding(s) that do not fail the gate --fail-on {gate.fail_on}:")
        suite_out += [f"  [{f.severity}] {f.check}.{f.code}: {f.title}" for _, f in quiet]
    else:
        suite_out.append(f"no flagged finding outside the gate --fail-on {gate.fail_on}")
    return suite_out
