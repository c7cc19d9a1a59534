"""Data behind the report's per-item browser and length plots, computed from Records.

Every statistic in the report is computed on all items (by the checks); only the browser embeds a subset, chosen in
this order: items a finding cites as evidence, items whose score differs between the arms (at any budget, scoring
or variant), items that hit the cap in either arm at any budget, then a seeded random sample of the rest. Within a
tier that does not fit, a seeded sample is taken. The embedded texts are clipped (``clip`` characters) and the
embedded JSON is kept under ``max_bytes``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from audit.findings import Report
from audit.plan import ARMS

MAX_ITEMS = 2000
MAX_BYTES = 8_000_000
CLIP = 4000


@dataclass(frozen=True)
class Lengths:
    """Output lengths per arm × budget, on all items."""

    unit: str  # "tokens" | "words"
    label: str  # what the unit is, for the page
    values: dict[tuple[str, int], np.ndarray]
    rows: list[dict[str, Any]]


@dataclass(frozen=True)
class ItemData:
    total: int
    shown: int
    blob: dict[str, Any]
    note: str | None = None  # a problem computing truncation flags, said on the page


def _flags(report: Report, records) -> tuple[dict, str | None]:
    """(variant, arm) -> (item ids, {budget: flags}): the records' own truncation flags (derived in verify)."""
    out = {}
    try:
        for v in records.variants():
            for arm in ARMS:
                ids, flags, _ = records.truncation(arm, v)
                out[(v, arm)] = (ids, flags)
    except Exception as exc:  # noqa: BLE001 - the report still renders; the page says why flags are missing
        return {}, f"truncation flags could not be computed for the browser: {type(exc).__name__}: {exc}"
    return out, None


def lengths(records) -> Lengths | None:
    """Output lengths: completion_tokens when every output has one, else whitespace-separated words."""
    if records is None or not len(records.table):
        return None
    t = records.table
    first = records.scorings()[0]
    sub = t[(t["scoring"] == first) & (t["variant"] == records.variants()[0])]
    tokens_known = bool(sub["completion_tokens"].notna().all())
    if tokens_known:
        unit, label = "tokens", "completion tokens (from the logs)"
    else:
        unit, label = (
            "words",
            (
                "whitespace-separated words (the logs have no token counts; the cap is in model "
                "tokens, so words only approximate it)"
            ),
        )
    values: dict[tuple[str, int], np.ndarray] = {}
    rows = []
    for arm in ARMS:
        for b in records.budgets():
            s = sub[(sub["arm"] == arm) & (sub["budget"] == b)]
            if tokens_known:
                x = s["completion_tokens"].to_numpy(dtype=float)
            else:
                # str.split() splits on exactly the characters regex \s matches (str.isspace): words = runs of \S.
                x = np.array([len(t.split()) if isinstance(t, str) else 0 for t in s["text"].tolist()], dtype=float)
            values[(arm, b)] = x
            n = len(x)
            rows.append(
                {
                    "arm": arm,
                    "budget": b,
                    "n": n,
                    "median": float(np.median(x)) if n else math.nan,
                    "p90": float(np.quantile(x, 0.9)) if n else math.nan,
                    "max": float(np.max(x)) if n else math.nan,
                    "at_cap": (float(np.mean(x >= b)) if n else math.nan) if tokens_known else None,
                }
            )
    return Lengths(unit, label, values, rows)


def _clip(text: Any, clip: int) -> tuple[str | None, int]:
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return None, 0
    s = str(text)
    return (s, 0) if len(s) <= clip else (s[:clip], len(s) - clip)


def _num(x: Any) -> Any:
    if x is None:
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(f):
        return None
    return int(f) if f.is_integer() else f


def item_data(
    report: Report, records, max_items: int = MAX_ITEMS, max_bytes: int = MAX_BYTES, clip: int = CLIP
) -> ItemData | None:
    """The per-item browser's JSON (see module docstring for which items are embedded)."""
    if records is None or not len(records.table):
        return None
    t = records.table
    variants, budgets, scorings = records.variants(), records.budgets(), records.scorings()
    flags, note = _flags(report, records)

    keys = t[["variant", "item_id"]].drop_duplicates()
    all_items = list(zip(keys["variant"].tolist(), keys["item_id"].tolist()))
    total = len(all_items)

    # Tiers, each a set of (variant, item_id).
    evidence = {("default", str(e["item_id"])) for f in report.findings for e in f.evidence if "item_id" in e}
    tiers = (
        ("evidence", evidence),
        ("changed", _changed(records, variants, budgets, scorings)),
        ("truncated", _truncated(flags)),
    )
    chosen, why = _choose(all_items, tiers, max_items, report.options.seed)

    # Look-ups restricted to the chosen items.
    chosen_set = set(chosen)
    near = t[t["item_id"].isin({i for _, i in chosen})]  # one vectorised pass; then the exact (variant, item) pairs
    sub = near[[k in chosen_set for k in zip(near["variant"].tolist(), near["item_id"].tolist())]]
    first = scorings[0]
    texts = sub[sub["scoring"] == first]
    out_rows = {(r.variant, r.item_id, _bkey(r.budget), r.arm): r for r in texts.itertuples(index=False)}
    score_rows: dict[tuple, dict] = {}
    for r in sub[["variant", "item_id", "budget", "scoring", "arm", "score"]].itertuples(index=False):
        score_rows.setdefault((r.variant, r.item_id), {}).setdefault(_bkey(r.budget), {}).setdefault(
            r.scoring, [None, None]
        )[0 if r.arm == "baseline" else 1] = _num(r.score)
    flag_at = _flag_at(flags, chosen)

    items: list[dict[str, Any]] = []
    used = 0
    bkeys = [_bkey(b) for b in budgets]
    for k in chosen:
        v, iid = k
        entry = {
            "id": iid,
            "variant": v,
            "why": why.get(k, []),
            "outputs": _outputs(v, iid, bkeys, out_rows, flag_at, clip),
            "scores": score_rows.get(k, {}),
        }
        size = len(json.dumps(entry, ensure_ascii=False))
        if used + size > max_bytes and items:
            break
        used += size
        items.append(entry)
    items.sort(key=lambda e: (e["variant"] != "default", e["variant"], e["id"]))
    claimed_scoring = report.options.claimed_scoring
    blob = {
        "total": total,
        "shown": len(items),
        "max_items": max_items,
        "clip": clip,
        "budgets": bkeys,
        "scorings": scorings,
        "variants": variants,
        "arms": list(ARMS),
        "claimed_budget": report.options.claimed_budget,
        "claimed_scoring": claimed_scoring if claimed_scoring in scorings else scorings[0],
        "items": items,
    }
    return ItemData(total, len(items), blob, note)


def _changed(records, variants: list, budgets: list, scorings: list) -> set:
    """(variant, item_id) of the items whose score differs between the arms in some cell."""
    changed: set = set()
    for v in variants:
        for b in budgets:
            for s in scorings:
                if not records.has(v, b, s):
                    continue
                p = records.paired(s, b, v)
                diff = p.frame["score_b"].to_numpy(dtype=float) != p.frame["score_t"].to_numpy(dtype=float)
                changed.update((v, i) for i in p.frame["item_id"].to_numpy()[diff])
    return changed


def _truncated(flags: dict) -> set:
    """(variant, item_id) of the items flagged as truncated in either arm at some budget."""
    truncated: set = set()
    for (v, _arm), (ids, fl) in flags.items():
        hit = np.zeros(len(ids), dtype=bool)
        for x in fl.values():
            hit |= x == 1
        truncated.update((v, i) for i in ids[hit])
    return truncated


def _choose(all_items: list, tiers: tuple, max_items: int, seed: int) -> tuple[list, dict]:
    """The items to embed, tier by tier, a seeded sample of a tier that does not fit; and each one's tiers."""
    rng = np.random.default_rng([seed, 20_240_611])
    chosen: list[tuple[str, str]] = []
    seen: set = set()
    order = sorted(all_items)
    for _name, members in (*tiers, ("sample", set(all_items))):
        cands = [k for k in order if k in members and k not in seen]
        room = max_items - len(chosen)
        if room <= 0:
            break
        if len(cands) > room:
            pick = rng.choice(len(cands), size=room, replace=False)
            cands = [cands[i] for i in sorted(pick)]
        chosen.extend(cands)
        seen.update(cands)
    why = {k: [n for n, m in tiers if k in m] for k in chosen}
    return chosen, why


def _flag_at(flags: dict, chosen: list) -> dict[tuple, float]:
    """(variant, item_id, budget key, arm) → the truncation flag, for the chosen items."""
    flag_at: dict[tuple, float] = {}
    for (v, arm), (ids, fl) in flags.items():
        pos = {i: j for j, i in enumerate(ids)}
        for k in chosen:
            if k[0] != v or k[1] not in pos:
                continue
            for b, x in fl.items():
                flag_at[(v, k[1], _bkey(b), arm)] = x[pos[k[1]]]
    return flag_at


def _outputs(v: str, iid: str, bkeys: list[str], out_rows: dict, flag_at: dict, clip: int) -> dict[str, dict]:
    """One item's outputs by budget and arm: clipped text, finish, tokens, truncation flag and smaller budgets' cuts."""
    outputs: dict[str, dict] = {}
    for bi, bk in enumerate(bkeys):
        pair = {}
        for arm in ARMS:
            r = out_rows.get((v, iid, bk, arm))
            if r is None:
                continue
            full = None if r.text is None or (isinstance(r.text, float) and math.isnan(r.text)) else str(r.text)
            text, more = _clip(full, clip)
            fl = flag_at.get((v, iid, bk, arm))
            cuts = []
            # Where a smaller budget's output was cut, mark its end inside this (larger) output.
            for sk in bkeys[:bi]:
                small = out_rows.get((v, iid, sk, arm))
                sfl = flag_at.get((v, iid, sk, arm))
                if small is None or sfl != 1 or full is None or not isinstance(small.text, str):
                    continue
                if full.startswith(small.text) and len(small.text) < len(full):
                    cuts.append({"budget": int(sk), "at": len(small.text)})
            pair[arm] = {
                "text": text,
                "more": more,
                "finish": r.finish_reason if isinstance(r.finish_reason, str) else None,
                "tokens": _num(r.completion_tokens),
                "truncated": None if fl is None or (isinstance(fl, float) and math.isnan(fl)) else int(fl),
                "cuts": cuts,
            }
            served = getattr(r, "served_by", None)
            if isinstance(served, str):  # live runs: which of the arm's endpoints produced it
                pair[arm]["served_by"] = served
        if pair:
            outputs[bk] = pair
    return outputs


def _bkey(b: Any) -> str:
    try:
        return str(int(b))
    except (TypeError, ValueError):
        return "none"


def script_json(data: Any) -> str:
    """JSON that is safe inside <script type="application/json">: <, >, & and the JS line separators escaped."""
    s = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return (
        s.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )
