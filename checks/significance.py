"""significance: does the claimed delta reproduce at the claimed setting, and what does the evidence refute?

The rule (README, "How the verdict is decided"), one test and the interval that inverts it, gains and reversals
alike:

- With per-item samples the design is paired: McNemar's test with continuity correction and Tango's score interval
  (same correction) for 0/1 outcomes, the paired t-test joined with Hall's bootstrap skewness-corrected t and their
  interval otherwise (and, on the long tail's side of differences too skewed for their number, a betting test for a
  bounded mean), the CR2 cluster-robust t (Bell–McCaffrey df) when items share a passage
  (:func:`audit.stats.paired_inference`). With reported counts only it is unpaired: the Miettinen–Nurminen score
  test and the score interval that inverts it, with Fisher's exact test and Newcombe's hybrid score interval shown
  beside.
- *reproduced*: the interval excludes 0 in the claimed direction (p < α).
- *not reproduced*: the interval excludes 0 in the other direction (a significant reversal), or the reported delta
  lies beyond the interval's far bound — H0 "the true delta is at least the reported one" rejected one-sided at
  α/2. A measured gain at least as large as reported is never a failure (an info note says so).
- otherwise *inconclusive*, with the power of the design at the reported delta (McNemar: Connor 1987 from the
  observed discordance; counts: exact Fisher power when n ≤ 300, else statsmodels' NormalIndPower) and, when the
  interval lies within ±margin, the statement that the delta is shown to be near zero (TOST).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from audit.checks._common import CheckSpec, Context, fmt_ci, fmt_delta

from audit import stats
from audit.breaks import read_gain
from audit.check_params import SignificanceParams
from audit.findings import ForestEstimate, EstimateKind, Finding, Impact, Outcome, Severity

NAME = "significance"
FEW_CLUSTERS = 30
# The largest cluster holding more than this many times its equal share 1/C of the items is reported (minor).
UNEQUAL_CLUSTERS = 2.0


Params = SignificanceParams


def run(ctx: Context, params: Params) -> list[Finding]:
    if ctx.records is not None:
        return _paired(ctx)
    return _from_counts(ctx)


def _paired(ctx: Context) -> list[Finding]:
    cell = ctx.cell(ctx.claimed_budget)
    where = f"budget {ctx.claimed_budget}, scoring {ctx.claimed_scoring!r}"
    if cell is None:
        return [
            Finding(
                NAME,
                "no_cell",
                Outcome.inconclusive,
                f"No paired records at the claimed setting ({where})",
                severity=Severity.major,
                impact=Impact.inconclusive,
            )
        ]
    if (deg := ctx.degenerate().get(ctx.claimed_scoring)) is not None:
        return [
            Finding(
                NAME,
                "degenerate_scoring",
                Outcome.inconclusive,
                f"The claimed scoring cannot tell the arms apart: {deg.sentence()}",
                detail="Every item of both arms has the same score, so no gain or loss can be measured under "
                "it: a floor or ceiling of the task, or a broken scoring — check the target (a whole "
                "worked solution where the final answer belongs?) and the extractor; audit validate "
                "warns of it too.",
                severity=Severity.major,
                impact=Impact.inconclusive,
                statistic={"scoring": deg.scoring, "value": deg.value, "rows": deg.rows},
            )
        ]
    inf = cell.inference
    prov = ctx.provenance(
        test=inf.test.method,
        ci=inf.interval.method,
        n=cell.n,
        design="paired",
        shown_beside="paired bootstrap percentile CI, paired CLT SE (Miller 2024)"
        + (", exact McNemar" if cell.exact is not None else ""),
    )
    if cell.n < 2:
        return [
            Finding(
                NAME,
                "too_few_items",
                Outcome.inconclusive,
                f"Only {cell.n} paired item(s) at {where}",
                detail="A delta needs at least two paired items for any interval.",
                severity=Severity.major,
                impact=Impact.inconclusive,
                provenance=prov,
            )
        ]
    reported = ctx.reported_delta()
    power = _paired_power(ctx, cell, reported)
    rows = [cell.row(role="claimed setting")]
    stat = _paired_stat(ctx, cell, reported, power)
    out = _decide(
        ctx,
        inf.value,
        inf.interval,
        inf.test.p_value,
        inf.test.method,
        lambda null, alt: inf.p_value(null, alt),
        power,
        reported,
        cell.n,
        stat,
        rows,
        prov,
        where,
    )
    return out + _cluster_findings(inf, cell.n, prov)


def _paired_stat(ctx: Context, cell: Any, reported: float | None, power: dict) -> dict:
    """The statistic of the paired decision: the delta, its interval and test, the power, and the exact and
    bootstrap numbers shown beside."""
    inf = cell.inference
    stat = {
        "delta": inf.value,
        "ci_low": inf.interval.low,
        "ci_high": inf.interval.high,
        "level": ctx.level,
        "p_value": inf.test.p_value,
        "test": inf.test.method,
        "ci_method": inf.interval.method,
        "n": cell.n,
        "reported_delta": reported,
        "clt_se": cell.clt.se,
        "correlation": cell.clt.details.get("correlation"),
        **power,
    }
    if cell.exact is not None:
        stat.update(
            b=cell.exact.details.get("b"),
            c=cell.exact.details.get("c"),
            exact_p=cell.exact.p_value,
            mid_p=cell.exact.details.get("mid_p"),
        )
    if cell.bootstrap is not None:
        stat.update(boot_ci_low=cell.bootstrap.interval.low, boot_ci_high=cell.bootstrap.interval.high)
    return stat


def _cluster_findings(inf: Any, n: int, prov: dict) -> list[Finding]:
    """Decides whether a cluster-robust interval rests on few clusters, or on one cluster holding most items."""
    out: list[Finding] = []
    clusters = inf.stats.get("clusters")
    df = inf.stats.get("df", math.nan)
    if inf.method == "cluster-t" and clusters is not None and clusters < FEW_CLUSTERS:
        out.append(
            Finding(
                NAME,
                "few_clusters",
                Outcome.info,
                f"Only {clusters} clusters: the cluster-robust interval rests on {df:.3g} degrees of freedom",
                detail=f"With fewer than about {FEW_CLUSTERS} clusters a cluster-robust SE is noisy; the "
                f"CR2 SE with a t reference on Bell–McCaffrey degrees of freedom ({df:.3g}; C − 1 = "
                f"{clusters - 1} when the clusters are equal) keeps the test near its nominal level "
                "(Bell & McCaffrey 2002; Imbens & Kolesár 2016), at the cost of wide intervals. "
                "More passages, not more items per passage, narrow it.",
                statistic={"clusters": clusters, "df": df},
                provenance=prov,
            )
        )
    share = inf.stats.get("largest_cluster_share")
    if inf.method == "cluster-t" and clusters and share is not None and share > UNEQUAL_CLUSTERS / clusters:
        out.append(
            Finding(
                NAME,
                "unequal_clusters",
                Outcome.info,
                f"One cluster holds {share:.0%} of the items ({inf.stats.get('largest_cluster_items')} of "
                f"{n}), more than {UNEQUAL_CLUSTERS:g}× its equal share 1/C = {1 / clusters:.0%}",
                detail="With one dominant cluster its residual sum is close to 0 by construction and the "
                "usual (CR1) cluster SE understates the variance: the decision uses the CR2 SE, "
                "which scales each cluster's squared residual sum by 1/(1 − its share), and "
                f"{df:.3g} Bell–McCaffrey degrees of freedom instead of C − 1 = {clusters - 1} "
                f"(CR1 SE {inf.stats.get('se_cr1', math.nan):.3g}, "
                f"CR2 SE {inf.stats.get('se', math.nan):.3g}"
                "). The evidence is mostly that of the largest cluster.",
                severity=Severity.minor,
                statistic={
                    "clusters": clusters,
                    "largest_cluster_share": share,
                    "df": df,
                    "threshold": UNEQUAL_CLUSTERS / clusters,
                },
                provenance=prov,
            )
        )
    return out


def _paired_power(ctx: Context, cell, reported: float | None) -> dict:
    """Power of the paired design: the minimum detectable effect and, when a delta is reported, the power there."""
    n = cell.n
    if cell.binary and cell.exact is not None:
        b, c = int(cell.exact.details["b"]), int(cell.exact.details["c"])
        psi = (b + c) / n
        mde = stats.mde_mcnemar(n, psi, alpha=ctx.alpha, power=ctx.power)
        method = (
            "McNemar test with continuity correction, exact enumeration at the observed discordance"
            if n <= stats.MCNEMAR_EXACT_POWER_MAX_N
            else "McNemar test with continuity correction, Connor (1987) at the observed discordance"
        )
        pw = (
            stats.mcnemar_power(n, psi, reported, ctx.alpha)
            if reported is not None and abs(reported) <= 1
            else math.nan
        )
        return {"mde": mde, "power_method": method, "discordance": psi, "power_at_reported": pw}
    sd = float(cell.inference.stats.get("sd_diff", math.nan))
    se = float(cell.inference.stats.get("se", math.nan))
    if cell.inference.method == "cluster-t":
        sd = se * math.sqrt(n) if math.isfinite(se) else math.nan
    if not (sd > 0):
        return {"mde": math.nan, "power_method": "normal approximation (paired SD)", "power_at_reported": math.nan}
    mde = stats.mde_paired(n, sd, alpha=ctx.alpha, power=ctx.power)
    pw = math.nan
    if reported is not None:
        from scipy.stats import norm

        z = abs(reported) / (sd / math.sqrt(n))
        pw = float(norm.sf(norm.ppf(1 - ctx.alpha / 2) - z))
    return {"mde": mde, "power_method": "normal approximation (paired SD)", "power_at_reported": pw}


def _from_counts(ctx: Context) -> list[Finding]:
    rep = ctx.claim.claim.reported
    cb, ct = rep.counts("baseline"), rep.counts("treatment")
    if cb is None or ct is None:
        return [
            Finding(
                NAME,
                "no_counts",
                Outcome.inconclusive,
                "Neither samples nor reported counts with n: the delta cannot be tested",
                detail="Give claim.reported.baseline/treatment as {passes, n}, or a reported n beside the rates.",
                severity=Severity.major,
                impact=Impact.inconclusive,
            )
        ]
    inf = stats.unpaired_score_inference(ct.passes, ct.n, cb.passes, cb.n, level=ctx.level)
    fisher = stats.fisher_exact(ct.passes, ct.n, cb.passes, cb.n, alternative="two-sided")
    newcombe = stats.newcombe_diff(ct.passes, ct.n, cb.passes, cb.n, level=ctx.level)
    ci, test = inf.interval, inf.test
    delta = ct.rate - cb.rate
    reported = ctx.reported_delta()
    power = _counts_power(ctx, cb, ct, reported)
    stat = {
        "delta": delta,
        "ci_low": ci.low,
        "ci_high": ci.high,
        "level": ctx.level,
        "p_value": test.p_value,
        "test": test.method,
        "ci_method": ci.method,
        "n_baseline": cb.n,
        "n_treatment": ct.n,
        "reported_delta": reported,
        "fisher_p": fisher.p_value,
        "newcombe_ci_low": newcombe.low,
        "newcombe_ci_high": newcombe.high,
        **power,
    }
    rows = _counts_rows(ctx, cb, ct, delta, ci, test)
    prov = ctx.provenance(
        test=test.method,
        ci=ci.method,
        design="unpaired (reported counts only)",
        shown_beside=f"Fisher exact (two-sided) p = {fisher.p_value:.3g}, Newcombe hybrid score CI {fmt_ci(newcombe)}",
        counts={"baseline": [cb.passes, cb.n], "treatment": [ct.passes, ct.n]},
    )
    out = _decide(
        ctx,
        delta,
        ci,
        test.p_value,
        test.method,
        lambda null, alt: inf.p_value(null, alt),
        power,
        reported,
        min(cb.n, ct.n),
        stat,
        rows,
        prov,
        "the reported counts",
    )
    # Drawn in the forest plot (and shown as measured) when there are no per-item samples.
    drawn = _counts_estimate(ctx, cb, ct, delta, ci, test)
    return [out[0].model_copy(update={"estimates": [drawn]}), *out[1:]] if out else out


def _counts_power(ctx: Context, cb: Any, ct: Any, reported: float | None) -> dict:
    """Power of the unpaired design: the minimum detectable effect and, when a delta is reported, the power there
    (exact Fisher power for small n, else the normal approximation on Cohen's h)."""
    direction = 1 if (reported if reported is not None else ctx.sign) >= 0 else -1
    if max(cb.n, ct.n) <= stats.FISHER_EXACT_POWER_MAX_N:
        mde = stats.mde_fisher(cb.n, ct.n, cb.rate, alpha=ctx.alpha, power=ctx.power, direction=direction)
        pw = (
            stats.fisher_power(cb.n, ct.n, cb.rate, min(1.0, max(0.0, cb.rate + reported)), ctx.alpha)
            if reported is not None
            else math.nan
        )
        method = "exact Fisher power (enumeration)"
    else:
        mde = stats.mde_unpaired(min(cb.n, ct.n), cb.rate, alpha=ctx.alpha, power=ctx.power, direction=direction)
        pw = math.nan
        if reported is not None:
            from statsmodels.stats.power import NormalIndPower
            from statsmodels.stats.proportion import proportion_effectsize

            p2 = min(1.0, max(0.0, cb.rate + reported))
            pw = float(
                NormalIndPower().power(
                    abs(proportion_effectsize(p2, cb.rate)), nobs1=cb.n, alpha=ctx.alpha, ratio=ct.n / cb.n
                )
            )
        method = "statsmodels NormalIndPower (Cohen's h)"
    return {"mde": mde, "power_method": method, "power_at_reported": pw}


def _counts_rows(ctx: Context, cb: Any, ct: Any, delta: float, ci: Any, test: Any) -> list[dict]:
    """The one table row of the reported counts: the rates, the delta, its interval and test."""
    return [
        {
            "variant": "reported",
            "budget": ctx.claimed_budget,
            "scoring": ctx.claim.claim.metric,
            "n": min(cb.n, ct.n),
            "baseline": cb.rate,
            "treatment": ct.rate,
            "delta": delta,
            "ci_low": ci.low,
            "ci_high": ci.high,
            "ci_method": ci.method,
            "p_value": test.p_value,
            "test": f"{test.method} ({test.alternative})",
            "role": "reported counts",
        }
    ]


def _counts_estimate(ctx: Context, cb: Any, ct: Any, delta: float, ci: Any, test: Any) -> ForestEstimate:
    """The forest-plot estimate of the reported counts, drawn as the claimed one when there are no samples."""
    return ForestEstimate(
        kind=EstimateKind.reported_counts,
        label=f"reported counts · {ctx.claim.claim.metric} (n={min(cb.n, ct.n)})",
        budget=ctx.claimed_budget,
        scoring=ctx.claim.claim.metric,
        n=min(cb.n, ct.n),
        delta=delta,
        ci_low=ci.low,
        ci_high=ci.high,
        ci_method=ci.method,
        p_value=test.p_value,
        test=test.method,
        claimed=True,
    )


@dataclass(frozen=True)
class _Said:
    """What every finding of the decision shares: where the delta is measured, its one-line summary, the power of
    the design and the note on a test and interval that disagree, and the numbers behind them."""

    where: str
    summary: str
    power_txt: str
    note: str
    stat: dict
    rows: list[dict]
    prov: dict


def _decide(ctx, delta, ci, p, test, p_vs, power, reported, n, stat, rows, prov, where) -> list[Finding]:
    """Whether the delta reproduces, is refuted (reversed, or below the reported one), or neither; and whether it
    is at least the reported one."""
    sign = ctx.sign
    effect = sign * delta
    level = f"{ctx.level:.0%}"
    summary = f"delta {fmt_delta(delta)} {level} CI {fmt_ci(ci)}, {test} p = {p:.3g}, n = {n}"
    pw = power.get("power_at_reported", math.nan)
    power_txt = _power_text(ctx, power, reported, n)
    findings: list[Finding] = []
    if not ci.ok and not math.isfinite(p):
        return [_no_interval(where, ci, stat, rows, prov)]
    # The interval decides (it inverts the test); the counts-only case can have a Fisher p and a Newcombe
    # interval that disagree near α: then the interval decides and the detail says so.
    r = read_gain(ctx, effect, ci, p, p_vs, reported)
    sig_gain, sig_rev = r.shown, r.reversed
    note = (
        f" The {test} p and the {ci.method} interval disagree at α = {ctx.alpha}; the interval decides."
        if r.disagree
        else ""
    )
    below_reported, null, tol = r.below_reported, r.null, r.tolerance
    if math.isfinite(null):
        stat.update(p_below_reported=r.p_below, reported_tolerance=tol, reported_null=null)
    said = _Said(where, summary, power_txt, note, stat, rows, prov)
    if sig_rev:
        findings.append(
            Finding(
                NAME,
                "reversed",
                Outcome.flag,
                f"At {where} the measured delta goes the other way: {summary}",
                detail=power_txt + note,
                severity=Severity.critical,
                impact=Impact.not_reproduced,
                statistic=stat,
                rows=rows,
                provenance=prov,
            )
        )
    elif below_reported:
        findings.append(_smaller_than_reported(ctx, said, reported, null, tol, sig_gain))
    elif sig_gain:
        findings.append(
            Finding(
                NAME,
                "reproduced",
                Outcome.passed,
                f"The gain reproduces at {where}: {summary}",
                detail=power_txt + note,
                severity=Severity.info,
                impact=Impact.reproduced,
                statistic=stat,
                rows=rows,
                provenance=prov,
            )
        )
    else:
        findings.append(_not_shown(ctx, said, ci, reported, pw))
    if reported is not None and not sig_rev and effect >= sign * reported and sign * reported > 0:
        findings.append(
            Finding(
                NAME,
                "larger_than_reported",
                Outcome.info,
                f"The measured delta {fmt_delta(delta)} is at least the reported {fmt_delta(reported)}",
                detail="A gain at least as large as claimed is no failure of the claim.",
                statistic=stat,
                provenance=prov,
            )
        )
    return findings


def _no_interval(where: str, ci: Any, stat: dict, rows: list[dict], prov: dict) -> Finding:
    """Decides the inconclusive finding for a delta with neither an interval nor a finite p."""
    return Finding(
        NAME,
        "no_interval",
        Outcome.inconclusive,
        f"The delta at {where} has no interval",
        detail=ci.reason or "",
        severity=Severity.major,
        impact=Impact.inconclusive,
        statistic=stat,
        rows=rows,
        provenance=prov,
    )


def _power_text(ctx: Context, power: dict, reported: float | None, n: int) -> str:
    """The minimum detectable effect of the design and, when a delta is reported, the power there, in words."""
    mde = power.get("mde", math.nan)
    pw = power.get("power_at_reported", math.nan)
    power_txt = (
        f"With n = {n} this design detects a delta of ±{mde:.3f} with {ctx.power:.0%} power at "
        f"α = {ctx.alpha} (two-sided; {power['power_method']})."
        if math.isfinite(mde)
        else f"The minimum detectable effect cannot be computed here ({power['power_method']})."
    )
    if reported is not None and math.isfinite(pw):
        power_txt += f" Power at the reported delta {fmt_delta(reported)}: {pw:.0%}."
    return power_txt


def _smaller_than_reported(
    ctx: Context, said: _Said, reported: float, null: float, tol: float, sig_gain: bool
) -> Finding:
    """The measured delta is significantly smaller than the reported one (critical, not reproduced)."""
    sign, half, level, where = ctx.sign, ctx.alpha / 2.0, f"{ctx.level:.0%}", said.where
    head = (
        f"The measured delta is significantly smaller than the reported {fmt_delta(reported)} at {where}: "
        f"{said.summary}"
    )
    more = " A smaller gain is still significant: the claim's magnitude, not its sign, is refuted." if sig_gain else ""
    return Finding(
        NAME,
        "smaller_than_reported",
        Outcome.flag,
        head,
        detail=f"H0 'the true delta is at least the reported one less its tolerance' "
        f"({fmt_delta(reported)} {'−' if sign > 0 else '+'} {tol:.3g} = {fmt_delta(null)}; "
        f"the tolerance is "
        f"half a unit of the last reported digit"
        + (" plus options.margin" if ctx.claim.options.margin is not None else "")
        + f") is rejected (one-sided, α/2 = {half:g}; it lies beyond the {level} "
        f"interval)." + more + " " + said.power_txt + said.note,
        severity=Severity.critical,
        impact=Impact.not_reproduced,
        statistic=said.stat,
        rows=said.rows,
        provenance=said.prov,
    )


def _not_shown(ctx: Context, said: _Said, ci, reported: float | None, pw: float) -> Finding:
    """Neither reproduced nor refuted: a precise null (TOST), an underpowered design, or not significant."""
    where, summary, power_txt = said.where, said.summary, said.power_txt
    margin, msrc = ctx.null_margin()  # fixed before looking at the measured delta
    near_zero = ci.ok and math.isfinite(margin) and margin > 0 and -margin < ci.low and ci.high < margin
    underpowered = reported is not None and math.isfinite(pw) and pw < ctx.power
    if near_zero:
        title = f"The delta at {where} is shown to be near zero (within ±{margin:.3g}, {msrc}; TOST): {summary}"
        detail = "A precise null: the interval excludes any gain larger than the margin. " + power_txt
        code, sev = "precise_null", Severity.major
    elif underpowered:
        title = f"Underpowered at {where}: {summary}; the design had {pw:.0%} power at the reported delta"
        detail = power_txt + " A larger evaluation set is needed to tell."
        code, sev = "underpowered", Severity.major
    elif reported is not None:
        title = f"Not significant at {where}, yet consistent with the reported delta {fmt_delta(reported)}: {summary}"
        detail = (
            "The interval contains both 0 and the reported delta: the data neither establish nor refute "
            "the claim. " + power_txt
        )
        code, sev = "not_significant", Severity.major
    else:
        title = f"Not significant at {where}: {summary}"
        detail = power_txt + " With no reported delta there is nothing the interval could refute."
        code, sev = "not_significant", Severity.major
    return Finding(
        NAME,
        code,
        Outcome.inconclusive,
        title,
        detail=detail + said.note,
        severity=sev,
        impact=Impact.inconclusive,
        statistic=said.stat,
        rows=said.rows,
        provenance=said.prov,
    )


SPEC = CheckSpec(
    NAME,
    run,
    Params,
    needs_samples=False,
    description="the delta at the claimed setting, its CI, the right test for the design, power/MDE",
)
"""This check in the registry (:data:`audit.checks.REGISTRY`)."""
