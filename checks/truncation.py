"""truncation: is the gain an artifact of the generation budget?

An output *hit the cap* when (in order of evidence): the server said ``finish_reason == "length"``; its token count
reached the budget; with greedy decoding, the output at this budget is a proper prefix of the same item's output at
a larger budget (the larger run kept going where this one was cut); or it opened a ``<think>`` block it never
closed. lm-eval logs carry no finish_reason, so the prefix rule is what works on them; at the largest budget of a
sweep nothing larger exists and the rate is reported as unknown unless other evidence is there.

The check reports, per arm and budget, the share of outputs that hit the cap (Wilson interval), the delta at each
budget (the decision inference of the significance check), the change of the gain between the claimed and each
larger budget (paired t of the per-item difference of differences; ``Context.perturbations``), and the delta on the
items neither arm truncated at the claimed budget. It flags, on evidence only, a gain shown to shrink beyond the
margin, vanish or reverse as the budget grows, and a gain shown to come from one arm being cut off more often.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from audit import stats
from audit.checks._common import Context, fmt_ci, fmt_delta, item_evidence
from audit.findings import Finding
from audit.records import DEFAULT_VARIANT

NAME = "truncation"
# The role of the row that holds the delta on the items neither arm truncated (the report shows it).
UNTRUNCATED_ROLE = "items neither arm truncated"


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    think_open: str = Field("<think>", description="marker that opens a reasoning block")
    think_close: str = Field("</think>", description="marker that closes it; an open block without it is truncated")
    high_rate: float = Field(0.1, ge=0, le=1, description="a truncation rate above this at the claimed budget is reported")


def truncation_flags(ctx: Context, arm: str, params: Params, variant: str = DEFAULT_VARIANT):
    """Per item × budget: 1.0 truncated, 0.0 not, NaN unknown; and the evidence used for each budget.

    Computed once per records (the check and the report's item browser both ask); treat the arrays as read-only.
    """
    key = ("truncation_flags", arm, variant, params.model_dump_json())
    cache = ctx.records._cache
    if key not in cache:
        cache[key] = _truncation_flags(ctx.records, arm, params, variant)
    return cache[key]


def _truncation_flags(rec, arm: str, params: Params, variant: str):
    texts = rec.texts(arm, variant)
    finish = rec.column_wide(arm, "finish_reason", variant)
    tokens = rec.column_wide(arm, "completion_tokens", variant)
    budgets = list(texts.columns)
    out = {}
    evidence = {}
    for j, b in enumerate(budgets):
        flags = np.full(len(texts), np.nan)
        ev: dict[str, int] = {}
        fr = finish[b].to_numpy(dtype=object)
        known = np.array([x in ("length", "stop") for x in fr])
        flags[known] = np.array([x == "length" for x in fr[known]], dtype=float)
        if known.any():
            ev["finish_reason"] = int(known.sum())
        tk = tokens[b].to_numpy(dtype=float)
        use = np.isnan(flags) & ~np.isnan(tk)
        flags[use] = (tk[use] >= b).astype(float)
        if use.any():
            ev["token count"] = int(use.sum())
        if j + 1 < len(budgets):
            nxt = budgets[j + 1]
            small, large = texts[b].to_numpy(dtype=object), texts[nxt].to_numpy(dtype=object)
            pending = np.flatnonzero(np.isnan(flags))
            nonprefix = 0
            for i in pending:
                s, l_ = small[i], large[i]
                if not isinstance(s, str) or not isinstance(l_, str):
                    continue
                if s == l_:
                    flags[i] = 0.0
                elif l_.startswith(s):
                    flags[i] = 1.0
                else:
                    nonprefix += 1
            if len(pending):
                ev[f"prefix of budget {nxt}"] = int(len(pending) - nonprefix)
            if nonprefix:
                ev["not a prefix (sampling or non-determinism)"] = nonprefix
        opened = np.array([isinstance(s, str) and params.think_open in s and params.think_close not in s
                           for s in texts[b].to_numpy(dtype=object)])
        think = np.isnan(flags) & opened
        flags[think] = 1.0
        if think.any():
            ev["unclosed think"] = int(think.sum())
        out[b] = flags
        evidence[b] = ev
    return texts.index.to_numpy(), out, evidence


def run(ctx: Context, params: Params) -> list[Finding]:
    rec = ctx.records
    budgets = rec.budgets()
    cb = ctx.claimed_budget
    prov = ctx.provenance(rates="Wilson score interval", delta="the decision inference (see significance)",
                          truncation_rule="finish_reason, token count ≥ budget, greedy prefix of a larger budget, unclosed think")
    findings: list[Finding] = []
    flags: dict[str, dict] = {}
    ids = None
    rate_rows = []
    for arm in ("baseline", "treatment"):
        ids, f, ev = truncation_flags(ctx, arm, params)
        flags[arm] = f
        for b in budgets:
            x = f[b]
            known = x[~np.isnan(x)]
            k, n = int(known.sum()), int(len(known))
            iv = stats.wilson(k, n, level=ctx.level)
            rate_rows.append({"arm": arm, "budget": b, "truncated": k, "known": n, "items": int(len(x)),
                              "rate": k / n if n else math.nan, "ci_low": iv.low, "ci_high": iv.high,
                              "ci_method": iv.method, "evidence": ", ".join(f"{kk}: {vv}" for kk, vv in ev[b].items())
                              or "none", "reason": None if n else
                              "no evidence: no finish_reason or token counts, and no larger budget to compare with"})
    findings.append(Finding(NAME, "rates", "info", "Share of outputs that hit the generation budget, per arm and budget",
                            detail="Unknown where no evidence exists (see each row's reason).", rows=rate_rows,
                            provenance=prov))
    if cb is None or ctx.cell(cb) is None:
        findings.append(Finding(NAME, "no_claimed_budget", "inconclusive", "The claimed budget has no records",
                                severity="major", impact="inconclusive", provenance=prov))
        return findings

    claimed = ctx.cell(cb)
    delta_rows = [ctx.cell(b).row(role="claimed" if b == cb else ("larger" if b > cb else "smaller"))
                  for b in budgets if ctx.cell(b) is not None]
    findings.append(Finding(NAME, "per_budget", "info",
                            "Delta at each budget: " + ", ".join(f"{r['budget']}: {fmt_delta(r['delta'])}" for r in delta_rows),
                            rows=delta_rows, provenance=prov))

    # How the gain moves from the claimed budget to every larger one: the audit-wide break rule
    # (Context.perturbations: change of the gain beyond the margin, Holm over every perturbation).
    p_claimed = rec.paired(ctx.claimed_scoring, cb)
    for pt in [q for q in ctx.perturbations() if q.kind == "budget"]:
        big = pt.cell
        b = big.budget
        p_big = rec.paired(ctx.claimed_scoring, b)
        head = (f"delta {fmt_delta(claimed.delta.value)} {fmt_ci(claimed.interval)} at {cb} tokens → "
                f"{fmt_delta(big.delta.value)} {fmt_ci(big.interval)} at {b}")
        code, outcome, sev, impact, sentence = ctx.judge(pt)
        stat = {"claimed_budget": cb, "delta_claimed": claimed.delta.value, **ctx.perturbation_stat(pt)}
        if outcome != "flag":
            findings.append(Finding(NAME, "holds_at_budget" if code == "holds" else code,
                                    "pass" if code == "holds" else "info",
                                    f"{sentence[0].upper()}{sentence[1:]}: {head}", detail=ctx.change_text(pt),
                                    statistic=stat, provenance=prov))
            continue
        common = np.intersect1d(p_claimed.item_ids, p_big.item_ids)
        fc = p_claimed.frame.set_index("item_id").loc[common]
        fb = p_big.frame.set_index("item_id").loc[common]
        moved = ((fb["score_t"] - fb["score_b"]).to_numpy() != (fc["score_t"] - fc["score_b"]).to_numpy())
        mask = pd.Index(p_big.item_ids).isin(common[moved])  # hashed: np.isin sorts object ids (seconds at 25k)
        ev = item_evidence(p_big, mask, extra={
            "baseline_output_at_claimed": _aligned(p_claimed, p_big, "text_b"),
            "treatment_output_at_claimed": _aligned(p_claimed, p_big, "text_t"),
            "baseline_score_at_claimed": _aligned(p_claimed, p_big, "score_b"),
            "treatment_score_at_claimed": _aligned(p_claimed, p_big, "score_t")})
        what = {"reverses": "The gain reverses", "vanishes": "The gain vanishes"}.get(
            code, f"The gain shrinks by more than the margin ±{pt.margin:.3g}")
        cut = _cut_note(flags, ids, p_claimed, cb, ctx.alpha)
        findings.append(Finding(NAME, code, "flag",
                                f"{what} when the generation budget grows from {cb} to {b} tokens"
                                + (f", and at {cb} tokens {cut}" if cut else "") + f": {head}",
                                detail=ctx.change_text(pt), severity=sev, impact=impact, statistic=stat, evidence=ev,
                                provenance=prov))

    # Items neither arm truncated at the claimed budget.
    tb, tt = flags["baseline"][cb], flags["treatment"][cb]
    order = np.searchsorted(ids, p_claimed.item_ids)
    tb, tt = tb[order], tt[order]
    known = ~np.isnan(tb) & ~np.isnan(tt)
    if known.sum() == 0:
        findings.append(Finding(NAME, "untruncated_unknown", "inconclusive",
                                f"Which outputs hit the cap at the claimed budget ({cb}) is unknown",
                                detail="No finish_reason, token counts, larger budget or think markers to tell from. "
                                       "Add logs at a larger budget, or logs with finish_reason.",
                                severity="minor", impact="none", provenance=prov))
        return findings
    rb, rt = float(np.nanmean(tb)), float(np.nanmean(tt))
    clean = known & (tb == 0) & (tt == 0)
    n_clean = int(clean.sum())
    both = known
    asym = stats.mcnemar_paired(tb[both], tt[both], alternative="two-sided")
    if n_clean >= 2:
        clean_inf = stats.paired_inference(p_claimed.baseline[clean], p_claimed.treatment[clean], level=ctx.level)
        sub_value, sub_iv = clean_inf.value, clean_inf.interval
    else:
        clean_inf = None
        sub_value = float(np.mean(p_claimed.treatment[clean] - p_claimed.baseline[clean])) if n_clean else math.nan
        sub_iv = stats.Interval.nan(ctx.level, "paired", f"{n_clean} untruncated item(s): need at least 2")
    stat = {"budget": cb, "rate_baseline": rb, "rate_treatment": rt, "n_untruncated": n_clean,
            "delta_untruncated": sub_value, "ci_low": sub_iv.low, "ci_high": sub_iv.high,
            "delta_all": claimed.delta.value, "asymmetry_p": asym.p_value, "asymmetry_test": asym.method}
    untr_row = {"variant": DEFAULT_VARIANT, "budget": cb, "scoring": ctx.claimed_scoring, "n": n_clean,
                "baseline": float(np.mean(p_claimed.baseline[clean])) if n_clean else math.nan,
                "treatment": float(np.mean(p_claimed.treatment[clean])) if n_clean else math.nan,
                "delta": sub_value, "ci_low": sub_iv.low, "ci_high": sub_iv.high,
                "ci_method": sub_iv.method, "role": UNTRUNCATED_ROLE}
    # The gain "comes from truncation" only on evidence: the arms are cut off at significantly different rates
    # (continuity-corrected McNemar on the truncation flags, α) and, on the items neither arm truncated, the gain is shown to
    # be below the margin (H0 gain ≥ margin rejected one-sided at α/2) — not merely not significant there.
    asym_inf = stats.paired_inference(tb[both], tt[both], level=ctx.level) if both.sum() >= 2 else None
    one_sided = asym_inf is not None and asym_inf.test.p_value < ctx.alpha
    margin = ctx.margin if math.isfinite(ctx.margin) else 0.0
    p_clean = (clean_inf.p_value(ctx.sign * margin, "less" if ctx.sign > 0 else "greater") if clean_inf
               else math.nan)
    stat.update(p_clean_below_margin=p_clean, margin=margin,
                clean_ci_low=clean_inf.interval.low if clean_inf else math.nan,
                clean_ci_high=clean_inf.interval.high if clean_inf else math.nan,
                asymmetry_score_p=asym_inf.test.p_value if asym_inf else math.nan)
    gain_gone = (ctx.sign * claimed.delta.value > 0 and math.isfinite(p_clean) and p_clean < ctx.alpha / 2)
    if one_sided and gain_gone:
        worse = "baseline" if rb > rt else "treatment"
        trunc_mask = np.zeros(len(p_claimed.item_ids), dtype=bool)
        trunc_mask[(tb == 1) if worse == "baseline" else (tt == 1)] = True
        findings.append(Finding(
            NAME, "from_truncation", "flag",
            f"The gain comes from truncation of the {worse}: {rb:.0%} of baseline vs {rt:.0%} of treatment outputs hit "
            f"the {cb}-token cap; " + (f"on the {n_clean} items neither arm truncated the delta is "
                                       f"{fmt_delta(clean_inf.value)} {fmt_ci(clean_inf.interval)}"),
            detail=f"Truncation asymmetry: McNemar p = {asym_inf.test.p_value:.3g} (exact {asym.method} "
                   f"p = {asym.p_value:.3g}). On the untruncated items H0 'gain ≥ margin {margin:.3g}' is rejected: "
                   f"one-sided p = {p_clean:.3g} < α/2.", severity="critical",
            impact="fragile", statistic=stat, rows=[untr_row], provenance=prov,
            evidence=item_evidence(p_claimed, trunc_mask)))
    elif one_sided and ctx.sign * claimed.delta.value > 0 and n_clean < 2:
        findings.append(Finding(
            NAME, "confounded_by_truncation", "flag",
            f"The gain cannot be told apart from truncation: {rb:.0%} of baseline vs {rt:.0%} of treatment outputs hit "
            f"the {cb}-token cap and {n_clean} item(s) escaped it in both arms",
            detail=f"Truncation asymmetry: McNemar p = {asym_inf.test.p_value:.3g} (exact {asym.method} "
                   f"p = {asym.p_value:.3g}). With fewer than 2 untruncated items the gain on them cannot be tested; "
                   "compare with a larger budget.", severity="major", impact="none", statistic=stat,
            rows=[untr_row], provenance=prov))
    elif one_sided and ctx.sign * claimed.delta.value > 0:
        findings.append(Finding(
            NAME, "asymmetric_truncation", "info",
            f"The arms hit the {cb}-token cap at different rates ({rb:.0%} baseline, {rt:.0%} treatment), but the gain "
            f"is not shown to vanish on the {n_clean} items neither arm truncated: "
            + (f"{fmt_delta(clean_inf.value)} {fmt_ci(clean_inf.interval)}" if clean_inf else "too few items"),
            detail=f"Truncation asymmetry: McNemar p = {asym_inf.test.p_value:.3g}.", statistic=stat,
            rows=[untr_row], provenance=prov))
    elif max(rb, rt) > params.high_rate:
        findings.append(Finding(
            NAME, "high_rate", "flag",
            f"Many outputs hit the {cb}-token cap ({rb:.0%} baseline, {rt:.0%} treatment); on the {n_clean} items "
            f"neither arm truncated the delta is {fmt_delta(sub_value)} {fmt_ci(sub_iv)}",
            detail=f"Truncation asymmetry: {asym.method} p = {asym.p_value:.3g}.", severity="minor", impact="none",
            statistic=stat, rows=[untr_row], provenance=prov))
    else:
        findings.append(Finding(
            NAME, "untruncated", "pass",
            f"Few outputs hit the {cb}-token cap ({rb:.0%} baseline, {rt:.0%} treatment); delta on untruncated items "
            f"{fmt_delta(sub_value)} {fmt_ci(sub_iv)}", statistic=stat, rows=[untr_row], provenance=prov))
    return findings


def _cut_note(flags: dict, ids, p_claimed, cb: int, alpha: float) -> str:
    """'X% of baseline vs Y% of treatment outputs were cut off' when the arms' truncation rates at the claimed budget
    differ significantly (McNemar test (continuity-corrected) on the paired flags), else ''."""
    order = np.searchsorted(ids, p_claimed.item_ids)
    tb, tt = flags["baseline"][cb][order], flags["treatment"][cb][order]
    known = ~np.isnan(tb) & ~np.isnan(tt)
    if known.sum() < 2:
        return ""
    inf = stats.paired_inference(tb[known], tt[known])
    if not (inf.test.p_value < alpha):
        return ""
    return (f"{np.mean(tb[known]):.0%} of baseline vs {np.mean(tt[known]):.0%} of treatment outputs were cut off "
            "by the budget")


def _aligned(src, dst, column: str) -> np.ndarray:
    """``column`` of paired frame ``src`` in the item order of ``dst`` (None where ``src`` lacks the item)."""
    return src.frame.set_index("item_id")[column].reindex(dst.item_ids).to_numpy(dtype=object)
