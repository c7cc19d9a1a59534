"""Does a perturbation break the claim? The audit-wide rule, in one place beside `audit.verify.decide`.

A perturbation is the claimed setting changed one way: a larger budget, another scoring, an out-of-distribution
prompt variant. For each, the change of the gain (perturbed − claimed, both read in the claimed scoring's polarity)
is tested; the claim is *broken* when the change is shown to be harmful and is material:

1. H0 "change ≥ 0" is rejected one-sided at α/2 after Holm's adjustment over every perturbation of the audit (one
   family: budgets, scorings and variants together);
2. the estimated change lies beyond −margin (`margin_and_source`: ``options.margin``, else half the larger of the
   reported and measured gain);
3. the perturbed gain is not shown to stay at or above the reported one (``above_claim``: then the claim still holds
   there, whatever the change).

A scoring on another scale (a continuous metric beside a 0/1 one) has no comparable change: it breaks the claim only
when its own gain is significantly reversed, in its own polarity. `judge` turns each perturbation into a
`Judgement` (finding code, outcome, severity, impact and sentence) that the budget, scoring and OOD checks write.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import numpy as np

from audit import stats
from audit.claim import Claim
from audit.findings import Impact, Outcome, Severity
from audit.intervals import excludes_zero, fmt_ci, fmt_delta
from audit.measure import MeasuredCell
from audit.records import DEFAULT_VARIANT, Records


class Audit(Protocol):
    """What the rule reads of the audit (``audit.checks._common.Context`` provides it)."""

    @property
    def claim(self) -> Claim: ...

    @property
    def records(self) -> Records | None: ...

    @property
    def level(self) -> float: ...

    @property
    def alpha(self) -> float: ...

    @property
    def claimed_budget(self) -> int | None: ...

    @property
    def claimed_scoring(self) -> str | None: ...

    @property
    def sign(self) -> int: ...

    @property
    def score_bounds(self) -> tuple[float, float]: ...

    @property
    def draw_seed(self) -> int | None: ...

    def polarity(self, scoring: str | None = None) -> int: ...

    def cell(
        self, budget: int | None, scoring: str | None = None, variant: str = DEFAULT_VARIANT
    ) -> MeasuredCell | None: ...

    def degenerate(self) -> dict: ...

    def reported_delta(self) -> float | None: ...

    def reported_tolerance(self) -> float: ...

    def written_places(self) -> tuple[int | None, int | None]: ...


@dataclass(frozen=True)
class Perturbation:
    """One perturbation of the claimed setting and the test that decides whether it breaks the claim (the rule in
    the module docstring). ``change``: the inference on the change of the gain (per item on shared items: paired;
    on different item sets: Welch); None when the scales are not comparable (then ``test`` is "reversal")."""

    kind: str  # "budget" | "scoring" | "variant"
    label: str
    cell: MeasuredCell
    change: stats.PairedInference | None
    test: str  # "harmful change" | "reversal"
    p_raw: float
    p_holm: float
    family: int
    breaks: bool
    margin: float
    shared: int
    missing: tuple = ()
    # Every shared item's gain changed by exactly this much (no sampling variance: e.g. identical outputs).
    exact_change: float | None = None
    material: bool = True  # the estimated change is beyond −margin (always True for the reversal test)
    # The perturbed gain is shown to stay at or above the claimed one (H0 "gain < reported − tolerance" rejected at
    # α/2): whatever the change, the claim still holds there, so it cannot break it.
    above_claim: bool = False


@dataclass(frozen=True)
class GainReading:
    """The verdict's decisions on the claimed gain, read from one delta (`read_gain`)."""

    shown: bool  # the gain is shown in the claimed direction
    reversed: bool  # the delta is shown to go the other way
    below_reported: bool  # shown smaller than the reported gain less its tolerance (one-sided, α/2)
    null: float  # reported − sign·tolerance; NaN without a reported gain in the claimed direction
    tolerance: float
    p_below: float  # the p of H0 "the true delta is at least ``null``"; NaN without one
    disagree: bool  # the test's p and the interval disagree at α (the interval decides)


def read_gain(audit: Audit, effect: float, ci: Any, p: float, p_vs: Any, reported: float | None) -> GainReading:
    """The claimed gain's decisions, one rule for the significance check and a sequential audit's stop rule:
    *shown* / *reversed* when the interval excludes 0 on that side (it inverts the test; without an interval, the
    test's ``p`` at α); *below reported* when H0 "the true delta is at least the reported one less its tolerance" is
    rejected one-sided at α/2 (``p_vs(null, alternative)``: the p at another null). ``effect``: the delta in the
    claimed direction (sign × delta)."""
    if ci.ok:
        excl = excludes_zero(ci)
        shown, rev = excl and effect > 0, excl and effect < 0
    else:
        shown, rev = p < audit.alpha and effect > 0, p < audit.alpha and effect < 0
    disagree = ci.ok and (p < audit.alpha) != excludes_zero(ci)
    null = p_below = math.nan
    tol = audit.reported_tolerance()
    if reported is not None and audit.sign * reported > 0:
        # A rounded "+0.10" is not refuted by a precisely measured +0.096: the tolerance is half a unit of the last
        # reported digit (plus options.margin when set).
        null = reported - audit.sign * tol
        p_below = p_vs(null, "less" if audit.sign > 0 else "greater")
    below = math.isfinite(p_below) and p_below < audit.alpha / 2.0
    return GainReading(shown, rev, below, null, tol, p_below, disagree)


class Judgement(NamedTuple):
    """What one perturbation means for the claim, as a finding writes it."""

    code: str
    outcome: Outcome
    severity: Severity
    impact: Impact
    sentence: str


def margin_and_source(audit: Audit) -> tuple[float, str]:
    """``options.margin``, else half the larger of the reported and the measured gain at the claimed setting
    (each in the claimed direction; a gain understated in the paper must not make its own perturbations look
    material), else half of whichever exists. NaN when none does."""
    if audit.claim.options.margin is not None:
        return float(audit.claim.options.margin), "options.margin"
    rep = audit.reported_delta()
    c = audit.cell(audit.claimed_budget) if audit.records is not None else None
    meas = c.delta.value if c is not None and math.isfinite(c.delta.value) else None
    gains = {
        "reported": audit.sign * rep if rep is not None else None,
        "measured": audit.sign * meas if meas is not None else None,
    }
    positive = {k: v for k, v in gains.items() if v is not None and v > 0}
    if positive:
        which = max(positive, key=lambda k: positive[k])
        if len(positive) == 2:
            return positive[which] / 2.0, f"half the larger of the reported and measured gain (the {which})"
        return positive[which] / 2.0, (
            "half the reported delta" if which == "reported" else "half the measured delta at the claimed setting"
        )
    if rep is not None and rep != 0:
        return abs(rep) / 2.0, "half the reported delta"
    if meas is not None and meas != 0:
        return abs(meas) / 2.0, "half the measured delta at the claimed setting"
    return math.nan, "no margin: no options.margin, reported delta or measured delta"


def null_margin(audit: Audit) -> tuple[float, str]:
    """The margin a "shown to be near zero" (TOST) statement may use: one fixed before looking at the measured
    delta (``options.margin``, else half the reported delta). NaN when there is none."""
    if audit.claim.options.margin is not None:
        return float(audit.claim.options.margin), "options.margin"
    rep = audit.reported_delta()
    if rep is not None and rep != 0:
        return abs(rep) / 2.0, "half the reported delta"
    return math.nan, "no margin fixed in advance"


def perturbations(audit: Audit) -> list[Perturbation]:
    """Every perturbation of the claimed setting in this audit, each with its break test, Holm-adjusted over the
    whole family (budgets larger than the claimed one, other scorings, OOD prompt variants)."""
    rec, cb, sc = audit.records, audit.claimed_budget, audit.claimed_scoring
    if rec is None or sc is None or audit.cell(cb) is None:
        return []
    cands: list[tuple[str, str, int | None, str, str]] = [
        ("budget", f"{b} tokens", b, sc, DEFAULT_VARIANT) for b in rec.budgets() if cb is not None and b > cb
    ]
    # A degenerate scoring (one score for every item of both arms) measures nothing: never a perturbation.
    cands += [
        ("scoring", f"scoring {s!r}", cb, s, DEFAULT_VARIANT)
        for s in rec.scorings()
        if s != sc and s not in audit.degenerate()
    ]
    cands += [("variant", f"prompt variant {v!r}", cb, sc, v) for v in rec.variants() if v != DEFAULT_VARIANT]
    raw = [r for r in (_tested(audit, *c) for c in cands) if r is not None]
    adj = stats.holm_adjusted([r["p_raw"] for r in raw])
    half = audit.alpha / 2.0
    return [
        Perturbation(
            **r,
            p_holm=float(pa),
            family=len(raw),
            breaks=bool(math.isfinite(pa) and pa < half and r["material"] and not r["above_claim"]),
        )
        for r, pa in zip(raw, adj)
    ]


def _tested(
    audit: Audit, kind: str, label: str, budget: int | None, scoring: str, variant: str
) -> dict[str, Any] | None:
    """One perturbation's break test before the Holm adjustment (the fields of `Perturbation` but the family's)."""
    cell = audit.cell(budget, scoring, variant)
    rec, sc, cb = audit.records, audit.claimed_scoring, audit.claimed_budget
    if cell is None or rec is None or sc is None:
        return None
    pol0, pol1 = audit.sign, audit.polarity(scoring)
    margin = margin_and_source(audit)[0]
    m = margin if math.isfinite(margin) else 0.0
    # The two cells joined on item id (Records.joined): the shared items, and those only one cell has.
    both = rec.joined([(sc, cb, DEFAULT_VARIANT), (scoring, budget, variant)])
    s0, s1 = pol0 * both.take(0, "gain"), pol1 * both.take(1, "gain")
    shared, missing = both.item_ids, both.missing
    claimed = audit.cell(cb)
    comparable = kind != "scoring" or (cell.binary and claimed is not None and claimed.binary)
    change = exact = None
    material = True
    if comparable:
        if audit.draw_seed is not None:
            change = _anytime_change(audit, both, s0, s1, (pol0, pol1), (scoring, budget, variant))
        elif len(shared) >= 2:
            lo, hi = audit.score_bounds
            change = stats.paired_inference(
                s0, s1, level=audit.level, clusters=both.clusters, outcomes="scores", score_bounds=(lo - hi, hi - lo)
            )
        else:
            p0, p1 = rec.paired(sc, cb), rec.paired(scoring, budget, variant)
            change = stats.welch_inference(
                pol0 * (p0.treatment - p0.baseline), pol1 * (p1.treatment - p1.baseline), level=audit.level
            )
        # H1: the gain shrinks (change < 0); the break also needs the estimate beyond −margin (material).
        p_raw = change.p_value(0.0, "less")
        material = bool(math.isfinite(change.value) and change.value < -m)
        test = "harmful change"
        e = s1 - s0 if len(shared) >= 2 else np.array([])
        if e.size and np.ptp(e) == 0 and claimed is not None and len(shared) == claimed.n == cell.n:
            # The same change on every item (identical outputs): a fact, not an estimate.
            exact = float(e[0])
            p_raw = 0.0 if exact < 0 else 1.0
            material = exact < -m
    else:
        # Another scale: only a significant reversal in the scoring's own polarity is comparable.
        p_raw = cell.inference.p_value(0.0, "less" if pol1 > 0 else "greater")
        test = "reversal"
    return {
        "kind": kind,
        "label": label,
        "cell": cell,
        "change": change,
        "test": test,
        "exact_change": exact,
        "material": material,
        "above_claim": comparable and _above_claim(audit, cell, pol1),
        "p_raw": float(p_raw) if p_raw is not None else math.nan,
        "margin": m,
        "shared": int(len(shared)),
        "missing": missing[:20],
    }


def _anytime_change(
    audit: Audit, both: Any, s0: np.ndarray, s1: np.ndarray, pols: tuple[int, int], perturbed: tuple
) -> stats.PairedInference:
    """The change of the gain in a sequential audit: anytime-valid (`stats.anytime_inference`) on the per-item
    changes of the shared items in their draw order; without shared items (another item set), the i-th drawn item of
    each cell paired with the other's i-th (independent draws: the pair's mean difference is the change of the
    means), as many pairs as the smaller cell has."""
    from audit.measure import draw_order

    lo, hi = audit.score_bounds
    seed = int(audit.draw_seed or 0)
    bounds = (2.0 * (lo - hi), 2.0 * (hi - lo))
    if len(both.item_ids) >= 2:
        return stats.anytime_inference((s1 - s0)[draw_order(both.item_ids, seed)], audit.level, bounds)
    rec = audit.records
    if rec is None or audit.claimed_scoring is None:
        raise RuntimeError("a perturbation is tested only with records and a claimed scoring")
    p0 = rec.paired(audit.claimed_scoring, audit.claimed_budget)
    p1 = rec.paired(*perturbed)
    g0 = pols[0] * (p0.treatment - p0.baseline)[draw_order(p0.item_ids, seed)]
    g1 = pols[1] * (p1.treatment - p1.baseline)[draw_order(p1.item_ids, seed)]
    k = min(g0.size, g1.size)
    return stats.anytime_inference(g1[:k] - g0[:k], audit.level, bounds)


def _above_claim(audit: Audit, cell: MeasuredCell, pol: int) -> bool:
    """The perturbed gain is shown to be at least the reported one (less its rounding tolerance): H0 "gain <
    reported − tolerance" rejected one-sided at α/2."""
    rep = audit.reported_delta()
    if rep is None or audit.sign * rep <= 0 or cell.n < 2:
        return False
    floor = abs(rep) - audit.claim.claim.reported.delta_tolerance(*audit.written_places())
    p = cell.inference.p_value(pol * floor, "greater" if pol > 0 else "less")
    return bool(p is not None and math.isfinite(p) and p < audit.alpha / 2.0)


def judge(audit: Audit, pt: Perturbation) -> Judgement:
    """The judgement of one perturbation, by the rule in the module docstring."""
    pol = audit.polarity(pt.cell.scoring)
    gain = pol * pt.cell.delta.value
    alpha_half = audit.alpha / 2.0
    reversed_sig = pt.cell.inference.p_value(0.0, "less" if pol > 0 else "greater") < alpha_half
    if pt.above_claim and not pt.breaks:
        return _holds(
            "above_claim",
            f"the gain under {pt.label} is shown to stay at or above the reported {fmt_delta(audit.reported_delta())}",
        )
    if pt.breaks:
        if reversed_sig:
            return Judgement(
                "reverses", Outcome.flag, Severity.critical, Impact.fragile, f"the gain reverses under {pt.label}"
            )
        if gain <= 0:
            return Judgement(
                "vanishes", Outcome.flag, Severity.critical, Impact.fragile, f"the gain vanishes under {pt.label}"
            )
        return Judgement(
            "shrinks",
            Outcome.flag,
            Severity.major,
            Impact.fragile,
            f"the gain shrinks by more than the margin ±{pt.margin:.3g} under {pt.label}",
        )
    if pt.exact_change is not None and abs(pt.exact_change) <= pt.margin:
        return _holds(
            "holds", f"the gain holds under {pt.label} (every item's gain changes by exactly {pt.exact_change:+.3g})"
        )
    if (
        pt.change is not None
        and pt.change.interval.ok
        and pt.margin > 0
        and pt.change.p_value(-pt.margin, "greater") < alpha_half
        and pt.change.p_value(pt.margin, "less") < alpha_half
    ):
        return _holds("holds", f"the gain holds under {pt.label} (equivalent within ±{pt.margin:.3g}, TOST)")
    if reversed_sig:
        return _noted(
            "reversed_not_shown",
            f"the delta under {pt.label} is significantly reversed on its own, but "
            f"the change is not shown beyond the margin after Holm adjustment",
        )
    if pt.change is None and gain > 0 and pt.cell.inference.p_value(0.0, "greater" if pol > 0 else "less") < alpha_half:
        return _holds("holds", f"the gain holds under {pt.label}")
    return _noted("not_shown_to_change", f"the gain is not shown to change under {pt.label}")


def _holds(code: str, sentence: str) -> Judgement:
    return Judgement(code, Outcome.passed, Severity.info, Impact.none, sentence)


def _noted(code: str, sentence: str) -> Judgement:
    return Judgement(code, Outcome.info, Severity.info, Impact.none, sentence)


def change_text(audit: Audit, pt: Perturbation) -> str:
    """The change of the gain with its interval and the Holm-adjusted test, for a finding's detail."""
    if pt.change is None:
        return (
            f"{pt.label} measures on another scale; its own delta {fmt_delta(pt.cell.delta.value)} "
            f"{fmt_ci(pt.cell.interval)}, one-sided reversal p = {pt.p_raw:.3g}, Holm p = {pt.p_holm:.3g} "
            f"over {pt.family} perturbation(s)."
        )
    ch = pt.change
    if pt.exact_change is not None:
        return (
            f"Change of the gain, {pt.label} − claimed: exactly {pt.exact_change:+.3g} on every one of the "
            f"{pt.shared} items (no sampling variance); margin ±{pt.margin:.3g}."
        )
    return (
        f"Change of the gain, {pt.label} − claimed: {fmt_delta(ch.value)} {fmt_ci(ch.interval)} "
        f"({ch.method} on {pt.shared} shared items); H0 change ≥ 0: one-sided p = {pt.p_raw:.3g}, Holm "
        f"p = {pt.p_holm:.3g} over {pt.family} perturbation(s); a break needs Holm p < α/2 = "
        f"{audit.alpha / 2:g} and a change beyond the margin −{pt.margin:.3g} "
        f"({'it is' if pt.material else 'it is not'})."
    )


def perturbation_stat(pt: Perturbation) -> dict[str, Any]:
    """The perturbation's numbers as a finding's statistic (the keys the report's glossary explains)."""
    ch = pt.change
    return {
        "perturbation": pt.kind,
        "label": pt.label,
        "budget": pt.cell.budget,
        "scoring": pt.cell.scoring,
        "variant": pt.cell.variant,
        "delta": pt.cell.delta.value,
        "ci_low": pt.cell.interval.low,
        "ci_high": pt.cell.interval.high,
        "p_value": pt.cell.test.p_value,
        "change": ch.value if ch is not None else None,
        "change_ci_low": ch.interval.low if ch is not None else None,
        "change_ci_high": ch.interval.high if ch is not None else None,
        "change_method": ch.method if ch is not None else None,
        "break_test": pt.test,
        "margin": pt.margin,
        "p_break": pt.p_raw,
        "p_break_holm": pt.p_holm,
        "family_size": pt.family,
        "breaks": pt.breaks,
        "above_claim": pt.above_claim,
        "shared_items": pt.shared,
        "missing_items": list(pt.missing),
    }
