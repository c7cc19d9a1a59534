"""The contract between the stages: what a check concludes (:class:`Finding`) and report.json (:class:`Report`).

Every type the report, the summary, the JUnit file and ``audit compare`` read is defined here, once:

* the enums (:class:`Severity`, :class:`Outcome`, :class:`Impact`, :class:`Verdict`), each with its order;
* a finding's :class:`Subject` (check, code and the cell or setting it is about), by which ``audit compare`` matches
  findings across reports — never by title;
* the typed exhibits a check hands to the report: :class:`ForestEstimate` (a delta and its interval, drawn in the forest
  plot) and :class:`RateTable` (truncation and no-answer rates);
* :class:`Report`, whose derived views (claim vs measured, forest rows, rate tables, gate) are computed once in
  :func:`audit.verify.verify` and only read by the renderers.

``audit schema --report`` prints the Report's JSON Schema; report.json validates against it.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from audit.claim import Claim


class _Ranked(StrEnum):
    """A string enum whose declaration order is its rank (0 = first = worst / most telling)."""

    @property
    def rank(self) -> int:
        return list(type(self)).index(self)


class Severity(_Ranked):
    """How much a flag matters, worst first."""

    critical = "critical"
    major = "major"
    minor = "minor"
    info = "info"


class Outcome(_Ranked):
    """What a check found, in the order the report lists findings."""

    flag = "flag"
    inconclusive = "inconclusive"
    passed = "pass"
    info = "info"


class Impact(StrEnum):
    """How a finding moves the verdict. ``untrusted_input``: the inputs cannot carry a verdict (sample logs that do
    not reproduce the numbers published beside them): the verdict is ``inconclusive`` at best."""

    none = "none"
    fragile = "fragile"
    not_reproduced = "not_reproduced"
    inconclusive = "inconclusive"
    reproduced = "reproduced"
    untrusted_input = "untrusted_input"


class Verdict(StrEnum):
    supported = "supported"
    fragile = "fragile"
    not_reproduced = "not_reproduced"
    inconclusive = "inconclusive"


VERDICT_EXPLANATION = {
    Verdict.supported: "reproduced at the claimed setting, and no perturbation is shown to remove it",
    Verdict.fragile: "reproduced at the claimed setting, but a perturbation is shown to shrink it beyond the margin "
    "or to reverse it",
    Verdict.not_reproduced: "the evidence contradicts the claim: the delta is significantly below the reported one, "
    "or significantly opposite",
    Verdict.inconclusive: "the data cannot tell: no significant gain, and nothing refuted",
}


def clean(value: Any) -> Any:
    """Make a value JSON-safe: NaN/inf become None (the reason travels beside it), numpy scalars become Python."""
    if isinstance(value, BaseModel):
        return value
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


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Clean(_Model):
    """A model whose numbers may arrive as numpy scalars or NaN (cleaned to Python / None on construction)."""

    @model_validator(mode="before")
    @classmethod
    def _clean(cls, data: Any) -> Any:
        return clean(data) if isinstance(data, dict) else data


# The statistic keys that say which cell or setting a finding is about (see Subject).
SUBJECT_KEYS = ("variant", "budget", "scoring", "arm", "field")


class Subject(_Model):
    """What a finding is about: its check and code, and the cell (variant × budget × scoring), arm or setting
    (``field``) when it concerns one. Two reports' findings with equal subjects are the same finding."""

    check: str
    code: str
    variant: str | None = None
    budget: int | None = None
    scoring: str | None = None
    arm: str | None = None
    field: str | None = None

    def key(self) -> str:
        where = " ".join(f"{k}={getattr(self, k)}" for k in SUBJECT_KEYS if getattr(self, k) is not None)
        return f"{self.check}.{self.code}" + (f" [{where}]" if where else "")


class HeadlineInterval(_Clean):
    """A finding's headline interval (its statistic's ``ci_low`` / ``ci_high``), at the report's level."""

    low: float | None = None
    high: float | None = None


class Headline(_Clean):
    """The numbers of a finding that two audits of one claim are compared on (`audit.compare`), read once from the
    check's statistic when the finding is made (its ``delta``, ``p_value``, ``rate_baseline``, ``rate_treatment``,
    ``change`` and ``mde`` keys, the names every check uses for these numbers)."""

    delta: float | None = None
    p_value: float | None = None
    rate_baseline: float | None = None
    rate_treatment: float | None = None
    change: float | None = None
    mde: float | None = None

    @classmethod
    def of(cls, statistic: dict[str, Any]) -> "Headline":
        st = clean(statistic)
        return cls(
            **{k: v for k in cls.model_fields if isinstance(v := st.get(k), (int, float)) and not isinstance(v, bool)}
        )

    def numbers(self) -> dict[str, float | None]:
        return {k: getattr(self, k) for k in type(self).model_fields}


class EstimateKind(StrEnum):
    """Which delta a :class:`ForestEstimate` is."""

    cell = "cell"  # a cell of the plan (variant × budget × scoring), all items
    untruncated = "untruncated"  # the claimed cell, on the items neither arm truncated
    reported_counts = "reported_counts"  # recomputed from the reported k/n (no samples)


class ForestEstimate(_Clean):
    """A treatment − baseline delta with its interval, as the forest plot draws it."""

    kind: EstimateKind
    label: str
    variant: str | None = None
    budget: int | None = None
    scoring: str | None = None
    n: int | None = None
    delta: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    ci_method: str | None = None
    p_value: float | None = None
    test: str | None = None
    claimed: bool = False


class TableKind(StrEnum):
    truncation = "truncation"  # outputs that hit the generation cap, per arm × budget
    no_answer = "no_answer"  # outputs with no extractable answer, per scoring × arm × budget


class RateRow(_Clean):
    """One rate k/n with its Wilson interval: ``count`` of ``known`` outputs (``items`` in all)."""

    arm: str
    budget: int | None = None
    scoring: str | None = None
    count: int
    known: int
    items: int
    rate: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    ci_method: str | None = None
    evidence: str | None = None
    reason: str | None = None


class RateTable(_Model):
    kind: TableKind
    rows: list[RateRow]

    @classmethod
    def of(cls, kind: TableKind, rows: list[dict[str, Any]], count: str) -> "RateTable":
        """From a check's own rate rows, whose ``count`` key holds k."""
        fields = set(RateRow.model_fields)
        return cls(
            kind=kind, rows=[RateRow(count=r[count], **{k: v for k, v in r.items() if k in fields}) for r in rows]
        )


class Finding(_Clean):
    """One conclusion of one check.

    ``outcome`` says what the check found (pass / flag / inconclusive / info); ``severity`` how much a flag matters;
    ``impact`` how it moves the verdict. ``statistic`` holds the check's numbers (its keys are the check's own and
    documented there; ``variant``/``budget``/``scoring``/``arm``/``field`` name the subject), ``rows`` the table behind
    it, ``evidence`` the few most telling items, ``provenance`` how to recompute it. ``estimates`` and ``table`` are
    the typed exhibits the report draws. The first four fields may be given positionally.
    """

    check: str
    code: str
    outcome: Outcome
    title: str
    detail: str = ""
    severity: Severity = Severity.info
    impact: Impact = Impact.none
    subject: Subject
    statistic: dict[str, Any] = Field(default_factory=dict)
    rows: list[dict[str, Any]] = Field(default_factory=list)
    evidence: list[dict[str, Any]] = Field(default_factory=list)
    provenance: dict[str, Any] = Field(default_factory=dict)
    estimates: list[ForestEstimate] = Field(default_factory=list)
    table: RateTable | None = None
    # The headline interval and test, read once from the statistic (then provenance, then rows) at construction.
    interval: HeadlineInterval | None = None
    test: str | None = None
    headline: Headline = Field(default_factory=Headline)
    # The headline test is the statistic's own "test" entry (the page then does not show it twice).
    test_in_statistic: bool = False

    def __init__(self, *args: Any, **data: Any) -> None:
        if len(args) > 4:
            raise TypeError("Finding takes at most 4 positional arguments (check, code, outcome, title)")
        data.update(zip(("check", "code", "outcome", "title"), args))
        super().__init__(**data)

    @model_validator(mode="before")
    @classmethod
    def _subject(cls, data: Any) -> Any:
        # The subject is read once, here, from the statistic's identifying keys when the check does not give it.
        if isinstance(data, dict) and data.get("subject") is None and "check" in data and "code" in data:
            st = data.get("statistic") or {}
            ids = {k: st.get(k) for k in SUBJECT_KEYS if st.get(k) is not None}
            if "budget" in ids and not isinstance(ids["budget"], int):
                ids.pop("budget")
            data = {
                **data,
                "subject": {
                    "check": data["check"],
                    "code": data["code"],
                    **{k: str(v) if k != "budget" else v for k, v in ids.items()},
                },
            }
        if isinstance(data, dict) and "check" in data and "interval" not in data:
            st = clean(data.get("statistic") or {})
            if st.get("ci_low") is not None or st.get("ci_high") is not None:
                data = {**data, "interval": {"low": st.get("ci_low"), "high": st.get("ci_high")}}
        if isinstance(data, dict) and "check" in data and "test" not in data:
            data = {**data, "test": _headline_test(data)}
        if isinstance(data, dict) and "check" in data and "headline" not in data:
            st = data.get("statistic") or {}
            data = {
                **data,
                "headline": Headline.of(st),
                "test_in_statistic": bool(data.get("test")) and st.get("test") == data.get("test"),
            }
        return data

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def _headline_test(data: dict[str, Any]) -> str | None:
    for src in (data.get("statistic") or {}, data.get("provenance") or {}):
        for k in ("test", "asymmetry_test"):
            if src.get(k):
                return str(src[k])
    for r in data.get("rows") or []:
        if isinstance(r, dict) and r.get("test"):
            return str(r["test"])
    return None


class Cell(_Clean):
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


class Source(_Model):
    """One input file (or live run) that contributed rows, with its sha256."""

    arm: str
    budget: int | None
    path: str
    sha256: str
    rows: int


class Versus(_Clean):
    """One row of the claim-vs-measured table: baseline, treatment or delta, as reported and as measured."""

    what: str
    reported: float | None = None
    reported_counts: str | None = None
    reported_ci: tuple[float, float] | None = None
    reported_ci_how: str | None = None
    reported_note: str | None = None
    reported_p: float | None = None
    reported_test: str | None = None
    measured: float | None = None
    measured_counts: str | None = None
    measured_ci: tuple[float, float] | None = None
    measured_ci_how: str | None = None
    measured_p: float | None = None
    measured_test: str | None = None


class ClaimVsMeasured(_Model):
    """The claim-vs-measured table: the arms' rates and the delta, as reported and as measured (``where``)."""

    baseline: Versus
    treatment: Versus
    delta: Versus
    where: str
    level: float

    @property
    def rows(self) -> list[Versus]:
        return [self.baseline, self.treatment, self.delta]


class GateRecord(_Model):
    """The CI gate that set ``exit_code`` (audit.gate)."""

    fail_on: str
    passed: bool
    verdict_fails: bool  # the verdict itself is in fail_on
    reasons: list[str]
    failing_findings: list[int]


class RunOptions(_Clean):
    """The options an audit ran with: the run's seed and resamples, the claim's statistical options, the claimed
    cell, and the materiality margin with where it came from."""

    seed: int
    resamples: int
    level: float
    alpha: float
    power: float
    claimed_budget: int | None = None
    claimed_scoring: str | None = None
    direction: Literal["greater", "less"] = "greater"
    margin: float | None = None
    margin_source: str = ""


class Environment(_Model):
    """Where the audit ran: Python, the platform, and the versions of the numerical packages found (absent: not
    installed)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    python: str
    platform: str
    numpy: str | None = None
    scipy: str | None = None
    statsmodels: str | None = None
    pandas: str | None = None
    pydantic: str | None = None
    lm_eval: str | None = None

    def items(self) -> list[tuple[str, str]]:
        """The entries that are set, in order (as the page's footer lists them)."""
        return [(k, v) for k, v in self.model_dump().items() if v is not None]


class SequentialDecision(_Clean):
    """One decision of a sequential audit at its last look: the claimed gain, whether it is smaller than reported,
    or one perturbation's change of the gain. ``low``/``high``: the anytime-valid interval the state rests on (the
    gain, or the change); ``fixed_low``/``fixed_high``: the fixed-n interval on the same items, shown beside, not the
    decision."""

    name: str
    state: Literal["shown", "ruled out", "open"]
    why: str
    estimate: float | None = None
    low: float | None = None
    high: float | None = None
    fixed_low: float | None = None
    fixed_high: float | None = None
    fixed_method: str | None = None
    # This decision alone settles the verdict (the claim is shown reversed or smaller than reported).
    settles_verdict: bool = False


class SequentialLook(_Clean):
    """One look of a sequential audit: the items seen so far and the decisions still open there."""

    items: int
    open: list[str] = Field(default_factory=list)


class SequentialRun(_Clean):
    """A sequential audit (`audit.stopping`): where it stopped, why, and each decision's anytime-valid interval.

    ``mode`` "live": the verdict rests on the items generated up to ``stopped_at``; "replay": the verdict rests on
    every logged item, and ``stopped_at`` says after how many a live re-run in the same draw order would have
    stopped."""

    mode: Literal["live", "replay"]
    batch: int
    seed: int
    items_total: int
    n_max: int
    stopped_at: int
    stopped_early: bool  # fewer items than the task has: settled early, or cut at n_max
    settled: bool  # every decision the verdict needs was settled at the last look (else n_max or the items ran out)
    reason: str
    decisions: list[SequentialDecision] = Field(default_factory=list)
    looks: list[SequentialLook] = Field(default_factory=list)
    generations: dict[str, Any] = Field(default_factory=dict)


class Report(_Model):
    """report.json: every finding and every number with its provenance, and the views the renderers show."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="audit report")

    schema_version: int = Field(default=2, ge=2, le=2)
    audit_version: str
    created: str
    command: str
    claim_file: str | None
    claim: Claim
    verdict: Verdict
    verdict_reason: str
    exit_code: int
    gate: GateRecord
    options: RunOptions
    environment: Environment
    cells: list[Cell]
    arms: dict[str, Any]
    run: dict[str, Any] = Field(default_factory=dict)
    sources: list[Source]
    findings: list[Finding]
    checks_run: list[str]
    perturbations_tested: list[str] = Field(
        default_factory=list, description="perturbation kinds tried against the claimed setting (budget, scoring, OOD)"
    )
    perturbations_not_tested: list[str] = Field(
        default_factory=list, description="perturbation kinds not tried, each with why; a supported verdict says so"
    )
    claim_vs_measured: ClaimVsMeasured
    forest: list[ForestEstimate]
    rate_tables: dict[TableKind, list[RateRow]] = Field(default_factory=dict)
    sequential: SequentialRun | None = Field(
        None, description="a sequential audit: where it stopped, why, and each decision's anytime-valid interval"
    )

    @property
    def title(self) -> str:
        return self.claim.claim.title

    def claim_dict(self) -> dict[str, Any]:
        """The audited claim as it reads in a claim file (JSON types)."""
        return self.claim.model_dump(mode="json", exclude={"path"})

    def dump_json(self) -> str:
        return self.model_dump_json(indent=2, exclude={"claim": {"path"}})


def report_schema() -> dict[str, Any]:
    """The JSON Schema of report.json (``audit schema --report``)."""
    return Report.model_json_schema(mode="serialization")
