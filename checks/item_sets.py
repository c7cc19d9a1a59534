"""item_sets: were the arms of the published comparison run on the same items?

Leaderboards and papers often compare runs made on different item sets: one run stopped early, a provider failed on
some items, a later run used a newer split (ZeroEval's MATH-L5: the same Llama-3.1-70B scored on 721 items locally and
on 425 through an API, compared as 43.13 vs 35.76). Records pair the arms on the items they share
(:func:`audit.records.build_records`), so every paired test of this audit — the verdict — rests on those; the items
each arm alone holds are kept in ``Records.item_sets``.

Per variant × budget where the item sets differ, this check names how many items (and which) each arm alone holds,
and shows the *published* comparison — each arm on all its own items, an unpaired comparison — beside the paired one
on the shared items, in the claimed scoring:

* 0/1 scores: each arm's k/n; the difference of the rates with the Miettinen–Nurminen score test and the score
  interval that inverts it (Miettinen & Nurminen 1985; :func:`audit.stats.unpaired_score_inference`), Newcombe's
  hybrid score interval beside (Newcombe 1998, method 10; :func:`audit.stats.newcombe_diff`);
* other scores: the difference of the means with Welch's t-test and interval (:func:`audit.stats.welch_inference`);
* the paired delta on the shared items: the decision inference of the significance check (the same cell).

A comparison not made on the same items is a defect of the published comparison whatever the numbers say, so it is
one flagged finding, major, that moves no verdict (the verdict rests on the shared items, and says so): the
difference between the two comparisons is the part of the published gap that comes from the items, not the arms.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from audit import stats
from audit.check_params import ItemSetsParams
from audit.checks._common import CheckSpec, Context, fmt_ci, fmt_delta
from audit.findings import Finding, Impact, Outcome, Severity
from audit.measure import MeasuredCell
from audit.records import NORMALISATION_FIX, ItemSets, Records, normalisation_note
from audit.plan import DEFAULT_VARIANT

NAME = "item_sets"
PUBLISHED_ROLE = "published: each arm on its own items (unpaired)"
SHARED_ROLE = "paired on the shared items (the verdict)"

Params = ItemSetsParams


def unpaired(b: np.ndarray, t: np.ndarray, level: float) -> dict:
    """The comparison of two independent samples of scores (treatment − baseline): the MN score test and interval
    for 0/1 scores (Newcombe's interval beside), Welch's t otherwise."""
    b, t = np.asarray(b, dtype=float), np.asarray(t, dtype=float)
    binary = bool(np.all(np.isin(b, (0.0, 1.0))) and np.all(np.isin(t, (0.0, 1.0))))
    out: dict[str, Any] = {
        "n_baseline": int(b.size),
        "n_treatment": int(t.size),
        "baseline": float(b.mean()) if b.size else math.nan,
        "treatment": float(t.mean()) if t.size else math.nan,
    }
    if binary and b.size and t.size:
        kb, kt = int(b.sum()), int(t.sum())
        inf = stats.unpaired_score_inference(kt, int(t.size), kb, int(b.size), level=level)
        nc = stats.newcombe_diff(kt, int(t.size), kb, int(b.size), level=level)
        out.update(passes_baseline=kb, passes_treatment=kt, newcombe_low=nc.low, newcombe_high=nc.high)
    else:
        inf = stats.welch_inference(b, t, level=level)
    out.update(
        delta=inf.value,
        ci_low=inf.interval.low,
        ci_high=inf.interval.high,
        ci_method=inf.interval.method,
        p_value=inf.test.p_value,
        test=f"{inf.test.method} (two-sided)",
    )
    return out


def _compared(
    ctx: Context, rec: Records, scoring: str | None
) -> tuple[list[dict], list[tuple[ItemSets, dict, MeasuredCell | None]]]:
    """The rows (published, then shared) and the (item sets, published comparison, cell) of each differing cell."""
    rows, sets = [], []
    for s in rec.item_sets:
        if scoring is None or not rec.has(s.variant, s.budget, scoring):  # no claimed scoring: no such cell
            continue
        pub = unpaired(
            rec.arm_scores("baseline", scoring, s.budget, s.variant)["score"].to_numpy(dtype=float),
            rec.arm_scores("treatment", scoring, s.budget, s.variant)["score"].to_numpy(dtype=float),
            ctx.level,
        )
        rows.append({"variant": s.variant, "budget": s.budget, "scoring": scoring, "comparison": PUBLISHED_ROLE, **pub})
        cell = ctx.cell(s.budget, scoring, s.variant)
        if cell is not None:
            r = cell.row()
            rows.append(
                {
                    "variant": s.variant,
                    "budget": s.budget,
                    "scoring": scoring,
                    "comparison": SHARED_ROLE,
                    "n_baseline": cell.n,
                    "n_treatment": cell.n,
                    "baseline": r["baseline"],
                    "treatment": r["treatment"],
                    "delta": r["delta"],
                    "ci_low": r["ci_low"],
                    "ci_high": r["ci_high"],
                    "ci_method": r["ci_method"],
                    "p_value": r["p_value"],
                    "test": r["test"],
                }
            )
        sets.append((s, pub, cell))
    return rows, sets


def _stat(s: ItemSets, pub: dict, cell: MeasuredCell | None, scoring: str | None, k: int) -> dict:
    """The statistic of the finding: the item counts, the ids each arm alone holds, both comparisons."""
    return {
        "variant": s.variant,
        "budget": s.budget,
        "scoring": scoring,
        "shared": s.shared,
        "n_baseline": s.n_baseline,
        "n_treatment": s.n_treatment,
        "n_only_baseline": len(s.only_baseline),
        "n_only_treatment": len(s.only_treatment),
        "only_baseline_ids": list(s.only_baseline[:k]),
        "only_treatment_ids": list(s.only_treatment[:k]),
        "ids_shown": k,
        "published_baseline": pub["baseline"],
        "published_treatment": pub["treatment"],
        "published_delta": pub["delta"],
        "ci_low": pub["ci_low"],
        "ci_high": pub["ci_high"],
        "ci_method": pub["ci_method"],
        "p_value": pub["p_value"],
        "test": pub["test"],
        "shared_delta": cell.delta.value if cell is not None else math.nan,
        "shared_ci_low": cell.interval.low if cell is not None else math.nan,
        "shared_ci_high": cell.interval.high if cell is not None else math.nan,
        "shared_test": cell.test.method if cell is not None else None,
    }


def _detail(
    s: ItemSets,
    pub: dict,
    cell: MeasuredCell | None,
    scoring: str | None,
    k: int,
    sets: list[tuple[ItemSets, dict, MeasuredCell | None]],
) -> str:
    """The finding's detail: both comparisons, the ids each arm alone holds, and the other differing cells."""
    on_shared = (
        f"paired on the {s.shared} shared items {fmt_delta(cell.delta.value)} {fmt_ci(cell.interval)}"
        if cell is not None
        else f"{s.shared} shared items"
    )
    detail = (
        f"Published comparison, each arm on its own items (unpaired, {scoring!r}, budget {s.budget}): "
        f"baseline {pub['baseline']:.4g} (n {pub['n_baseline']}) vs treatment {pub['treatment']:.4g} "
        f"(n {pub['n_treatment']}), delta {fmt_delta(pub['delta'])} "
        f"[{pub['ci_low']:+.3f}, {pub['ci_high']:+.3f}] ({pub['ci_method']}, p = {pub['p_value']:.3g})"
        + (f", Newcombe [{pub['newcombe_low']:+.3f}, {pub['newcombe_high']:+.3f}]" if "newcombe_low" in pub else "")
        + f"; {on_shared}. Every paired test of this audit uses the shared items only; the difference between "
        "the two comparisons is the part of the published gap that comes from the item sets, not the arms. "
        f"Items only in baseline: {_ids(s.only_baseline, k)}. Items only in treatment: "
        f"{_ids(s.only_treatment, k)}."
    )
    note = normalisation_note(s.only_baseline, s.only_treatment)
    if note:  # ids that print alike but differ in their code points: said, with the fix
        detail += f" {note[0].upper()}{note[1:]}: {NORMALISATION_FIX}."
    if len(sets) > 1:
        detail += (
            " Other cells whose item sets differ: " + "; ".join(x.sentence() for x, _, _ in sets if x is not s) + "."
        )
    return detail


def run(ctx: Context, params: Params) -> list[Finding]:
    rec = ctx.records
    if rec is None or not rec.item_sets:
        return []
    scoring = ctx.claimed_scoring
    prov = ctx.provenance(
        published="each arm on all its own items: Miettinen–Nurminen score test and interval for 0/1 scores "
        "(Newcombe hybrid score interval beside), Welch t otherwise",
        shared="the paired decision inference on the shared items (see significance)",
        pairing="Records pair the arms on item id; the items one arm alone holds are kept in Records.item_sets",
    )
    rows, sets = _compared(ctx, rec, scoring)
    if not sets:
        return []
    # The headline: the claimed setting when its item sets differ, else the first cell that differs.
    s, pub, cell = next(
        ((s, p, c) for s, p, c in sets if s.variant == DEFAULT_VARIANT and s.budget == ctx.claimed_budget), sets[0]
    )
    k = params.max_ids
    stat = _stat(s, pub, cell, scoring, k)
    alone = len(s.only_baseline) + len(s.only_treatment)
    title = (
        f"The published comparison is not on the same items: the baseline holds {s.n_baseline} items, the "
        f"treatment {s.n_treatment}, and {alone} items only one arm has ({len(s.only_baseline)} only in "
        f"baseline, {len(s.only_treatment)} only in treatment); the verdict rests on the {s.shared} shared items"
    )
    detail = _detail(s, pub, cell, scoring, k, sets)
    return [
        Finding(
            NAME,
            "different_items",
            Outcome.flag,
            title,
            detail=detail,
            severity=Severity.major,
            impact=Impact.none,
            statistic=stat,
            rows=rows,
            provenance=prov,
        )
    ]


def _ids(ids: tuple[str, ...], k: int) -> str:
    if not ids:
        return "none"
    shown = ", ".join(ids[:k])
    return shown + (f", … ({len(ids) - k} more)" if len(ids) > k else "")


SPEC = CheckSpec(
    NAME,
    run,
    Params,
    needs_samples=True,
    description="arms run on different item sets: the items only one arm has; the published unpaired "
    "comparison beside the paired one on the shared items",
)
"""This check in the registry (:data:`audit.checks.REGISTRY`)."""
