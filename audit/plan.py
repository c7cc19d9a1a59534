"""plan: what an audit reads or generates, built once from a validated claim.

A :class:`Plan` lists every run (arm × variant × budget), with its logs in replay mode, and the scorings applied to
every run. Replay (:func:`audit.importers.load_records`) reads exactly the planned runs; live mode
(:func:`audit.live.run_live`) generates exactly them: the default variant at every budget, each OOD variant at the
claimed budget. The checks' parameters were validated when the claim was read (``Claim.checks``); the plan carries
them, so nothing validates them again.
"""

from __future__ import annotations

from dataclasses import dataclass

from audit.check_params import CheckParams
from audit.claim import Claim

ARMS = ("baseline", "treatment")
DEFAULT_VARIANT = "default"


@dataclass(frozen=True)
class Run:
    """One arm × variant × budget: a log pattern to read (replay), or outputs to generate (live)."""

    arm: str
    variant: str
    budget: int | None
    logs: str | None = None  # replay: the path or glob, relative to the claim
    field: str | None = None  # replay: where the claim names it, e.g. samples.baseline.512

    @property
    def label(self) -> str:
        return f"{self.arm}/{self.variant}@{self.budget}"


@dataclass(frozen=True)
class Plan:
    mode: str  # "replay" | "live" | "reported" (reported numbers only)
    runs: tuple[Run, ...]
    scorings: tuple[str, ...]  # requested scorings, the claimed one first (empty: the logs' own)
    claimed_budget: int | None
    checks: CheckParams

    def variants(self) -> list[str]:
        return list(dict.fromkeys(r.variant for r in self.runs))

    def budgets(self, variant: str = DEFAULT_VARIANT) -> list[int | None]:
        return sorted(
            {r.budget for r in self.runs if r.variant == variant}, key=lambda b: (b is None, b if b is not None else 0)
        )

    def runs_of(self, arm: str, variant: str) -> list[Run]:
        return [r for r in self.runs if r.arm == arm and r.variant == variant]


def build_plan(claim: Claim) -> Plan:
    """The plan of a validated claim (pure: reads no file)."""
    runs: list[Run] = []
    if claim.samples is not None:
        mode = "replay"
        for arm in ARMS:
            for budget, pattern in sorted(getattr(claim.samples, arm).items()):
                runs.append(Run(arm, DEFAULT_VARIANT, budget, pattern, f"samples.{arm}.{budget}"))
        for name, logs in claim.samples.variants.items():
            for arm in ARMS:
                for budget, pattern in sorted(getattr(logs, arm).items()):
                    runs.append(Run(arm, name, budget, pattern, f"samples.variants.{name}.{arm}.{budget}"))
    elif claim.live:
        mode = "live"
        ood = claim.perturbations.ood
        names = ([s.name for s in ood.sets] + list(ood.builtin)) if ood is not None else []
        for arm in ARMS:
            runs += [Run(arm, DEFAULT_VARIANT, b) for b in claim.budgets()]
            runs += [Run(arm, name, claim.claimed_budget) for name in names]
    else:
        mode = "reported"
    # Deduplicated, in plan order (a claim cannot name one run twice, but a variant list could repeat a name).
    runs = list(dict.fromkeys(runs))
    return Plan(
        mode=mode,
        runs=tuple(runs),
        scorings=tuple(claim.scorings()),
        claimed_budget=claim.claimed_budget,
        checks=claim.checks,
    )


__all__ = ["Plan", "Run", "build_plan", "ARMS", "DEFAULT_VARIANT"]
