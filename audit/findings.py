"""Findings (what a check concludes) and the report schema (report.json).

Checks return frozen :class:`Finding` objects; :func:`audit.verify.verify` collects them into a :class:`Report`, a
pydantic model (extra="forbid") so that report.json has a published, validated shape.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Outcome = Literal["pass", "flag", "inconclusive", "info"]
Severity = Literal["critical", "major", "minor", "info"]
Impact = Literal["none", "fragile", "not_reproduced", "inconclusive", "reproduced", "untrusted_input"]
"""How a finding moves the verdict. ``untrusted_input``: the inputs cannot carry a verdict (sample logs that do not
reproduce the numbers published beside them): the verdict is ``inconclusive`` at best, whatever else reproduced."""
Verdict = Literal["supported", "fragile", "not_reproduced", "inconclusive"]

VERDICT_EXPLANATION = {
    "supported": "reproduced at the claimed setting, and no perturbation is shown to remove it",
    "fragile": "reproduced at the claimed setting, but a perturbation is shown to shrink it beyond the margin or to "
               "reverse it",
    "not_reproduced": "the evidence contradicts the claim: the delta is significantly below the reported one, or "
                      "significantly opposite",
    "inconclusive": "the data cannot tell: no significant gain, and nothing refuted",
}


def clean(value: Any) -> Any:
    """Make a value JSON-safe: NaN/inf become None (the reason travels beside it), numpy scalars become Python."""
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True)
class Finding:
    """One conclusion of one check.

    ``outcome`` says what the check found (pass / flag / inconclusive / info); ``severity`` how much a flag matters;
    ``impact`` how it moves the verdict. ``rows`` is the table of numbers behind it (each row a dict, CIs included),
    ``evidence`` the few most telling items, ``provenance`` how to recompute it (test, n, resamples, seed, version).
    """

    check: str
    code: str
    outcome: Outcome
    title: str
    detail: str = ""
    severity: Severity = "info"
    impact: Impact = "none"
    statistic: dict[str, Any] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return clean({
            "check": self.check, "code": self.code, "outcome": self.outcome, "severity": self.severity,
            "impact": self.impact, "title": self.title, "detail": self.detail, "statistic": self.statistic,
            "rows": self.rows, "evidence": self.evidence, "provenance": self.provenance,
        })


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FindingModel(_Model):
    check: str
    code: str
    outcome: Outcome
    severity: Severity
    impact: Impact
    title: str
    detail: str
    statistic: dict[str, Any]
    rows: list[dict[str, Any]]
    evidence: list[dict[str, Any]]
    provenance: dict[str, Any]


class CellModel(_Model):
    """The measured delta in one cell of the plan (variant × budget × scoring)."""

    variant: str
    budget: int | None
    scoring: str
    n: int
    baseline: float | None
    treatment: float | None
    delta: float | None
    ci_low: float | None
    ci_high: float | None
    ci_method: str
    p_value: float | None
    test: str
    claimed: bool


class SourceModel(_Model):
    arm: str
    budget: int | None
    path: str
    sha256: str
    rows: int


class Report(_Model):
    """report.json: every finding and every number with its provenance."""

    schema_version: Literal[1] = 1
    audit_version: str
    created: str
    command: str
    claim_file: str | None
    claim: dict[str, Any]
    verdict: Verdict
    verdict_reason: str
    exit_code: int
    options: dict[str, Any]
    environment: dict[str, Any]
    cells: list[CellModel]
    arms: dict[str, Any]
    run: dict[str, Any] = {}
    sources: list[SourceModel]
    findings: list[FindingModel]
    checks_run: list[str]
    # The CI gate that set exit_code (audit.gate): fail_on, passed, reasons, failing_findings. None: the default.
    gate: dict[str, Any] | None = None
