"""What every check shares: the context it runs in (the claim, the records, the audit's options) and the
formatting of numbers in findings.

The measured cells live in `audit.measure`, the rule that decides whether a perturbation breaks the claim in
`audit.breaks`; `Context` hands both to the checks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from audit import breaks
from audit.breaks import Judgement, Perturbation
from audit.claim import Claim
from audit.intervals import excludes_zero, fmt_ci, fmt_delta
from audit.measure import BOOTSTRAP_MAX_DRAWS, MeasuredCell, CellKey, Cells, measure, seeded_rng
from audit.records import DEFAULT_VARIANT, Paired, Records

if TYPE_CHECKING:
    from pydantic import BaseModel

    from audit.findings import Finding
    from audit.importers.probes import ProbeSets

__all__ = [
    "BOOTSTRAP_MAX_DRAWS",
    "MeasuredCell",
    "CheckSpec",
    "Context",
    "Judgement",
    "Perturbation",
    "excludes_zero",
    "fmt_ci",
    "fmt_delta",
    "item_evidence",
    "measure",
]

# evaluate modules whose score is an error rate (lower is better).
LOWER_IS_BETTER_MODULES = frozenset({"wer", "cer", "ter", "mer", "wil", "perplexity"})


@dataclass(frozen=True)
class CheckSpec:
    """One check as the registry holds it; each check module declares its own (``SPEC``, last in the module).

    ``run`` is a pure function ``(Context, params) -> list[Finding]``; ``params`` its parameter model (in
    :mod:`audit.check_params`, so reading a claim does not load the checks); ``needs_samples``: it reads per-item
    records (``ctx.samples``), so a claim with reported numbers only skips it."""

    name: str
    run: Callable[[Context, Any], list[Finding]]
    params: type[BaseModel]
    needs_samples: bool
    description: str


@dataclass(frozen=True)
class Context:
    claim: Claim
    records: Records | None
    seed: int
    resamples: int
    level: float
    alpha: float
    power: float
    claimed_budget: int | None
    claimed_scoring: str | None
    probe_sets: ProbeSets | None = None  # the claim's probe files, read by audit.importers.probes
    # A sequential audit: the seed of the items' draw order. Every cell's and every perturbation's decision is then the
    # anytime-valid inference on the items in that order (`audit.measure.measure`, `audit.breaks`).
    draw_seed: int | None = None
    _memo: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def samples(self) -> Records:
        """The per-item records, for a check whose spec says ``needs_samples`` (the audit runs it only when there
        are records)."""
        if self.records is None:
            raise RuntimeError("this check needs per-item samples; the registry runs it only when there are some")
        return self.records

    @property
    def cells(self) -> Cells:
        """The audit's measured cells (`audit.measure.Cells`), each measured once."""
        if "cells" not in self._memo:
            self._memo["cells"] = Cells(
                self.records, self.seed, self.resamples, self.level, self.claim.options.score_bounds, self.draw_seed
            )
        return self._memo["cells"]

    @property
    def score_bounds(self) -> tuple[float, float]:
        """The range every score lies in: ``options.score_bounds`` when the claim declares it, else [0, 1] widened
        to every score in the records (all scorings)."""
        return self.cells.score_bounds

    @property
    def sign(self) -> int:
        """+1 when the claim is that treatment scores higher, −1 when lower is better."""
        return 1 if self.claim.claim.direction == "greater" else -1

    def polarity(self, scoring: str | None = None) -> int:
        """+1 when a higher score is better under ``scoring``, −1 when lower is better.

        The claimed scoring (and any lm-eval filter of the claimed metric) takes the claim's ``direction``.
        ``perturbations.higher_is_better`` overrides any scoring. Built-in scorers, claim-defined scorers (1 =
        correct) and evaluate modules are known (error-rate modules such as wer/cer/ter are lower-is-better). A score
        carried in the logs under any other name is read in the claimed metric's direction.
        """
        scoring = scoring or self.claimed_scoring
        override = self.claim.perturbations.higher_is_better.get(scoring or "")
        if override is not None:
            return 1 if override else -1
        if scoring is None or scoring == self.claimed_scoring:
            return self.sign
        from audit import scoring as scorers

        if scoring in scorers.BUILTIN:
            return 1 if scorers.BUILTIN[scoring].higher_is_better else -1
        if scoring in self.claim.scorers:
            return 1
        if scoring.startswith(scorers.EVALUATE_PREFIX):
            module = scoring[len(scorers.EVALUATE_PREFIX) :].strip().split("/")[-1].lower()
            return -1 if module in LOWER_IS_BETTER_MODULES else 1
        return self.sign

    def gain(self, delta: float, scoring: str | None = None) -> float:
        """``delta`` oriented so that positive means the treatment is better under ``scoring``."""
        return self.polarity(scoring) * delta

    def rng(self, salt: str) -> np.random.Generator:
        """A generator seeded from the audit seed and a stable salt, so results do not depend on check order."""
        return seeded_rng(self.seed, salt)

    def provenance(self, **extra: Any) -> dict[str, Any]:
        from audit import __version__

        return {
            "seed": self.seed,
            "resamples": self.resamples,
            "level": self.level,
            "alpha": self.alpha,
            "audit_version": __version__,
            **extra,
        }

    def reported_delta(self) -> float | None:
        return self.claim.claim.reported.delta_or_difference()

    def reported_tolerance(self) -> float:
        """How far below the reported delta a measured one may lie before it is "smaller than reported": half a unit
        in the last reported digit (:meth:`audit.claim.Reported.delta_tolerance`), plus ``options.margin`` when the
        claim sets one (a shortfall within the materiality margin is not material)."""
        tol = self.claim.claim.reported.delta_tolerance(*self.written_places())
        if self.claim.options.margin is not None:
            tol += float(self.claim.options.margin)
        return tol

    def written_places(self) -> tuple[int | None, int | None]:
        """The decimals the reported numbers were written to in the claim file (table, CI): ``audit.claim``."""
        if "places" not in self._memo:
            from audit.claim import written_places

            self._memo["places"] = written_places(self.claim)
        return self._memo["places"]

    def degenerate(self) -> dict:
        """scoring → :class:`audit.degenerate.Degenerate`: scorings that give every item of both arms one score."""
        if "degenerate" not in self._memo:
            from audit.degenerate import degenerate_scorings

            self._memo["degenerate"] = degenerate_scorings(self.records.table) if self.records is not None else {}
        return self._memo["degenerate"]

    @property
    def margin(self) -> float:
        """The materiality margin (metric units): `audit.breaks.margin_and_source`. NaN when it cannot be set."""
        return breaks.margin_and_source(self)[0]

    def margin_and_source(self) -> tuple[float, str]:
        return breaks.margin_and_source(self)

    def null_margin(self) -> tuple[float, str]:
        return breaks.null_margin(self)

    def perturbations(self) -> list[Perturbation]:
        """Every perturbation of the claimed setting with its break test (`audit.breaks.perturbations`), once."""
        if "perturbations" not in self._memo:
            self._memo["perturbations"] = breaks.perturbations(self)
        return self._memo["perturbations"]

    def judge(self, pt: Perturbation) -> Judgement:
        return breaks.judge(self, pt)

    def change_text(self, pt: Perturbation) -> str:
        return breaks.change_text(self, pt)

    def perturbation_stat(self, pt: Perturbation) -> dict[str, Any]:
        return breaks.perturbation_stat(pt)

    def cell(
        self, budget: int | None, scoring: str | None = None, variant: str = DEFAULT_VARIANT
    ) -> MeasuredCell | None:
        """The measured cell, computed once per audit; None when the records have no such cell."""
        scoring = scoring or self.claimed_scoring
        if scoring is None:
            return None
        return self.cells.get(CellKey(variant, budget, scoring))


def item_evidence(p: Paired, mask: np.ndarray, k: int = 5, extra: dict[str, np.ndarray] | None = None) -> list[dict]:
    """The first ``k`` items selected by ``mask``, with both arms' outputs (for finding cards)."""
    idx = np.flatnonzero(mask)[:k]
    out = []
    f = p.frame
    for i in idx:
        row = {
            "item_id": str(f["item_id"].iat[i]),
            "budget": p.budget,
            "scoring": p.scoring,
            "baseline_score": float(f["score_b"].iat[i]),
            "treatment_score": float(f["score_t"].iat[i]),
            "baseline_output": _clip(f["text_b"].iat[i]),
            "treatment_output": _clip(f["text_t"].iat[i]),
        }
        for name, arr in (extra or {}).items():
            row[name] = arr[i]
        out.append(row)
    return out


def _clip(s: Any, n: int = 600) -> str | None:
    if s is None or (isinstance(s, float) and math.isnan(s)):
        return None
    s = str(s)
    return s if len(s) <= n else s[:n] + " …"
