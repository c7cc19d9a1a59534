"""The CI gate: which verdicts and which flagged findings fail a build.

``--fail-on`` takes a comma list of verdicts and/or severities. A verdict fails the gate when the audit reaches it;
a severity fails the gate when any *flagged* finding (outcome ``flag``) has that severity **or a worse one**
(``major`` also fails on ``critical``). ``none`` is a gate that never fails (report-only runs). The default,
``fragile,not_reproduced,inconclusive``, fails on every verdict but ``supported`` — the exit codes of DESIGN.md.

The gate is recorded in the report (``Report.gate``) and decides ``Report.exit_code``: 0 passes, 1 fails.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit.errors import AuditError, InputError, Problem
from audit.findings import Report

VERDICTS = ("supported", "fragile", "not_reproduced", "inconclusive")
SEVERITIES = ("critical", "major", "minor", "info")  # worst first
NEVER = "none"
DEFAULT_FAIL_ON = "fragile,not_reproduced,inconclusive"
VALID = (*VERDICTS, *SEVERITIES, NEVER)


@dataclass(frozen=True)
class Gate:
    """A parsed ``--fail-on`` list: the verdicts that fail, and the mildest severity of a flag that fails."""

    verdicts: frozenset[str]
    severity: str | None  # a flagged finding of this severity or worse fails; None: findings never fail
    spec: str  # normalised, as given (for the report and messages)

    @classmethod
    def parse(cls, text: str | None, source: str = "--fail-on") -> "Gate":
        """Parse ``fragile,not_reproduced,critical``; case and ``-``/``_`` are ignored. Raises InputError."""
        if text is None:
            text = DEFAULT_FAIL_ON
        items = [t.strip().lower().replace("-", "_") for t in str(text).split(",")]
        items = [t for t in items if t]
        bad = [t for t in items if t not in VALID]
        if bad or not items:
            shown = ", ".join(repr(b) for b in bad) if bad else "an empty list"
            raise InputError([Problem(
                f"invalid {source} value: {shown}", field=source, value=text,
                fix=f"give a comma list of verdicts ({', '.join(VERDICTS)}) and/or severities "
                    f"({', '.join(SEVERITIES)}: a flagged finding of that severity or worse fails), or '{NEVER}'; "
                    f"default: {DEFAULT_FAIL_ON}")])
        if NEVER in items and len(items) > 1:
            raise InputError([Problem(f"'{NEVER}' cannot be combined with other {source} values", field=source,
                                      value=text, fix=f"use '{NEVER}' alone, or leave it out")])
        verdicts = frozenset(t for t in items if t in VERDICTS)
        sevs = [t for t in items if t in SEVERITIES]
        severity = max(sevs, key=SEVERITIES.index) if sevs else None
        spec = ",".join(dict.fromkeys(items))
        return cls(verdicts, severity, spec)

    def severity_fails(self, severity: str) -> bool:
        return self.severity is not None and SEVERITIES.index(severity) <= SEVERITIES.index(self.severity)

    def finding_fails(self, finding: Any, verdict: str) -> bool:
        """Does this finding fail the gate? A flag fails when its severity is gated, or when it is what moved the
        audit to a gated verdict (its impact equals the verdict; untrusted input caps the verdict at inconclusive)."""
        if finding.outcome != "flag":
            return False
        moved = finding.impact == verdict or (finding.impact == "untrusted_input" and verdict == "inconclusive")
        return self.severity_fails(finding.severity) or (verdict in self.verdicts and moved)


@dataclass(frozen=True)
class GateResult:
    gate: Gate
    passed: bool
    reasons: tuple[str, ...]  # why it failed (empty when it passed)
    failing: tuple[int, ...]  # indices into report.findings of findings that fail the gate

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def to_dict(self) -> dict[str, Any]:
        return {"fail_on": self.gate.spec, "passed": self.passed, "reasons": list(self.reasons),
                "failing_findings": list(self.failing)}


def evaluate(report: Report, gate: Gate) -> GateResult:
    """Apply ``gate`` to a report's verdict and findings."""
    reasons: list[str] = []
    if report.verdict in gate.verdicts:
        reasons.append(f"verdict {report.verdict!r} is in --fail-on ({gate.spec})")
    failing = tuple(i for i, f in enumerate(report.findings) if gate.finding_fails(f, report.verdict))
    by_sev = [report.findings[i] for i in failing if gate.severity_fails(report.findings[i].severity)]
    if by_sev:
        worst = min((f.severity for f in by_sev), key=SEVERITIES.index)
        reasons.append(f"{len(by_sev)} flagged finding(s) of severity {gate.severity} or worse (worst: {worst})")
    return GateResult(gate, not reasons, tuple(reasons), failing)


def apply_gate(report: Report, gate: Gate) -> tuple[Report, GateResult]:
    """The report with ``exit_code`` and ``gate`` set from the gate actually used."""
    result = evaluate(report, gate)
    return report.model_copy(update={"exit_code": result.exit_code, "gate": result.to_dict()}), result


def write_ci_files(report: Report, summary_md: str | Path | None = None,
                   junit: str | Path | None = None) -> dict[str, Path]:
    """Write the Markdown summary and/or JUnit XML for CI; return {kind: path}. Raises AuditError on I/O errors."""
    from audit.reports import render_junit, render_summary

    out: dict[str, Path] = {}
    for kind, path, render in (("summary_md", summary_md, render_summary), ("junit", junit, render_junit)):
        if path is None:
            continue
        p = Path(path)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(render(report), encoding="utf-8")
        except OSError as exc:
            raise AuditError(f"cannot write {kind.replace('_', ' ')} file {p}: {exc.strerror}") from None
        out[kind] = p
    return out


__all__ = ["Gate", "GateResult", "evaluate", "apply_gate", "write_ci_files", "DEFAULT_FAIL_ON", "VERDICTS", "SEVERITIES",
           "VALID"]
