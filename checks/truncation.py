"""truncation: is the gain an artifact of the generation budget?

An output *hit the cap* when (in order of evidence): the server said ``finish_reason == "length"``; its token count
reached the budget; with greedy decoding, the output at this budget is a proper prefix of the same item's output at
a larger budget (the larger run kept going where this one was cut); or it opened a ``<think>`` block it never
closed. lm-eval logs carry no finish_reason, so the prefix rule is what works on them; at the largest budget of a
sweep nothing larger exists and the rate is reported as unknown unless other evidence is there.

The check reports, per arm and budget, the share of outputs that hit the cap (Wilson interval), the delta at each
budget (paired bootstrap CI), the change of the delta between the claimed and each larger budget (paired bootstrap
of the per-item difference of differences), and the delta on the items neither arm truncated at the claimed budget.
It flags a gain that shrinks, vanishes or reverses as the budget grows, and a gain that comes from one arm being
cut off more often than the other.
"""
from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from audit import stats
from audit.checks._common import Context, excludes_zero, fmt_ci, fmt_delta, item_evidence
from audit.findings import Finding
from audit.records import DEFAULT_VARIANT

NAME = "truncation"


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
    prov = ctx.provenance(rates="Wilson score interval", delta="paired bootstrap percentile",
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

    # How the delta moves from the claimed budget to every larger one.
    p_claimed = rec.paired(ctx.claimed_scoring, cb)
    claimed_sig = excludes_zero(claimed.interval) and ctx.sign * claimed.delta.value > 0
    for b in [b for b in budgets if b > cb]:
        big = ctx.cell(b)
        if big is None:
            continue
        p_big = rec.paired(ctx.claimed_scoring, b)
        d_claim = p_claimed.treatment - p_claimed.baseline
        d_big = p_big.treatment - p_big.baseline
        change = stats.paired_bootstrap_delta(d_claim, d_big, ctx.rng(f"truncation/change/{b}"),
                                              resamples=ctx.resamples, level=ctx.level)
        stat = {"claimed_budget": cb, "budget": b, "delta_claimed": claimed.delta.value, "delta_budget": big.delta.value,
                "ci_low": big.interval.low, "ci_high": big.interval.high, "change": change.value,
                "change_ci_low": change.interval.low, "change_ci_high": change.interval.high}
        moved = (d_big - d_claim) != 0
        ev = item_evidence(p_big, moved, extra={
            "baseline_output_at_claimed": p_claimed.frame["text_b"].to_numpy(dtype=object),
            "treatment_output_at_claimed": p_claimed.frame["text_t"].to_numpy(dtype=object),
            "baseline_score_at_claimed": p_claimed.baseline, "treatment_score_at_claimed": p_claimed.treatment})
        eff_big = ctx.sign * big.delta.value
        head = (f"delta {fmt_delta(claimed.delta.value)} {fmt_ci(claimed.interval)} at {cb} tokens → "
                f"{fmt_delta(big.delta.value)} {fmt_ci(big.interval)} at {b}")
        if ctx.sign * claimed.delta.value > 0 and eff_big < 0:
            # A reversal whose interval excludes 0 is evidence against the claim; a bare sign flip is a warning.
            sev = "critical" if excludes_zero(big.interval) or excludes_zero(change.interval) else "major"
            code, title = "reverses", f"The gain reverses at a larger budget: {head}"
        elif claimed_sig and not excludes_zero(big.interval):
            code, sev, title = "vanishes", "critical", f"The gain vanishes at a larger budget: {head}"
        elif ctx.sign * change.value < 0 and excludes_zero(change.interval):
            code, sev, title = "shrinks", "major", f"The gain shrinks at a larger budget: {head}"
        else:
            findings.append(Finding(NAME, "holds_at_budget", "pass", f"The delta holds at {b} tokens: {head}",
                                    statistic=stat, provenance=prov))
            continue
        findings.append(Finding(NAME, code, "flag", title,
                                detail=f"Change of the delta from {cb} to {b} tokens: {fmt_delta(change.value)} "
                                       f"{fmt_ci(change.interval)} (paired bootstrap over items of the per-item "
                                       "difference of differences).", severity=sev, impact="fragile",
                                statistic=stat, evidence=ev, provenance=prov))

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
    sub = stats.paired_bootstrap_delta(p_claimed.baseline[clean], p_claimed.treatment[clean],
                                       ctx.rng("truncation/untruncated"), resamples=ctx.resamples, level=ctx.level)
    both = known
    asym = stats.mcnemar_paired(tb[both], tt[both], alternative="two-sided")
    stat = {"budget": cb, "rate_baseline": rb, "rate_treatment": rt, "n_untruncated": n_clean,
            "delta_untruncated": sub.value, "ci_low": sub.interval.low, "ci_high": sub.interval.high,
            "delta_all": claimed.delta.value, "asymmetry_p": asym.p_value, "asymmetry_test": asym.method}
    untr_row = {"variant": DEFAULT_VARIANT, "budget": cb, "scoring": ctx.claimed_scoring, "n": n_clean,
                "baseline": float(np.mean(p_claimed.baseline[clean])) if n_clean else math.nan,
                "treatment": float(np.mean(p_claimed.treatment[clean])) if n_clean else math.nan,
                "delta": sub.value, "ci_low": sub.interval.low, "ci_high": sub.interval.high,
                "ci_method": sub.interval.method, "role": "items neither arm truncated"}
    one_sided = asym.p_value < ctx.alpha
    gain_gone = ctx.sign * claimed.delta.value > 0 and (n_clean < 2 or not (excludes_zero(sub.interval) and ctx.sign * sub.value > 0))
    if one_sided and gain_gone:
        worse = "baseline" if rb > rt else "treatment"
        trunc_mask = np.zeros(len(p_claimed.item_ids), dtype=bool)
        trunc_mask[(tb == 1) if worse == "baseline" else (tt == 1)] = True
        findings.append(Finding(
            NAME, "from_truncation", "flag",
            f"The gain comes from truncation of the {worse}: {rb:.0%} of baseline vs {rt:.0%} of treatment outputs hit "
            f"the {cb}-token cap; " + (f"on the {n_clean} items neither arm truncated the delta is "
                                       f"{fmt_delta(sub.value)} {fmt_ci(sub.interval)}" if n_clean
                                       else "no item escaped the cap in both arms"),
            detail=f"Truncation asymmetry: {asym.method} p = {asym.p_value:.3g}.", severity="critical",
            impact="fragile", statistic=stat, rows=[untr_row], provenance=prov,
            evidence=item_evidence(p_claimed, trunc_mask)))
    elif max(rb, rt) > params.high_rate:
        findings.append(Finding(
            NAME, "high_rate", "flag",
            f"Many outputs hit the {cb}-token cap ({rb:.0%} baseline, {rt:.0%} treatment); on the {n_clean} items "
            f"neither arm truncated the delta is {fmt_delta(sub.value)} {fmt_ci(sub.interval)}",
            detail=f"Truncation asymmetry: {asym.method} p = {asym.p_value:.3g}.", severity="minor", impact="none",
            statistic=stat, rows=[untr_row], provenance=prov))
    else:
        findings.append(Finding(
            NAME, "untruncated", "pass",
            f"Few outputs hit the {cb}-token cap ({rb:.0%} baseline, {rt:.0%} treatment); delta on untruncated items "
            f"{fmt_delta(sub.value)} {fmt_ci(sub.interval)}", statistic=stat, rows=[untr_row], provenance=prov))
    return findings
