"""truncation: is the gain an artifact of the generation budget?

An output *hit the cap* when (in order of evidence): the server said ``finish_reason == "length"``; its token count
reached the budget; with greedy decoding, the output at this budget is a proper prefix of the same item's output at
a larger budget (the larger run kept going where this one was cut); or it opened a ``<think>`` block it never
closed. lm-eval logs carry no finish_reason, so the prefix rule is what works on them; at the largest budget of a
sweep nothing larger exists and the rate is reported as unknown unless other evidence is there. The flags are a
fact of the records (``audit.records.truncation_frame``, derived once by ``audit.verify`` with this check's think
markers); this check reads them.

The check reports, per arm and budget, the share of outputs that hit the cap (Wilson interval), the delta at each
budget (the decision inference of the significance check), the change of the gain between the claimed and each
larger budget (paired t of the per-item difference of differences; ``Context.perturbations``), and the delta on the
items neither arm truncated at the claimed budget. It flags, on evidence only, a gain shown to shrink beyond the
margin, vanish or reverse as the budget grows, and a gain shown to come from one arm being cut off more often.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from audit.checks._common import CheckSpec, Context, MeasuredCell, fmt_ci, fmt_delta, item_evidence

from audit import stats
from audit.check_params import TruncationParams
from audit.findings import ForestEstimate, EstimateKind, Finding, Impact, Outcome, RateTable, Severity, TableKind
from audit.records import DEFAULT_VARIANT, Paired

NAME = "truncation"
# The role of the row that holds the delta on the items neither arm truncated (the report shows it).
UNTRUNCATED_ROLE = "items neither arm truncated"


Params = TruncationParams


def run(ctx: Context, params: Params) -> list[Finding]:
    rec = ctx.samples
    cb = ctx.claimed_budget
    prov = ctx.provenance(
        rates="Wilson score interval",
        delta="the decision inference (see significance)",
        truncation_rule="finish_reason, token count ≥ budget, greedy prefix of a larger budget, unclosed think",
    )
    findings: list[Finding] = [_rates_finding(ctx, prov)]
    if rec.gaps:
        findings.append(_gaps_finding(rec, prov))
    claimed = ctx.cell(cb) if cb is not None else None
    if cb is None or claimed is None:
        findings.append(
            Finding(
                NAME,
                "no_claimed_budget",
                Outcome.inconclusive,
                "The claimed budget has no records",
                severity=Severity.major,
                impact=Impact.inconclusive,
                provenance=prov,
            )
        )
        return findings

    delta_rows = [
        c.row(role="claimed" if b == cb else ("larger" if b > cb else "smaller"))
        for b in rec.budgets()
        if (c := ctx.cell(b)) is not None
    ]
    findings.append(
        Finding(
            NAME,
            "per_budget",
            Outcome.info,
            "Delta at each budget: " + ", ".join(f"{r['budget']}: {fmt_delta(r['delta'])}" for r in delta_rows),
            rows=delta_rows,
            provenance=prov,
        )
    )
    findings.extend(_budget_findings(ctx, claimed, prov))
    findings.append(_untruncated_finding(ctx, params, claimed, prov))
    return findings


def _rates_finding(ctx: Context, prov: dict) -> Finding:
    """The share of outputs that hit the cap, per arm and budget (Wilson), as the truncation rate table."""
    rec = ctx.samples
    budgets = rec.budgets()
    rate_rows = []
    for arm in ("baseline", "treatment"):
        _, f, ev = rec.truncation(arm)
        for b in budgets:
            x = f[b]
            known = x[~np.isnan(x)]
            k, n = int(known.sum()), int(len(known))
            iv = stats.wilson(k, n, level=ctx.level)
            rate_rows.append(
                {
                    "arm": arm,
                    "budget": b,
                    "truncated": k,
                    "known": n,
                    "items": int(len(x)),
                    "rate": k / n if n else math.nan,
                    "ci_low": iv.low,
                    "ci_high": iv.high,
                    "ci_method": iv.method,
                    "evidence": ", ".join(f"{kk}: {vv}" for kk, vv in ev[b].items()) or "none",
                    "reason": None
                    if n
                    else "no evidence: no finish_reason or token counts, and no larger budget to compare with",
                }
            )
    return Finding(
        NAME,
        "rates",
        Outcome.info,
        "Share of outputs that hit the generation budget, per arm and budget",
        detail="Unknown where no evidence exists (see each row's reason).",
        rows=rate_rows,
        table=RateTable.of(TableKind.truncation, rate_rows, count="truncated"),
        provenance=prov,
    )


def _gaps_finding(rec, prov: dict) -> Finding:
    """Which budgets lack items the others hold (comparisons across budgets then use the shared items)."""
    return Finding(
        NAME,
        "budgets_hold_different_items",
        Outcome.info,
        "The budgets hold different items: " + "; ".join(g.sentence() for g in rec.gaps),
        detail="Every comparison across budgets uses the items both budgets hold (shared_items in each "
        "finding); each budget's truncation rate uses its own items.",
        statistic={
            "gaps": [
                {
                    "variant": g.variant,
                    "budget": g.budget,
                    "n_lacking": len(g.lacking),
                    "lacking": list(g.lacking[:20]),
                    "present_at": list(g.present_at),
                }
                for g in rec.gaps
            ]
        },
        provenance=prov,
    )


def _budget_findings(ctx: Context, claimed: MeasuredCell, prov: dict) -> list[Finding]:
    """How the gain moves from the claimed budget to every larger one: the audit-wide break rule
    (Context.perturbations: change of the gain beyond the margin, Holm over every perturbation)."""
    rec = ctx.samples
    cb = ctx.claimed_budget
    findings: list[Finding] = []
    p_claimed = rec.paired(claimed.scoring, cb)  # the claimed cell's scoring is ctx.claimed_scoring
    for pt in [q for q in ctx.perturbations() if q.kind == "budget"]:
        big = pt.cell
        b = big.budget
        head = (
            f"delta {fmt_delta(claimed.delta.value)} {fmt_ci(claimed.interval)} at {cb} tokens → "
            f"{fmt_delta(big.delta.value)} {fmt_ci(big.interval)} at {b}"
        )
        code, outcome, sev, impact, sentence = ctx.judge(pt)
        stat = {"claimed_budget": cb, "delta_claimed": claimed.delta.value, **ctx.perturbation_stat(pt)}
        if outcome != Outcome.flag:
            findings.append(
                Finding(
                    NAME,
                    "holds_at_budget" if code == "holds" else code,
                    Outcome.passed if code == "holds" else Outcome.info,
                    f"{sentence[0].upper()}{sentence[1:]}: {head}",
                    detail=ctx.change_text(pt),
                    statistic=stat,
                    provenance=prov,
                )
            )
            continue
        what = {"reverses": "The gain reverses", "vanishes": "The gain vanishes"}.get(
            code, f"The gain shrinks by more than the margin ±{pt.margin:.3g}"
        )
        cut = _cut_note(p_claimed, ctx.alpha)
        findings.append(
            Finding(
                NAME,
                code,
                Outcome.flag,
                f"{what} when the generation budget grows from {cb} to {b} tokens"
                + (f", and at {cb} tokens {cut}" if cut else "")
                + f": {head}",
                detail=ctx.change_text(pt),
                severity=sev,
                impact=impact,
                statistic=stat,
                evidence=_moved_evidence(ctx, claimed.scoring, b),
                provenance=prov,
            )
        )
    return findings


def _moved_evidence(ctx: Context, scoring: str, b: int | None) -> list[dict]:
    """The items whose gain changes between the claimed budget and budget ``b``, with their outputs at both
    (``scoring``: the claimed one)."""
    rec, cb = ctx.samples, ctx.claimed_budget
    p_big = rec.paired(scoring, b)
    both = rec.joined([(scoring, cb), (scoring, b)])
    moved = both.take(1, "gain") != both.take(0, "gain")
    moved_ids = set(both.item_ids[moved].tolist())  # hashed: np.isin sorts object ids
    mask = np.fromiter(map(moved_ids.__contains__, p_big.item_ids.tolist()), dtype=bool, count=p_big.n)
    at_claimed = rec.joined([(scoring, b), (scoring, cb)], how="left")
    return item_evidence(
        p_big,
        mask,
        extra={
            "baseline_output_at_claimed": at_claimed.take(1, "text_b"),
            "treatment_output_at_claimed": at_claimed.take(1, "text_t"),
            "baseline_score_at_claimed": at_claimed.take(1, "score_b"),
            "treatment_score_at_claimed": at_claimed.take(1, "score_t"),
        },
    )


@dataclass(frozen=True)
class _Untruncated:
    """The claimed cell on the items neither arm truncated, and the arms' truncation asymmetry there."""

    p: Paired  # the claimed cell's paired records
    tb: np.ndarray  # per-item truncation flags (1, 0, NaN unknown)
    tt: np.ndarray
    rb: float  # truncation rates
    rt: float
    n_clean: int  # items neither arm truncated
    clean_inf: stats.PairedInference | None  # the delta on them (None below 2 items)
    sub_value: float
    sub_iv: stats.Interval
    asym: stats.TestResult  # exact McNemar on the truncation flags
    asym_inf: stats.PairedInference | None  # continuity-corrected McNemar with its interval
    margin: float
    p_clean: float  # one-sided p of H0 "gain ≥ margin" on the untruncated items
    stat: dict
    row: dict
    drawn: list


def _untruncated_finding(ctx: Context, params: Params, claimed: MeasuredCell, prov: dict) -> Finding:
    """Whether the gain comes from one arm being cut off more often (flags read from the paired records)."""
    cb = ctx.claimed_budget
    p_claimed = ctx.samples.paired(claimed.scoring, cb)  # the claimed cell's scoring is ctx.claimed_scoring
    tb, tt = p_claimed.frame["truncated_b"].to_numpy(dtype=float), p_claimed.frame["truncated_t"].to_numpy(dtype=float)
    known = ~np.isnan(tb) & ~np.isnan(tt)
    if known.sum() == 0:
        return Finding(
            NAME,
            "untruncated_unknown",
            Outcome.inconclusive,
            f"Which outputs hit the cap at the claimed budget ({cb}) is unknown",
            detail="No finish_reason, token counts, larger budget or think markers to tell from. "
            "Add logs at a larger budget, or logs with finish_reason.",
            severity=Severity.minor,
            impact=Impact.none,
            provenance=prov,
        )
    u = _untruncated(ctx, claimed, p_claimed, tb, tt, known)
    # The gain "comes from truncation" only on evidence: the arms are cut off at significantly different rates
    # (continuity-corrected McNemar on the truncation flags, α) and, on the items neither arm truncated, the gain is
    # shown to be below the margin (H0 gain ≥ margin rejected one-sided at α/2) — not merely not significant there.
    # (p_clean is finite only where clean_inf exists.)
    if u.asym_inf is not None and u.asym_inf.test.p_value < ctx.alpha and ctx.sign * claimed.delta.value > 0:
        if u.clean_inf is not None and math.isfinite(u.p_clean) and u.p_clean < ctx.alpha / 2:
            return _from_truncation(ctx, u, u.asym_inf, u.clean_inf, prov)
        return _asymmetric_truncation(ctx, u, u.asym_inf, prov)
    return _truncation_level(ctx, params, u, prov)


def _untruncated(ctx: Context, claimed, p_claimed, tb: np.ndarray, tt: np.ndarray, known: np.ndarray) -> _Untruncated:
    """The delta on the items neither arm truncated, the asymmetry tests, and the finding's numbers and exhibits."""
    cb = ctx.claimed_budget
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
    stat = {
        "budget": cb,
        "rate_baseline": rb,
        "rate_treatment": rt,
        "n_untruncated": n_clean,
        "delta_untruncated": sub_value,
        "ci_low": sub_iv.low,
        "ci_high": sub_iv.high,
        "delta_all": claimed.delta.value,
        "asymmetry_p": asym.p_value,
        "asymmetry_test": asym.method,
    }
    untr_row = {
        "variant": DEFAULT_VARIANT,
        "budget": cb,
        "scoring": ctx.claimed_scoring,
        "n": n_clean,
        "baseline": float(np.mean(p_claimed.baseline[clean])) if n_clean else math.nan,
        "treatment": float(np.mean(p_claimed.treatment[clean])) if n_clean else math.nan,
        "delta": sub_value,
        "ci_low": sub_iv.low,
        "ci_high": sub_iv.high,
        "ci_method": sub_iv.method,
        "role": UNTRUNCATED_ROLE,
    }
    drawn = _untruncated_estimate(ctx, n_clean, sub_value, sub_iv)
    asym_inf = stats.paired_inference(tb[both], tt[both], level=ctx.level) if both.sum() >= 2 else None
    margin = ctx.margin if math.isfinite(ctx.margin) else 0.0
    p_clean = clean_inf.p_value(ctx.sign * margin, "less" if ctx.sign > 0 else "greater") if clean_inf else math.nan
    stat.update(
        p_clean_below_margin=p_clean,
        margin=margin,
        clean_ci_low=clean_inf.interval.low if clean_inf else math.nan,
        clean_ci_high=clean_inf.interval.high if clean_inf else math.nan,
        asymmetry_score_p=asym_inf.test.p_value if asym_inf else math.nan,
    )
    return _Untruncated(
        p_claimed,
        tb,
        tt,
        rb,
        rt,
        n_clean,
        clean_inf,
        sub_value,
        sub_iv,
        asym,
        asym_inf,
        margin,
        p_clean,
        stat,
        untr_row,
        drawn,
    )


def _untruncated_estimate(ctx: Context, n_clean: int, sub_value: float, sub_iv: stats.Interval) -> list[ForestEstimate]:
    """The forest-plot estimate of the delta on the items neither arm truncated."""
    cb = ctx.claimed_budget
    return [
        ForestEstimate(
            kind=EstimateKind.untruncated,
            label=f"{cb} tok · {ctx.claimed_scoring} · untruncated items (n={n_clean})",
            variant=DEFAULT_VARIANT,
            budget=cb,
            scoring=ctx.claimed_scoring,
            n=n_clean,
            delta=sub_value,
            ci_low=sub_iv.low,
            ci_high=sub_iv.high,
            ci_method=sub_iv.method,
        )
    ]


def _from_truncation(
    ctx: Context, u: _Untruncated, asym_inf: stats.PairedInference, clean_inf: stats.PairedInference, prov: dict
) -> Finding:
    """The gain is shown to come from truncation of the arm cut off more often (critical, fragile)."""
    cb, rb, rt, n_clean = ctx.claimed_budget, u.rb, u.rt, u.n_clean
    worse = "baseline" if rb > rt else "treatment"
    trunc_mask = np.zeros(len(u.p.item_ids), dtype=bool)
    trunc_mask[(u.tb == 1) if worse == "baseline" else (u.tt == 1)] = True
    return Finding(
        NAME,
        "from_truncation",
        Outcome.flag,
        f"The gain comes from truncation of the {worse}: {rb:.0%} of baseline vs {rt:.0%} of treatment outputs hit "
        f"the {cb}-token cap; "
        + (
            f"on the {n_clean} items neither arm truncated the delta is "
            f"{fmt_delta(clean_inf.value)} {fmt_ci(clean_inf.interval)}"
        ),
        detail=f"Truncation asymmetry: McNemar p = {asym_inf.test.p_value:.3g} (exact {u.asym.method} "
        f"p = {u.asym.p_value:.3g}). On the untruncated items H0 'gain ≥ margin {u.margin:.3g}' is rejected: "
        f"one-sided p = {u.p_clean:.3g} < α/2.",
        severity=Severity.critical,
        impact=Impact.fragile,
        statistic=u.stat,
        rows=[u.row],
        estimates=u.drawn,
        provenance=prov,
        evidence=item_evidence(u.p, trunc_mask),
    )


def _asymmetric_truncation(ctx: Context, u: _Untruncated, asym_inf: stats.PairedInference, prov: dict) -> Finding:
    """The arms are cut off at different rates, but the gain is not shown to vanish without them."""
    cb, rb, rt, n_clean = ctx.claimed_budget, u.rb, u.rt, u.n_clean
    if n_clean < 2:
        return Finding(
            NAME,
            "confounded_by_truncation",
            Outcome.flag,
            f"The gain cannot be told apart from truncation: {rb:.0%} of baseline vs {rt:.0%} of treatment outputs hit "
            f"the {cb}-token cap and {n_clean} item(s) escaped it in both arms",
            detail=f"Truncation asymmetry: McNemar p = {asym_inf.test.p_value:.3g} (exact {u.asym.method} "
            f"p = {u.asym.p_value:.3g}). With fewer than 2 untruncated items the gain on them cannot be tested; "
            "compare with a larger budget.",
            severity=Severity.major,
            impact=Impact.none,
            statistic=u.stat,
            rows=[u.row],
            estimates=u.drawn,
            provenance=prov,
        )
    return Finding(
        NAME,
        "asymmetric_truncation",
        Outcome.info,
        f"The arms hit the {cb}-token cap at different rates ({rb:.0%} baseline, {rt:.0%} treatment), but the gain "
        f"is not shown to vanish on the {n_clean} items neither arm truncated: "
        + (f"{fmt_delta(u.clean_inf.value)} {fmt_ci(u.clean_inf.interval)}" if u.clean_inf else "too few items"),
        detail=f"Truncation asymmetry: McNemar p = {asym_inf.test.p_value:.3g}.",
        statistic=u.stat,
        rows=[u.row],
        estimates=u.drawn,
        provenance=prov,
    )


def _truncation_level(ctx: Context, params: Params, u: _Untruncated, prov: dict) -> Finding:
    """No asymmetry behind a gain: whether many outputs hit the cap (minor) or few did (pass)."""
    cb, rb, rt = ctx.claimed_budget, u.rb, u.rt
    if max(rb, rt) > params.high_rate:
        return Finding(
            NAME,
            "high_rate",
            Outcome.flag,
            f"Many outputs hit the {cb}-token cap ({rb:.0%} baseline, {rt:.0%} treatment); on the {u.n_clean} items "
            f"neither arm truncated the delta is {fmt_delta(u.sub_value)} {fmt_ci(u.sub_iv)}",
            detail=f"Truncation asymmetry: {u.asym.method} p = {u.asym.p_value:.3g}.",
            severity=Severity.minor,
            impact=Impact.none,
            statistic=u.stat,
            rows=[u.row],
            estimates=u.drawn,
            provenance=prov,
        )
    return Finding(
        NAME,
        "untruncated",
        Outcome.passed,
        f"Few outputs hit the {cb}-token cap ({rb:.0%} baseline, {rt:.0%} treatment); delta on untruncated items "
        f"{fmt_delta(u.sub_value)} {fmt_ci(u.sub_iv)}",
        statistic=u.stat,
        rows=[u.row],
        estimates=u.drawn,
        provenance=prov,
    )


def _cut_note(p_claimed, alpha: float) -> str:
    """'X% of baseline vs Y% of treatment outputs were cut off' when the arms' truncation rates at the claimed budget
    differ significantly (McNemar test (continuity-corrected) on the paired flags), else ''."""
    tb = p_claimed.frame["truncated_b"].to_numpy(dtype=float)
    tt = p_claimed.frame["truncated_t"].to_numpy(dtype=float)
    known = ~np.isnan(tb) & ~np.isnan(tt)
    if known.sum() < 2:
        return ""
    inf = stats.paired_inference(tb[known], tt[known])
    if not (inf.test.p_value < alpha):
        return ""
    return (
        f"{np.mean(tb[known]):.0%} of baseline vs {np.mean(tt[known]):.0%} of treatment outputs were cut off "
        "by the budget"
    )


SPEC = CheckSpec(
    NAME,
    run,
    Params,
    needs_samples=True,
    description="outputs that hit the generation budget; the delta per budget and on untruncated items",
)
"""This check in the registry (:data:`audit.checks.REGISTRY`)."""
