"""Sequential audits: look after each batch of items, stop once every decision the verdict needs is settled.

Items are drawn in a seeded random order (`audit.measure.draw_keys`: sha256 of the seed and the item id, so the order
never depends on an outcome). After each batch the decisions of the verdict are re-read from anytime-valid tests
(`audit.stats.anytime_inference`: the betting confidence sequence of Waudby-Smith & Ramdas 2024 and its e-processes;
a perturbation family is Holm-adjusted on the anytime p-values, valid under any dependence and at any stopping time):

* **the claimed gain** — *shown* when the interval excludes 0 on the gain side, or when the delta is shown reversed
  or shown smaller than the reported one (the audit's ``not_reproduced`` rules; the verdict is then settled whatever
  comes next); with a reported gain, *shown* also needs the shortfall from it ruled out beyond the materiality margin
  (the interval's gain-side end above reported − tolerance − margin, `stop_margin`), else the decision stays open;
* **each perturbation** — *shown* to break the claim (`audit.breaks`: Holm p < α/2 and a material change), or
  *ruled out*: its change's interval lies above −margin, the verdict's own materiality margin at this look (half the
  larger of the reported and the measured gain, or ``options.margin``), so no break could be declared there; the
  perturbed gain is shown at or above the reported one; or — on another scale — its own gain is shown positive.
  A lucky early batch inflates the measured gain and so the margin; in 400 simulated audits of a gain that vanishes
  at the larger budget no early stop ruled the break out (all 38 misses ran to n_max, where the anytime test has
  less power than the fixed-n one), while the conservative alternative — half the gain's anytime lower bound when
  nothing is reported — made audits of unbroken claims run to n_max (benchmarks/calibration/2026-12-07/
  sequential_stop_margin).

The audit stops at the first look where the claimed gain is settled and every perturbation is settled or one is
shown to break the claim (a fragile verdict cannot become supported), or at ``n_max``. Stopping only ever ends a
look early on a *rejection* or on an interval inside a margin; every verdict-changing finding still rests on an
anytime-valid test, so its error rate holds at the data-dependent stopping time. What stopping costs is power: a
shortfall from the reported gain smaller than the margin, or a perturbation's harm smaller than the margin, is not
pursued once the interval is inside it.

Auxiliary checks (truncation, extraction, mimicry, ...) are computed once, at the stop, with their fixed-n tests on
the items generated; they are never looked at batch by batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np
import pandas as pd

from audit.breaks import read_gain
from audit.findings import SequentialDecision, SequentialLook
from audit.measure import draw_keys
from audit.plan import ARMS
from audit.records import DEFAULT_VARIANT, Records

SHOWN, RULED_OUT, OPEN = "shown", "ruled out", "open"


@dataclass(frozen=True)
class Look:
    """The decisions at one look, and whether the audit may stop there."""

    items: int
    decisions: list[SequentialDecision]
    settled: bool
    reason: str


def schedule(total: int, batch: int, n_max: int | None) -> list[int]:
    """The item counts of the default variant at which the audit looks: every ``batch`` items up to
    min(total, n_max), the last look at that bound."""
    top = min(total, n_max) if n_max is not None else total
    looks = list(range(batch, top, batch))
    return looks + [top] if top > 0 else []


def share(k: int, n_default: int, n_variant: int) -> int:
    """How many of a variant's own items go with the first ``k`` of the default variant's: the same share."""
    if n_default <= 0 or k >= n_default:
        return n_variant
    return min(n_variant, math.ceil(k * n_variant / n_default))


def drawn_first(ids: Any, k: int, seed: int) -> np.ndarray:
    """A mask of the ``k`` items that come first in the draw order (`audit.measure.draw_keys`)."""
    ids = np.asarray(ids, dtype=object)
    mask = np.zeros(ids.size, dtype=bool)
    if k > 0 and ids.size:
        mask[np.argsort(draw_keys(ids, seed), kind="stable")[:k]] = True
    return mask


def _paired_ids(rows: pd.DataFrame) -> np.ndarray:
    """A variant's items that both arms hold, in order of appearance: the items a paired decision reads. A live run
    generates every item for both arms; replayed logs may hold different item sets (an API run cut short), and an item
    only one arm holds costs a live re-run nothing it could use."""
    held = rows.groupby("arm", sort=False)["item_id"].agg(set)
    both = set.intersection(*held) if len(held) == len(ARMS) else set()
    ids = pd.unique(rows["item_id"])
    return ids[np.fromiter((i in both for i in ids), dtype=bool, count=ids.size)]


def default_items(records: Records) -> int:
    """How many items of the default variant both arms hold: the count the looks are scheduled on."""
    table = records.table
    return int(_paired_ids(table[table["variant"] == DEFAULT_VARIANT]).size)


def prefix(records: Records, k: int, seed: int) -> Records:
    """The records of the first ``k`` drawn items of the default variant, and of each other variant its own first
    items in the same share (`share`): what a live audit would have generated by then. Items are counted and drawn
    among those both arms hold (`_paired_ids`); an item only one arm holds is left out."""
    table = records.table
    keep = np.zeros(len(table), dtype=bool)
    n_default = default_items(records)
    for rows in table.groupby("variant", sort=False).groups.values():
        ids = _paired_ids(table.loc[rows])
        chosen = set(ids[drawn_first(ids, share(k, n_default, len(ids)), seed)])
        keep[table.index.get_indexer(rows)] = table.loc[rows, "item_id"].isin(chosen).to_numpy()
    sub = table[keep].reset_index(drop=True)
    per_sample = records.per_sample
    if per_sample is not None:
        per_sample = per_sample[per_sample["item_id"].isin(set(sub["item_id"]))].reset_index(drop=True)
    return replace(records, table=sub, per_sample=per_sample, _cache={})


def decisions(ctx: Any) -> list[SequentialDecision]:
    """The verdict's decisions at one look (the rules in the module docstring), claimed gain first."""
    out = [_claimed(ctx)]
    if out[0].settles_verdict:
        return out
    out += [_perturbation(ctx, pt) for pt in ctx.perturbations()]
    return out


def settled(ds: list[SequentialDecision]) -> tuple[bool, str]:
    """Whether the audit may stop at this look, and why (or what is still open)."""
    claim, perts = ds[0], ds[1:]
    if claim.state == OPEN:
        return False, f"open: {claim.name} ({claim.why})"
    if claim.settles_verdict:
        return True, f"the claim is {claim.why}"
    broken = [d for d in perts if d.state == SHOWN]
    if broken:
        return True, f"the gain is shown and {broken[0].name} is shown to break it"
    still = [d.name for d in perts if d.state == OPEN]
    if still:
        return False, "open: " + ", ".join(still)
    return True, "the gain is shown" + (" and every perturbation is ruled out as a break" if perts else "")


def stop_margin(ctx: Any) -> float:
    """The margin within which a shortfall from the reported gain is left unpursued: one fixed before looking
    (``options.margin``, else half the reported delta: `audit.breaks.null_margin`), else half the gain's anytime lower
    bound at the claimed setting. 0 when the gain is not shown."""
    m = ctx.null_margin()[0]
    if math.isfinite(m):
        return float(m)
    cell = ctx.cell(ctx.claimed_budget)
    if cell is None:
        return 0.0
    iv = cell.inference.interval
    end = iv.low if ctx.sign > 0 else -iv.high
    return max(0.0, end / 2.0) if math.isfinite(end) else 0.0


def _fixed(cell: Any) -> dict[str, Any]:
    f = getattr(cell, "fixed_n", None)
    if f is None:
        return {}
    return {"fixed_low": f.interval.low, "fixed_high": f.interval.high, "fixed_method": f.interval.method}


def _claimed(ctx: Any) -> SequentialDecision:
    name = "claimed gain"
    cell = ctx.cell(ctx.claimed_budget)
    if cell is None or cell.n < 2:
        return SequentialDecision(name=name, state=OPEN, why="fewer than 2 paired items")
    if ctx.claimed_scoring in ctx.degenerate():
        return SequentialDecision(name=name, state=OPEN, why="the claimed scoring gives every item one score")
    inf, sign = cell.inference, ctx.sign
    nums = {"estimate": inf.value, "low": inf.interval.low, "high": inf.interval.high, **_fixed(cell)}
    # The significance check's own reading (`audit.breaks.read_gain`), so a stop never disagrees with the verdict.
    r = read_gain(ctx, sign * inf.value, inf.interval, inf.test.p_value, inf.p_value, ctx.reported_delta())
    if r.reversed or r.below_reported:
        why = "the delta is shown reversed" if r.reversed else "the delta is shown smaller than reported"
        return SequentialDecision(name=name, state=SHOWN, why=f"not reproduced: {why}", settles_verdict=True, **nums)
    if not r.shown:
        return SequentialDecision(name=name, state=OPEN, why="the gain is not shown yet", **nums)
    if math.isfinite(r.null):
        m = stop_margin(ctx)
        end = inf.interval.low if sign > 0 else -inf.interval.high
        if not end >= sign * r.null - m:
            return SequentialDecision(
                name=name,
                state=OPEN,
                why=f"the gain is shown; a shortfall from the reported delta beyond the margin {m:.3g} is not ruled "
                "out yet",
                **nums,
            )
    return SequentialDecision(name=name, state=SHOWN, why="the gain is shown", **nums)


def _perturbation(ctx: Any, pt: Any) -> SequentialDecision:
    ch = pt.change
    nums: dict[str, Any] = {}
    if ch is not None:
        nums = {"estimate": ch.value, "low": ch.interval.low, "high": ch.interval.high}
    else:
        nums = {"estimate": pt.cell.delta.value, "low": pt.cell.interval.low, "high": pt.cell.interval.high}
    name = pt.label
    if pt.breaks:
        return SequentialDecision(name=name, state=SHOWN, why="shown to break the claim (Holm p < α/2)", **nums)
    if pt.above_claim:
        return SequentialDecision(name=name, state=RULED_OUT, why="the gain there is shown at or above the reported")
    half = ctx.alpha / 2.0
    if ch is None:
        pol = ctx.polarity(pt.cell.scoring)
        if pt.cell.inference.p_value(0.0, "greater" if pol > 0 else "less") < half:
            return SequentialDecision(name=name, state=RULED_OUT, why="its own gain is shown positive", **nums)
        return SequentialDecision(name=name, state=OPEN, why="its own gain is not shown either way yet", **nums)
    if pt.exact_change is not None and pt.exact_change >= -pt.margin:
        return SequentialDecision(
            name=name, state=RULED_OUT, why="every item's gain changes by the same amount", **nums
        )
    # The verdict's own materiality margin at this look (`audit.breaks.margin_and_source`): the change's interval
    # above −margin means no break could be declared here, whatever its p.
    if ch.interval.ok and ch.interval.low > -pt.margin:
        return SequentialDecision(
            name=name, state=RULED_OUT, why=f"the change's interval lies above −{pt.margin:.3g} (immaterial)", **nums
        )
    return SequentialDecision(name=name, state=OPEN, why="a material harmful change is not ruled out yet", **nums)


def look(ctx_of: Callable[[Records], Any], records: Records, items: int) -> Look:
    """The decisions on ``records`` (the items seen by a look), and whether the audit may stop there."""
    ds = decisions(ctx_of(records))
    ok, why = settled(ds)
    return Look(items, ds, ok, why)


def look_record(lk: Look) -> SequentialLook:
    return SequentialLook(items=lk.items, open=[d.name for d in lk.decisions if d.state == OPEN])


__all__ = [
    "Look",
    "decisions",
    "default_items",
    "drawn_first",
    "look",
    "look_record",
    "prefix",
    "schedule",
    "settled",
    "share",
    "stop_margin",
]
