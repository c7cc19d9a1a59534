"""significance: does the claimed delta reproduce at the claimed setting, and could this design have seen it?

With per-item samples the design is paired (both arms scored on the same items): the delta's CI is a paired
bootstrap (item indices resampled once for both arms) with the paired CLT SE of Miller (2024, arXiv:2411.00640)
beside it; the test is McNemar's exact test for 0/1 outcomes, a paired t-test otherwise. With reported counts only
the design is treated as unpaired: Fisher's exact test (two-sided) and Newcombe's hybrid score CI (Newcombe 1998,
method 10). The minimum detectable effect (80% power by default) decides between *not reproduced* (the design could
have seen the reported gain and did not) and *inconclusive* (it could not).
"""
from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, ConfigDict

from audit import stats
from audit.checks._common import Context, excludes_zero, fmt_ci, fmt_delta
from audit.findings import Finding

NAME = "significance"


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


def run(ctx: Context, params: Params) -> list[Finding]:
    if ctx.records is not None:
        return _paired(ctx)
    return _from_counts(ctx)


def _reported_delta(ctx: Context) -> float | None:
    rep = ctx.claim.claim.reported
    if rep.delta is not None:
        return rep.delta
    b, t = rep.rate("baseline"), rep.rate("treatment")
    return None if b is None or t is None else t - b


def _paired(ctx: Context) -> list[Finding]:
    cell = ctx.cell(ctx.claimed_budget)
    where = f"budget {ctx.claimed_budget}, scoring {ctx.claimed_scoring!r}"
    if cell is None:
        return [Finding(NAME, "no_cell", "inconclusive", f"No paired records at the claimed setting ({where})",
                        severity="major", impact="inconclusive")]
    p = ctx.records.paired(ctx.claimed_scoring, ctx.claimed_budget)
    prov = ctx.provenance(test=cell.test.method, n=cell.n, ci=cell.delta.method, design="paired")
    if cell.n < 2:
        return [Finding(NAME, "too_few_items", "inconclusive", f"Only {cell.n} paired item(s) at {where}",
                        detail="A delta needs at least two paired items for any interval.", severity="major",
                        impact="inconclusive", provenance=prov)]
    d = p.treatment - p.baseline
    sd_diff = float(np.std(d, ddof=1))
    mde = stats.mde_paired(cell.n, sd_diff if sd_diff > 0 else _binary_sd_floor(cell.n), alpha=ctx.alpha, power=ctx.power)
    reported = _reported_delta(ctx)
    rows = [cell.row(role="claimed setting")]
    stat = {"delta": cell.delta.value, "ci_low": cell.interval.low, "ci_high": cell.interval.high,
            "level": ctx.level, "p_value": cell.test.p_value, "test": cell.test.method, "n": cell.n,
            "mde": mde, "sd_diff": sd_diff, "reported_delta": reported, "clt_se": cell.clt.se,
            "correlation": cell.clt.details.get("correlation"), **({"b": cell.test.details.get("b"),
                                                                     "c": cell.test.details.get("c"),
                                                                     "mid_p": cell.test.details.get("mid_p")}
                                                                    if cell.binary else {})}
    return _decide(ctx, cell.delta.value, cell.interval, cell.test.p_value, cell.test.method, mde, reported,
                   cell.n, stat, rows, prov, where)


def _binary_sd_floor(n: int) -> float:
    # With no discordant pairs the observed SD is 0 and the MDE would be 0; use one discordant pair instead.
    return math.sqrt(1.0 / n)


def _from_counts(ctx: Context) -> list[Finding]:
    rep = ctx.claim.claim.reported
    cb, ct = rep.counts("baseline"), rep.counts("treatment")
    if cb is None or ct is None:
        return [Finding(NAME, "no_counts", "inconclusive",
                        "Neither samples nor reported counts with n: the delta cannot be tested",
                        detail="Give claim.reported.baseline/treatment as {passes, n}, or a reported n beside the rates.",
                        severity="major", impact="inconclusive")]
    test = stats.fisher_exact(ct.passes, ct.n, cb.passes, cb.n, alternative="two-sided")
    ci = stats.newcombe_diff(ct.passes, ct.n, cb.passes, cb.n, level=ctx.level)
    delta = ct.rate - cb.rate
    mde = stats.mde_unpaired(min(cb.n, ct.n), cb.rate, alpha=ctx.alpha, power=ctx.power)
    reported = _reported_delta(ctx)
    stat = {"delta": delta, "ci_low": ci.low, "ci_high": ci.high, "level": ctx.level, "p_value": test.p_value,
            "test": test.method, "n_baseline": cb.n, "n_treatment": ct.n, "mde": mde, "reported_delta": reported}
    rows = [{"variant": "reported", "budget": ctx.claimed_budget, "scoring": ctx.claim.claim.metric,
             "n": min(cb.n, ct.n), "baseline": cb.rate, "treatment": ct.rate, "delta": delta, "ci_low": ci.low,
             "ci_high": ci.high, "ci_method": ci.method, "p_value": test.p_value,
             "test": f"{test.method} ({test.alternative})", "role": "reported counts"}]
    prov = ctx.provenance(test=test.method, ci=ci.method, design="unpaired (reported counts only)",
                          counts={"baseline": [cb.passes, cb.n], "treatment": [ct.passes, ct.n]})
    return _decide(ctx, delta, ci, test.p_value, test.method, mde, reported, min(cb.n, ct.n), stat, rows, prov,
                   "the reported counts")


def _decide(ctx, delta, ci, p, test, mde, reported, n, stat, rows, prov, where) -> list[Finding]:
    effect = ctx.sign * delta
    level = f"{ctx.level:.0%}"
    summary = f"delta {fmt_delta(delta)} {level} CI {fmt_ci(ci)}, {test} p = {p:.3g}, n = {n}"
    findings = []
    mde_txt = (f"With n = {n} this design detects a delta of ±{mde:.3f} with {ctx.power:.0%} power at "
               f"α = {ctx.alpha} (two-sided).")
    if not ci.ok and not math.isfinite(p):
        findings.append(Finding(NAME, "no_interval", "inconclusive", f"The delta at {where} has no interval",
                                detail=ci.reason or "", severity="major", impact="inconclusive", statistic=stat,
                                rows=rows, provenance=prov))
        return findings
    # A bootstrap interval is undefined when every paired difference is equal; the exact test still decides.
    if not ci.ok:
        mde_txt += f" The interval is undefined ({ci.reason}); the decision rests on the {test} test."
    if effect > 0 and p < ctx.alpha and (excludes_zero(ci) or not ci.ok):
        findings.append(Finding(NAME, "reproduced", "pass", f"The gain reproduces at {where}: {summary}",
                                detail=mde_txt, severity="info", impact="reproduced", statistic=stat, rows=rows,
                                provenance=prov))
    elif effect < 0 and (excludes_zero(ci) or (not ci.ok and p < ctx.alpha)):
        findings.append(Finding(NAME, "reversed", "flag",
                                f"At {where} the measured delta goes the other way: {summary}",
                                detail=mde_txt, severity="critical", impact="not_reproduced", statistic=stat,
                                rows=rows, provenance=prov))
    elif reported is not None and abs(reported) >= mde:
        findings.append(Finding(NAME, "not_significant", "flag",
                                f"The gain does not reproduce at {where}: {summary}",
                                detail=mde_txt + f" The reported delta {fmt_delta(reported)} is at least that large, "
                                "so the design had the power to see it.", severity="critical",
                                impact="not_reproduced", statistic=stat, rows=rows, provenance=prov))
    else:
        why = (f"the reported delta {fmt_delta(reported)} is below the minimum detectable effect ±{mde:.3f}"
               if reported is not None else f"the minimum detectable effect is ±{mde:.3f}")
        findings.append(Finding(NAME, "underpowered", "inconclusive",
                                f"Underpowered at {where}: {summary}; {why}",
                                detail=mde_txt + " A larger evaluation set is needed to tell.", severity="major",
                                impact="inconclusive", statistic=stat, rows=rows, provenance=prov))
    if reported is not None and ci.ok and not ci.contains(reported):
        findings.append(Finding(NAME, "reported_outside_ci", "flag",
                                f"The reported delta {fmt_delta(reported)} lies outside the measured {level} CI "
                                f"{fmt_ci(ci)}", detail="The claimed magnitude is not what the evidence gives.",
                                severity="major", impact="not_reproduced", statistic=stat, provenance=prov))
    return findings
