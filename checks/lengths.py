"""lengths: how long are the arms' outputs, and how different?

Judges prefer longer answers (AlpacaEval's length-controlled win rate exists because of it), a budget cuts long
reasoning, and a prompt that asks for brevity changes scores through length alone. Per budget, on the items both
arms share, this check shows each arm's mean and median output length in characters and in whitespace-separated
words (tokens when the logs count them), and the paired difference treatment − baseline with the paired t interval
(:func:`audit.stats.paired_inference`), beside the gain of the claimed scoring on the items where the treatment's
output is longer and on those where it is not. It reports; it flags nothing (a length difference can be the
treatment itself): read it beside the gain.
"""

from __future__ import annotations

import math
from itertools import repeat
from typing import Any

import numpy as np

from audit import stats
from audit.check_params import LengthsParams
from audit.checks._common import CheckSpec, Context
from audit.findings import Finding, Outcome
from audit.plan import DEFAULT_VARIANT
from audit.records import Paired

NAME = "lengths"

Params = LengthsParams


def _lengths(texts) -> tuple[np.ndarray, np.ndarray]:
    """Characters and whitespace-separated words of each output (0 where there is no text)."""
    n = len(texts)
    if all(map(isinstance, texts, repeat(str))):  # every output a text: counted in C-level maps
        return (
            np.fromiter(map(len, texts), dtype=float, count=n),
            np.fromiter(map(len, map(str.split, texts)), dtype=float, count=n),
        )
    chars = np.array([len(t) if isinstance(t, str) else 0 for t in texts], dtype=float)
    words = np.array([len(t.split()) if isinstance(t, str) else 0 for t in texts], dtype=float)
    return chars, words


def _row(ctx: Context, p: Paired, b: int) -> dict[str, Any]:
    """One budget's row: each arm's lengths, their paired difference, and the gain where the treatment is longer."""
    cb, wb = _lengths(p.frame["text_b"].tolist())
    ct, wt = _lengths(p.frame["text_t"].tolist())
    diff = stats.paired_inference(cb, ct, level=ctx.level, outcomes="scores")
    longer = ct > cb
    gain = p.treatment - p.baseline
    row: dict[str, Any] = {
        "budget": b,
        "n": p.n,
        "mean_chars_baseline": float(cb.mean()),
        "mean_chars_treatment": float(ct.mean()),
        "median_chars_baseline": float(np.median(cb)),
        "median_chars_treatment": float(np.median(ct)),
        "mean_words_baseline": float(wb.mean()),
        "mean_words_treatment": float(wt.mean()),
        "difference_chars": diff.value,
        "ci_low": diff.interval.low,
        "ci_high": diff.interval.high,
        "ci_method": diff.interval.method,
        "p_value": diff.test.p_value,
        "treatment_longer": int(longer.sum()),
        "delta_where_treatment_longer": float(gain[longer].mean()) if longer.any() else math.nan,
        "delta_elsewhere": float(gain[~longer].mean()) if (~longer).any() else math.nan,
    }
    for unit in ("baseline", "treatment"):
        tok = p.frame[f"tokens_{unit[0]}"].to_numpy(dtype=float)
        row[f"mean_tokens_{unit}"] = float(np.nanmean(tok)) if np.isfinite(tok).any() else math.nan
    return row


def run(ctx: Context, params: Params) -> list[Finding]:
    rec = ctx.records
    scoring = ctx.claimed_scoring
    if rec is None or scoring is None:
        return []
    rows: list[dict[str, Any]] = []
    head: dict[str, Any] | None = None
    for b in rec.budgets():
        if not rec.has(DEFAULT_VARIANT, b, scoring):
            continue
        p = rec.paired(scoring, b)
        if p.n < 2:
            continue
        row = _row(ctx, p, b)
        rows.append(row)
        if head is None or b == ctx.claimed_budget:
            head = row
    if head is None:
        return []
    ratio = head["mean_chars_treatment"] / head["mean_chars_baseline"] if head["mean_chars_baseline"] else math.nan
    shown = math.isfinite(head["ci_low"]) and (head["ci_low"] > 0 or head["ci_high"] < 0)
    if not shown or not (not math.isfinite(ratio) or abs(ratio - 1) >= params.min_relative_difference):
        return []
    rel = (
        f"{abs(ratio - 1):.0%} {'longer' if ratio >= 1 else 'shorter'} than"
        if math.isfinite(ratio)
        else "of a different length from"
    )
    title = (
        f"Output lengths: the treatment's outputs are {rel} the baseline's at budget {head['budget']} (mean "
        f"{head['mean_chars_treatment']:.0f} vs {head['mean_chars_baseline']:.0f} characters, "
        f"{head['mean_words_treatment']:.0f} vs {head['mean_words_baseline']:.0f} words; paired difference "
        f"{head['difference_chars']:+.0f} [{head['ci_low']:+.0f}, {head['ci_high']:+.0f}] characters)"
    )
    detail = (
        f"On the {head['treatment_longer']} of {head['n']} items where the treatment's output is longer the "
        f"delta ({scoring!r}) is {head['delta_where_treatment_longer']:+.3f}; on the others "
        f"{head['delta_elsewhere']:+.3f}. A judge or a metric that rewards length turns a length difference "
        "into a gain: read the gain beside it (a length-controlled comparison needs more than these logs)."
    )
    return [
        Finding(
            NAME,
            "lengths",
            Outcome.info,
            title,
            detail=detail,
            statistic={
                "budget": head["budget"],
                "scoring": scoring,
                "ratio_chars": ratio,
                "difference_chars": head["difference_chars"],
                "ci_low": head["ci_low"],
                "ci_high": head["ci_high"],
                "test": "paired t on characters",
            },
            rows=rows,
            provenance=ctx.provenance(
                lengths="characters (len), words (str.split), tokens when logged; items both arms share",
                test="paired t on the per-item character difference",
            ),
        )
    ]


SPEC = CheckSpec(
    NAME,
    run,
    Params,
    needs_samples=True,
    description="the arms' output lengths (characters, words, tokens) and their paired difference, "
    "beside the gain where the treatment is longer and where it is not",
)
"""This check in the registry (:data:`audit.checks.REGISTRY`)."""
