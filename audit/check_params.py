"""Every check's parameters (the ``checks:`` block of a claim), declared apart from the checks themselves.

The claim validates ``checks:`` against :class:`CheckParams` when it is read, so a misspelt parameter is reported
with its line by ``audit validate``, once; the checks receive the validated models. This module imports only
pydantic: reading a claim does not load the checks, numpy or pandas.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_MARKERS = {
    "self-verification": ["let me verify", "double-check", "double check", "let me check", "verify"],
    "hedge": ["I think", "probably", "might", "not sure"],
}
"""The mimicry check's default disposition markers (category → phrases)."""

# Explicit first-person statements of confidence (regex → the confidence it states). Words that chain-of-thought
# uses in passing ("likely", "probably", "a certain percentage", "definitely") state no confidence and are not here;
# numeric statements ("Confidence: 80%", "I'm 90% sure") and "confidence: high/medium/low" are read besides.
_I_AM = r"I(?:'m|\u2019m| am)"
CONFIDENCE_LEXICON = {
    _I_AM + r" not (?:at all |entirely |completely |totally |very |really |quite |100% )?"
    r"(?:sure|certain|confident)": 0.3,
    _I_AM + r" (?:very |quite |rather |somewhat |a bit |a little )?(?:unsure|uncertain)": 0.3,
    _I_AM + r" (?:fairly|reasonably|pretty|somewhat|moderately|mostly) (?:sure|certain|confident)": 0.7,
    _I_AM + r" (?:very |highly |quite |really )?confident": 0.85,
    _I_AM + r" (?:absolutely |completely |totally |quite |very |really )?(?:sure|certain)": 0.9,
}


class SignificanceParams(BaseModel):
    """checks.significance"""

    model_config = ConfigDict(extra="forbid")


class TruncationParams(BaseModel):
    """checks.truncation"""

    model_config = ConfigDict(extra="forbid")
    think_open: str = Field(default="<think>", description="marker that opens a reasoning block")
    think_close: str = Field(
        default="</think>", description="marker that closes it; an open block without it is truncated"
    )
    high_rate: float = Field(
        default=0.1, ge=0, le=1, description="a truncation rate above this at the claimed budget is reported"
    )


class ScoringParams(BaseModel):
    """checks.scoring"""

    model_config = ConfigDict(extra="forbid")


class ReportedNumbersParams(BaseModel):
    """checks.reported_numbers"""

    model_config = ConfigDict(extra="forbid")
    chance_options: list[int] = Field(
        default_factory=lambda: [2, 3, 4, 5, 10],
        description="numbers of answer options K tried for the convention that credits an unanswered item at chance "
        "(1/K) when the reported rates differ from the logs' (default 2, 3, 4, 5, 10)",
    )


class OodParams(BaseModel):
    """checks.ood"""

    model_config = ConfigDict(extra="forbid")
    question: str | None = Field(
        default=None, description="holds_everywhere | find_breaks (default: perturbations.ood.question)"
    )


class ProbesParams(BaseModel):
    """checks.probes"""

    model_config = ConfigDict(extra="forbid")
    min_shared_per_class: int = Field(
        default=2,
        ge=2,
        description="the paired ID-vs-OOD test needs at least this many shared positives and negatives; "
        "with fewer, the unpaired test is used",
    )
    min_per_class: int = Field(
        default=10,
        ge=2,
        description="positives and negatives each set must have (the shared items, for the paired test) "
        "before a major or critical flag is raised; with fewer, the numbers are reported as "
        "inconclusive (minor). Default 10: see the module docstring",
    )
    max_evidence: int = Field(default=5, ge=0, description="example items shown with an OOD finding")


class EmergenceParams(BaseModel):
    """checks.emergence"""

    model_config = ConfigDict(extra="forbid")
    discontinuous: list[str] = Field(
        default_factory=list,
        description="scorings to treat as discontinuous (exact match, strict extraction, "
        "multiple-choice grade); overrides audit.scoring.KINDS",
    )
    continuous: list[str] = Field(
        default_factory=list,
        description="scorings to treat as continuous (edit similarity, token edit distance, "
        "Brier, log-likelihood); overrides audit.scoring.KINDS",
    )
    lower_is_better: list[str] = Field(
        default_factory=list,
        description="scorings where lower is better (edit distance, Brier); their "
        "delta is read with the sign flipped. The claimed scoring always "
        "takes the claim's direction",
    )
    min_changed: int = Field(
        default=10,
        ge=1,
        description="items whose discontinuous score differs between the arms (and, for a reversal, whose "
        "continuous score differs) before discontinuous_only is flagged; default 10, see the "
        "module docstring",
    )
    tokens: Literal["character", "whitespace"] = Field(
        default="character",
        description="target tokens for the per-token accuracy: characters, or whitespace-separated words",
    )
    answer: Literal["auto", "extracted", "output"] = Field(
        default="auto",
        description="what is compared with the target: the logged extraction where present (auto), always "
        "the extraction, or always the full output text",
    )
    predictor: Literal["pooled", "per_item"] = Field(
        default="pooled",
        description="predicted exact match: pooled = mean_i(p̄^L_i) with p̄ the arm's per-token accuracy "
        "(Schaeffer's model); per_item = mean_i(a_i^L_i), biased upwards by near misses",
    )
    min_agreement: float = Field(
        default=0.9,
        ge=0,
        le=1,
        description="the token exact match must agree with the discontinuous scoring on at least this "
        "share of items, else the answers carry text around them and the per-token "
        "analysis is not comparable",
    )


class MimicryParams(BaseModel):
    """checks.mimicry"""

    model_config = ConfigDict(extra="forbid")
    markers: dict[str, list[str]] = Field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_MARKERS.items()},
        description="marker category → phrases (matched case-insensitively on word boundaries; spaces match any "
        "whitespace)",
    )
    min_confidence_outputs: int = Field(
        default=30,
        ge=4,
        description="treatment outputs that must state a confidence before the confidence–correctness AUC "
        "is judged (default 30; see the module docstring)",
    )
    min_confidence_per_class: int = Field(
        default=10, ge=2, description="among them, at least this many right and this many wrong (default 10)"
    )
    tracking_auc: float = Field(
        default=0.6,
        gt=0.5,
        lt=1,
        description="stated confidence 'tracks' correctness at an AUC of at least this; the "
        "decoupling flag needs the AUC's upper CI bound below it (default 0.6)",
    )
    min_marker_outputs: int = Field(
        default=20,
        ge=1,
        description="marker-bearing treatment outputs needed before a marker rise is flagged (default 20)",
    )
    min_marker_rise: float = Field(
        default=0.05,
        ge=0,
        lt=1,
        description="materiality margin: a marker rise is flagged only when its whole interval lies "
        "above this (default 0.05, 5 points)",
    )
    auc_margin: float = Field(
        default=0.1,
        ge=0,
        lt=1,
        description="where the baseline states confidence too: the treatment's confidence AUC must be "
        "below the baseline's by more than this, its whole interval, to be flagged "
        "(default 0.1)",
    )
    prompt_phrases: list[str] = Field(
        default_factory=list,
        description="phrases the treatment's prompt itself contains (e.g. 'Let me verify'): with a declared prompt "
        "change, markers among them are the change, not mimicry (live prompts and lm-eval doc_to_text are "
        "read without this)",
    )
    confidence_lexicon: dict[str, float] = Field(
        default_factory=lambda: dict(CONFIDENCE_LEXICON),
        description="explicit statements of confidence (regex, case-insensitive, on word boundaries → the confidence "
        "it states), read when no numeric statement is there",
    )
    confident_at: float = Field(
        default=0.8, ge=0, le=1, description="a stated confidence at or above this is 'confident'"
    )
    hedged_at: float = Field(default=0.5, ge=0, le=1, description="a stated confidence at or below this is 'hedged'")
    max_evidence: int = Field(default=5, ge=0, description="example items shown with a flag")


class SettingsParams(BaseModel):
    """checks.settings"""

    model_config = ConfigDict(extra="forbid")
    ignore: list[str] = Field(
        default_factory=list, description="more setting names to leave out of the comparison (e.g. a run id)"
    )
    max_evidence: int = Field(default=10, ge=0, description="sweep-mismatch items shown as evidence")


class ExtractionParams(BaseModel):
    """checks.extraction"""

    model_config = ConfigDict(extra="forbid")
    high_rate: float = Field(
        default=0.1, ge=0, le=1, description="a no-answer rate above this at the claimed setting is reported"
    )


class ItemSetsParams(BaseModel):
    """checks.item_sets"""

    model_config = ConfigDict(extra="forbid")
    max_ids: int = Field(
        default=1000, ge=0, le=1_000_000, description="item ids named per arm (those only one arm has)"
    )


class LengthsParams(BaseModel):
    """checks.lengths"""

    model_config = ConfigDict(extra="forbid")
    min_relative_difference: float = Field(
        default=0.25,
        ge=0,
        description="report the arms' output lengths when their mean lengths (characters) differ by at "
        "least this share of the baseline's, and the paired interval excludes 0",
    )


class ResultsConfigParams(SettingsParams):
    """checks.results_config (the settings check's parameters, applied to the runs' results files)"""

    model_config = ConfigDict(extra="forbid")


class ReductionParams(BaseModel):
    """checks.reduction"""

    model_config = ConfigDict(extra="forbid")


class LogIntegrityParams(BaseModel):
    """checks.log_integrity"""

    model_config = ConfigDict(extra="forbid")


class CheckParams(BaseModel):
    """Per-check parameters, by check name; a check left out runs with its defaults."""

    model_config = ConfigDict(extra="forbid")
    significance: SignificanceParams = Field(default_factory=SignificanceParams)
    truncation: TruncationParams = Field(default_factory=TruncationParams)
    scoring: ScoringParams = Field(default_factory=ScoringParams)
    reported_numbers: ReportedNumbersParams = Field(default_factory=ReportedNumbersParams)
    ood: OodParams = Field(default_factory=OodParams)
    probes: ProbesParams = Field(default_factory=ProbesParams)
    emergence: EmergenceParams = Field(default_factory=EmergenceParams)
    mimicry: MimicryParams = Field(default_factory=MimicryParams)
    settings: SettingsParams = Field(default_factory=SettingsParams)
    extraction: ExtractionParams = Field(default_factory=ExtractionParams)
    log_integrity: LogIntegrityParams = Field(default_factory=LogIntegrityParams)
    item_sets: ItemSetsParams = Field(default_factory=ItemSetsParams)
    lengths: LengthsParams = Field(default_factory=LengthsParams)
    results_config: ResultsConfigParams = Field(default_factory=ResultsConfigParams)
    reduction: ReductionParams = Field(default_factory=ReductionParams)

    def of(self, name: str) -> BaseModel:
        return getattr(self, name)


__all__ = [
    "CheckParams",
    "DEFAULT_MARKERS",
    "SignificanceParams",
    "TruncationParams",
    "ScoringParams",
    "ReportedNumbersParams",
    "OodParams",
    "ProbesParams",
    "EmergenceParams",
    "MimicryParams",
    "SettingsParams",
    "ExtractionParams",
    "LogIntegrityParams",
    "ItemSetsParams",
    "LengthsParams",
    "ResultsConfigParams",
    "ReductionParams",
]
