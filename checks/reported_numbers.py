"""reported_numbers: can the reported numbers have come from any k/n and any standard test?

* Granularity: a rate reported to d decimals from n items must equal some k/n rounded to d decimals.
* Arithmetic: the reported delta must equal treatment − baseline within the rounding of the three numbers.
* p-value: recomputed from the counts under every test a paper plausibly used (Fisher, Boschloo, pooled z, χ² with
  and without Yates' correction, and McNemar variants when the paired discordant counts are known), each two-sided
  and one-sided; the check says which variants reproduce the reported p and whether that is the test the authors
  name. A one-sided p reported as if two-sided is a common error.
* With samples: the reported rates and n against what the logs give at the claimed setting.

Rounding tolerances that cannot fail are not tolerances. Every number here lies on the [0, 1] scale (rates, deltas
of rates, p-values), so:

* A number written without decimals (0, 1) is read to ``INTEGER_PLACES`` = 2 decimals (±0.005), not ±0.5: "±0.5" on
  a [0, 1] quantity would let a reported rate of 0 match any k/n ≤ 0.5 and a reported p of 1 match any p ≥ 0.5.
  Trailing zeros never widen the tolerance (``Decimal.normalize`` writes 20 as 2E+1, which read ±5).
* A reported ``p_value: 0`` is impossible for these tests (each gives p > 0 for any finite counts). It is said so
  (``p_value_zero``, minor) and read as "p < 0.001" when matching tests (``P_ZERO_MEANS``).
"""
from __future__ import annotations

import math
from decimal import Decimal

from audit.checks._common import Context

from audit import stats
from audit.check_params import ReportedNumbersParams
from audit.claim import Counts
from audit.findings import Finding

NAME = "reported_numbers"
# A number written without decimals (0 or 1) is read to this many decimals: ±0.5 on [0, 1] cannot fail.
INTEGER_PLACES = 2
# A reported p of exactly 0 is read as p below this (the usual "p < 0.001" of a table).
P_ZERO_MEANS = 0.001

# Which recomputed test variants belong to the test the authors name.
FAMILIES = {
    "fisher": ("fisher",), "mcnemar": ("mcnemar",), "boschloo": ("boschloo",), "ztest": ("z-test", "ztest"),
    "chi2": ("chi2", "chi-square", "chi²"),
}


Params = ReportedNumbersParams


def decimals(x: float) -> int:
    """Decimal places as written (0.15 → 2, 0.3 → 1); floats from YAML keep their shortest repr."""
    exp = Decimal(repr(float(x))).normalize().as_tuple().exponent
    return max(0, -int(exp))


def half_unit(x: float, places: int | None = None) -> float:
    """Half a unit in the last reported place: the rounding tolerance of a reported number.

    ``places`` overrides the decimals read off the float: YAML turns "0.30" into 0.3, so the caller passes the
    precision the other numbers of the same table were reported to.
    A number with no decimals is read to ``INTEGER_PLACES`` (every quantity here lies on [0, 1], where ±0.5 would
    match anything); trailing zeros of an integer never widen it (``Decimal.normalize`` writes 20 as 2E+1).
    """
    d = places if places is not None else decimals(x)
    return 0.5 * 10 ** (-(d if d > 0 else INTEGER_PLACES))


def rounds_to(value: float, reported: float, places: int | None = None) -> bool:
    return math.isfinite(value) and abs(value - reported) <= half_unit(reported, places) + 1e-12


def granular_k(rate: float, n: int, places: int | None = None) -> list[int]:
    """Every k with k/n rounding to the reported rate."""
    centre = round(rate * n)
    return [k for k in range(max(0, centre - 2), min(n, centre + 2) + 1) if rounds_to(k / n, rate, places)]


def table_places(*values: float | None) -> int | None:
    """The precision a table of rates was reported to: the most decimals among its numbers (0.30 is read as 0.3).
    None when no number has decimals (each is then read to ``INTEGER_PLACES``)."""
    ds = [decimals(v) for v in values if isinstance(v, float)]
    return max(ds) if ds and max(ds) > 0 else None


def p_matches(value: float, reported: float) -> bool:
    """A recomputed p reproduces the reported one: within rounding, or below ``P_ZERO_MEANS`` for a reported 0."""
    if reported == 0:
        return math.isfinite(value) and value < P_ZERO_MEANS
    return rounds_to(value, reported)


def run(ctx: Context, params: Params) -> list[Finding]:
    rep = ctx.claim.claim.reported
    prov = ctx.provenance(rounding=f"half a unit in the last reported digit (numbers without decimals: "
                                   f"{INTEGER_PLACES} decimals); a reported p of 0 is read as p < {P_ZERO_MEANS:g}")
    findings: list[Finding] = []
    n = rep.n or (rep.baseline.n if isinstance(rep.baseline, Counts) else None)
    places = table_places(rep.baseline, rep.treatment, rep.delta)
    prov = dict(prov, reported_places=places)
    # Granularity of k/n.
    for arm in ("baseline", "treatment"):
        v = getattr(rep, arm)
        if isinstance(v, float) and n:
            ks = granular_k(v, n, places)
            if not ks:
                lo, hi = math.floor(v * n), math.ceil(v * n)
                findings.append(Finding(
                    NAME, "impossible_rate", "flag",
                    f"The reported {arm} rate {v} cannot come from n = {n}: no k/{n} rounds to it "
                    f"({lo}/{n} = {lo / n:.4f}, {hi}/{n} = {hi / n:.4f})", severity="critical",
                    impact="not_reproduced", statistic={"arm": arm, "reported": v, "n": n}, provenance=prov))
            else:
                findings.append(Finding(NAME, "rate_granular", "pass",
                                        f"The reported {arm} rate {v} is consistent with "
                                        + " or ".join(f"{k}/{n}" for k in ks),
                                        statistic={"arm": arm, "reported": v, "n": n, "k": ks}, provenance=prov))
    # Delta arithmetic.
    b, t = rep.rate("baseline"), rep.rate("treatment")
    if rep.delta is not None and b is not None and t is not None:
        tol = half_unit(rep.delta, places) + (half_unit(b, places) if not isinstance(rep.baseline, Counts) else 0) + (
            half_unit(t, places) if not isinstance(rep.treatment, Counts) else 0)
        diff = t - b
        stat = {"reported_delta": rep.delta, "treatment_minus_baseline": diff, "tolerance": tol}
        if abs(rep.delta - diff) > tol + 1e-12:
            findings.append(Finding(NAME, "delta_arithmetic", "flag",
                                    f"The reported delta {rep.delta} is not treatment − baseline = {t} − {b} = {diff:.4f}",
                                    severity="critical", impact="not_reproduced", statistic=stat, provenance=prov))
        else:
            findings.append(Finding(NAME, "delta_consistent", "pass",
                                    f"The reported delta {rep.delta} equals treatment − baseline ({diff:.4f}) within rounding",
                                    statistic=stat, provenance=prov))
    findings.extend(_p_value(ctx, prov))
    findings.extend(_against_logs(ctx, prov))
    if not findings:
        findings.append(Finding(NAME, "nothing_reported", "info",
                                "No reported numbers to check (claim.reported is empty)", impact="none",
                                provenance=prov))
    return findings


def _p_value(ctx: Context, prov: dict) -> list[Finding]:
    rep = ctx.claim.claim.reported
    if rep.p_value is None:
        return []
    shown = f"p < {P_ZERO_MEANS:g} (reported as 0)" if rep.p_value == 0 else f"p = {rep.p_value}"
    pre: list[Finding] = []
    if rep.p_value == 0:
        pre.append(Finding(
            NAME, "p_value_zero", "flag", "The reported p = 0 is impossible for these tests",
            detail=f"Exact and asymptotic tests of two proportions give p > 0 for any finite counts. It is read as "
                   f"p < {P_ZERO_MEANS:g} when matching tests; report the p-value itself, or 'p < {P_ZERO_MEANS:g}'.",
            severity="minor", impact="none", statistic={"reported_p": 0.0, "read_as": f"p < {P_ZERO_MEANS:g}"},
            provenance=prov))
    cb, ct = rep.counts("baseline"), rep.counts("treatment")
    b_disc = c_disc = None
    if ctx.records is not None and ctx.cell(ctx.claimed_budget) is not None:
        p = ctx.records.paired(ctx.claimed_scoring, ctx.claimed_budget)
        if p.binary:
            b_disc = int(((p.baseline == 0) & (p.treatment == 1)).sum())
            c_disc = int(((p.baseline == 1) & (p.treatment == 0)).sum())
            if cb is None or ct is None:
                cb = Counts(passes=int(p.baseline.sum()), n=p.n)
                ct = Counts(passes=int(p.treatment.sum()), n=p.n)
    if cb is None or ct is None:
        return pre + [Finding(NAME, "p_value_no_counts", "inconclusive",
                              f"The reported {shown} cannot be recomputed without counts",
                              detail="Give claim.reported.n (or {passes, n} for each arm), or per-item samples.",
                              severity="minor", impact="none", provenance=prov)]
    variants = stats.p_value_variants(ct.passes, ct.n, cb.passes, cb.n, paired_b=b_disc, paired_c=c_disc)
    rows = [{"test": v.method, "alternative": v.alternative, "p_value": v.p_value,
             "matches": p_matches(v.p_value, rep.p_value)} for v in variants]
    matches = [r for r in rows if r["matches"]]
    stat = {"reported_p": rep.p_value, "reported_test": rep.test, "counts": {
        "baseline": [cb.passes, cb.n], "treatment": [ct.passes, ct.n]},
        "discordant": None if b_disc is None else {"b": b_disc, "c": c_disc}}
    pv = dict(prov, counts="treatment as group 1; 'greater' = treatment higher")
    named = FAMILIES.get(rep.test or "", ())
    named_matches = [r for r in matches if any(f in r["test"].lower() for f in named)]
    two_sided_named = [r for r in named_matches if r["alternative"] == "two-sided"]
    if not matches:
        closest = sorted(rows, key=lambda r: abs(r["p_value"] - rep.p_value))[:3]
        return pre + [Finding(NAME, "p_value_irreproducible", "flag",
                              f"No standard test on {ct.passes}/{ct.n} vs {cb.passes}/{cb.n} gives the reported "
                              f"{shown}",
                              detail="Closest: " + ", ".join(f"{r['test']} {r['alternative']} p = {r['p_value']:.4g}"
                                                              for r in closest),
                              severity="major", impact="none", statistic=stat, rows=rows, provenance=pv)]
    which = ", ".join(f"{r['test']} ({r['alternative']})" for r in matches)
    if named and not named_matches:
        return pre + [Finding(NAME, "p_value_other_test", "flag",
                              f"The reported {shown} is not what {rep.test} gives; it matches {which}",
                              severity="major", impact="none", statistic=stat, rows=rows, provenance=pv)]
    if named and not two_sided_named:
        return pre + [Finding(NAME, "p_value_one_sided", "flag",
                              f"The reported {shown} reproduces only as a one-sided {rep.test} test ({which})",
                              detail="Papers usually mean two-sided; a one-sided p reported as if two-sided halves it.",
                              severity="major", impact="none", statistic=stat, rows=rows, provenance=pv)]
    return pre + [Finding(NAME, "p_value_reproduced", "pass", f"The reported {shown} reproduces as {which}",
                          statistic=stat, rows=rows, provenance=pv)]


def _against_logs(ctx: Context, prov: dict) -> list[Finding]:
    rep = ctx.claim.claim.reported
    if ctx.records is None or ctx.cell(ctx.claimed_budget) is None:
        return []
    cell = ctx.cell(ctx.claimed_budget)
    out = []
    p = ctx.records.paired(ctx.claimed_scoring, ctx.claimed_budget)
    if rep.n is not None and rep.n != cell.n and not (ctx.claim.live and ctx.claim.task.limit):
        out.append(Finding(NAME, "n_mismatch", "flag",
                           f"The claim reports n = {rep.n} items per arm; the logs have {cell.n} paired items",
                           severity="major", impact="not_reproduced", statistic={"reported_n": rep.n, "logs_n": cell.n},
                           provenance=prov))
    for arm, measured, arr in (("baseline", cell.baseline, p.baseline), ("treatment", cell.treatment, p.treatment)):
        v = getattr(rep, arm)
        if v is None:
            continue
        reported = v.rate if isinstance(v, Counts) else v
        k = arr.sum()
        places = table_places(rep.baseline, rep.treatment, rep.delta)
        stat = {"arm": arm, "reported": reported, "measured": measured, "k": float(k), "n": cell.n}
        where = f"{ctx.claimed_scoring}, {ctx.claimed_budget} tokens"
        if ctx.claim.live:
            # A re-run on another server or machine need not match to the last digit: the reported rate must lie
            # inside the re-run's Wilson interval.
            iv = stats.wilson(int(round(k)), cell.n, level=ctx.level) if p.binary else None
            stat.update({"ci_low": iv.low if iv else None, "ci_high": iv.high if iv else None})
            if iv is None or iv.contains(reported):
                out.append(Finding(NAME, "consistent_with_rerun", "pass",
                                   f"The reported {arm} score {reported} is inside the re-run's {ctx.level:.0%} "
                                   f"interval ({k:g}/{cell.n} = {measured:.4f}" + (f", [{iv.low:.3f}, {iv.high:.3f}])"
                                                                                  if iv else ")"),
                                   statistic=stat, provenance=dict(prov, interval="Wilson")))
            else:
                out.append(Finding(NAME, "outside_rerun", "flag",
                                   f"The reported {arm} score {reported} lies outside the re-run's {ctx.level:.0%} "
                                   f"interval [{iv.low:.3f}, {iv.high:.3f}] ({k:g}/{cell.n}, {where})",
                                   severity="major", impact="not_reproduced", statistic=stat,
                                   provenance=dict(prov, interval="Wilson")))
            continue
        ok = (v.passes == k and v.n == cell.n) if isinstance(v, Counts) else rounds_to(measured, reported, places)
        if ok:
            out.append(Finding(NAME, "matches_logs", "pass",
                               f"The reported {arm} score {reported} matches the logs ({k:g}/{cell.n} = {measured:.4f})",
                               statistic=stat, provenance=prov))
        else:
            out.append(Finding(NAME, "differs_from_logs", "flag",
                               f"The reported {arm} score {reported} differs from the logs at the claimed setting "
                               f"({k:g}/{cell.n} = {measured:.4f}, {where})",
                               severity="major", impact="not_reproduced", statistic=stat, provenance=prov))
    return out
