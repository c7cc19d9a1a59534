"""The CI gate: which verdicts and which flagged findings fail a build.

``--fail-on`` takes a comma list of verdicts and/or severities. A verdict fails the gate when the audit reaches it;
a severity fails the gate when any *flagged* finding (outcome ``flag``) has that severity **or a worse one**
(``major`` also fails on ``critical``). ``none`` is a gate that never fails (report-only runs). The default,
``fragile,not_reproduced,inconclusive``, fails on every verdict but ``supported`` — the exit codes of DESIGN.md.

The gate is recorded in the report (``Report.gate``) and decides ``Report.exit_code``: 0 passes, 1 fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from audit.errors import InputError, Problem
from audit.findings import Finding, GateRecord, Impact, Outcome, Severity, Verdict

VERDICTS = tuple(v.value for v in Verdict)
SEVERITIES = tuple(s.value for s in Severity)  # worst first
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
            raise InputError(
                [
                    Problem(
                        f"invalid {source} value: {shown}",
                        field=source,
                        value=text,
                        fix=f"give a comma list of verdicts ({', '.join(VERDICTS)}) and/or severities "
                        f"({', '.join(SEVERITIES)}: a flagged finding of that severity or worse fails), or '{NEVER}'; "
                        f"default: {DEFAULT_FAIL_ON}",
                    )
                ]
            )
        if NEVER in items and len(items) > 1:
            raise InputError(
                [
                    Problem(
                        f"'{NEVER}' cannot be combined with other {source} values",
                        field=source,
                        value=text,
                        fix=f"use '{NEVER}' alone, or leave it out",
                    )
                ]
            )
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
        if finding.outcome != Outcome.flag:
            return False
        moved = finding.impact == verdict or (
            finding.impact == Impact.untrusted_input and verdict == Verdict.inconclusive
        )
        return self.severity_fails(finding.severity) or (verdict in self.verdicts and moved)


def evaluate(findings: Sequence[Finding], verdict: str, gate: Gate) -> GateRecord:
    """Apply ``gate`` to a verdict and its findings: passed, why not, and which findings (indices) fail it."""
    reasons: list[str] = []
    if verdict in gate.verdicts:
        reasons.append(f"verdict {str(verdict)!r} is in --fail-on ({gate.spec})")
    failing = [i for i, f in enumerate(findings) if gate.finding_fails(f, verdict)]
    by_sev = [findings[i] for i in failing if gate.severity_fails(findings[i].severity)]
    if by_sev:
        worst = min((Severity(f.severity) for f in by_sev), key=lambda s: s.rank)
        reasons.append(f"{len(by_sev)} flagged finding(s) of severity {gate.severity} or worse (worst: {worst})")
    return GateRecord(
        fail_on=gate.spec,
        passed=not reasons,
        verdict_fails=verdict in gate.verdicts,
        reasons=reasons,
        failing_findings=failing,
    )


def exit_code(record: GateRecord) -> int:
    """0 when the gate passed, 1 when it failed (DESIGN.md's exit codes)."""
    return 0 if record.passed else 1


__all__ = ["Gate", "evaluate", "exit_code", "DEFAULT_FAIL_ON", "VERDICTS", "SEVERITIES", "VALID"]
