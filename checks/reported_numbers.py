"""reported_numbers: can the reported numbers have come from any k/n and any standard test?

* Granularity: a rate reported to d decimals from n items must equal some k/n rounded to d decimals.
* Arithmetic: the reported delta must equal treatment − baseline within the rounding of the three numbers.
* p-value: recomputed from the counts under every test a paper plausibly used (Fisher, Boschloo, pooled z, χ² with
  and without Yates' correction, and McNemar variants when the paired discordant counts are known), each two-sided
  and one-sided; the check says which variants reproduce the reported p and whether that is the test the authors
  name. A one-sided p reported as if two-sided is a common error.
* With samples: the reported rates and n against what the logs give at the claimed setting (each arm on all its own
  items). A mismatch is a finding of its own, never evidence about the gain: it caps the verdict at inconclusive only
  when it is material and no arm reproduces (``_against_logs``), and a common convention of papers' scorers that
  explains it (unanswered outputs credited at chance 1/K, or dropped) is said with the numbers, as a note.
* Reported numbers that contradict each other (a rate no k/n gives, a delta that is not treatment − baseline) cannot
  all be the claim: untrusted input, the verdict is inconclusive at best.

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
from dataclasses import dataclass
from typing import Any

from audit.checks._common import CheckSpec, Context

from audit import stats
from audit.check_params import ReportedNumbersParams
from audit.claim import Counts, Reported
from audit.findings import Finding, Impact, Outcome, Severity
from audit.rounding import INTEGER_PLACES, decimals, half_unit, rounds_to, table_places  # noqa: F401 - re-exported

NAME = "reported_numbers"
# A reported p of exactly 0 is read as p below this (the usual "p < 0.001" of a table).
P_ZERO_MEANS = 0.001

# Which recomputed test variants belong to the test the authors name.
FAMILIES = {
    "fisher": ("fisher",),
    "mcnemar": ("mcnemar",),
    "boschloo": ("boschloo",),
    "ztest": ("z-test", "ztest"),
    "chi2": ("chi2", "chi-square", "chi²"),
}


Params = ReportedNumbersParams


def granular_k(rate: float, n: int, places: int | None = None) -> list[int]:
    """Every k with k/n rounding to the reported rate."""
    centre = round(rate * n)
    return [k for k in range(max(0, centre - 2), min(n, centre + 2) + 1) if rounds_to(k / n, rate, places)]


def p_matches(value: float, reported: float) -> bool:
    """A recomputed p reproduces the reported one: within rounding, or below ``P_ZERO_MEANS`` for a reported 0."""
    if reported == 0:
        return math.isfinite(value) and value < P_ZERO_MEANS
    return rounds_to(value, reported)


def run(ctx: Context, params: Params) -> list[Finding]:
    rep = ctx.claim.claim.reported
    prov = ctx.provenance(
        rounding=f"half a unit in the last reported digit (numbers without decimals: "
        f"{INTEGER_PLACES} decimals); a reported p of 0 is read as p < {P_ZERO_MEANS:g}"
    )
    findings: list[Finding] = []
    n = rep.n or (rep.baseline.n if isinstance(rep.baseline, Counts) else None)
    places = ctx.written_places()[0] or table_places(rep.baseline, rep.treatment, rep.delta)
    prov = dict(prov, reported_places=places)
    # Granularity of k/n: only rates of 0/1 outcomes are k/n (a mean of continuous scores, such as a judge's win
    # probability, is not). Without samples the reported rates are taken to be k/n.
    cell = ctx.cell(ctx.claimed_budget) if ctx.records is not None else None
    counts_of_passes = cell is None or cell.binary
    if not counts_of_passes:
        prov = dict(
            prov, granularity="not checked: the scores at the claimed setting are not 0/1, so a rate is a mean, not k/n"
        )
    for arm in ("baseline", "treatment"):
        v = getattr(rep, arm)
        if isinstance(v, float) and n and counts_of_passes:
            findings.append(_granularity(arm, v, n, places, prov))
    findings.extend(_delta_arithmetic(rep, places, prov))
    findings.extend(_p_value(ctx, prov))
    findings.extend(_against_logs(ctx, params, prov))
    if not findings:
        findings.append(
            Finding(
                NAME,
                "nothing_reported",
                Outcome.info,
                "No reported numbers to check (claim.reported is empty)",
                impact=Impact.none,
                provenance=prov,
            )
        )
    return findings


def _granularity(arm: str, v: float, n: int, places: int | None, prov: dict) -> Finding:
    """Decides whether one reported rate can be some k/n rounded to the reported decimals."""
    ks = granular_k(v, n, places)
    if not ks:
        lo, hi = math.floor(v * n), math.ceil(v * n)
        return Finding(
            NAME,
            "impossible_rate",
            Outcome.flag,
            f"The reported {arm} rate {v} cannot come from n = {n}: no k/{n} rounds to it "
            f"({lo}/{n} = {lo / n:.4f}, {hi}/{n} = {hi / n:.4f})",
            severity=Severity.critical,
            impact=Impact.untrusted_input,
            statistic={"arm": arm, "reported": v, "n": n},
            provenance=prov,
        )
    return Finding(
        NAME,
        "rate_granular",
        Outcome.passed,
        f"The reported {arm} rate {v} is consistent with " + " or ".join(f"{k}/{n}" for k in ks),
        statistic={"arm": arm, "reported": v, "n": n, "k": ks},
        provenance=prov,
    )


def _delta_arithmetic(rep: Reported, places: int | None, prov: dict) -> list[Finding]:
    """Decides whether the reported delta equals treatment − baseline within the rounding of the three numbers."""
    b, t = rep.rate("baseline"), rep.rate("treatment")
    if rep.delta is None or b is None or t is None:
        return []
    tol = (
        half_unit(rep.delta, places)
        + (half_unit(b, places) if not isinstance(rep.baseline, Counts) else 0)
        + (half_unit(t, places) if not isinstance(rep.treatment, Counts) else 0)
    )
    diff = t - b
    stat = {"reported_delta": rep.delta, "treatment_minus_baseline": diff, "tolerance": tol}
    if abs(rep.delta - diff) > tol + 1e-12:
        return [
            Finding(
                NAME,
                "delta_arithmetic",
                Outcome.flag,
                f"The reported delta {rep.delta} is not treatment − baseline = {t} − {b} = {diff:.4f}",
                severity=Severity.critical,
                impact=Impact.untrusted_input,
                statistic=stat,
                provenance=prov,
            )
        ]
    return [
        Finding(
            NAME,
            "delta_consistent",
            Outcome.passed,
            f"The reported delta {rep.delta} equals treatment − baseline ({diff:.4f}) within rounding",
            statistic=stat,
            provenance=prov,
        )
    ]


def _p_value(ctx: Context, prov: dict) -> list[Finding]:
    rep = ctx.claim.claim.reported
    if rep.p_value is None:
        return []
    shown = f"p < {P_ZERO_MEANS:g} (reported as 0)" if rep.p_value == 0 else f"p = {rep.p_value}"
    pre: list[Finding] = [_p_value_zero(prov)] if rep.p_value == 0 else []
    cell = ctx.cell(ctx.claimed_budget) if ctx.records is not None else None
    if cell is not None and not cell.binary:
        return pre + [
            Finding(
                NAME,
                "p_value_not_counts",
                Outcome.inconclusive,
                f"The reported {shown} is not recomputed: the scores are not 0/1, so no test of two "
                "proportions applies",
                detail=f"The significance check gives the paired test of the "
                f"scores ({cell.test.method}, p = {cell.test.p_value:.3g}).",
                severity=Severity.minor,
                impact=Impact.none,
                provenance=prov,
            )
        ]
    cb, ct, b_disc, c_disc = _test_counts(ctx, rep, cell)
    if cb is None or ct is None:
        return pre + [
            Finding(
                NAME,
                "p_value_no_counts",
                Outcome.inconclusive,
                f"The reported {shown} cannot be recomputed without counts",
                detail="Give claim.reported.n (or {passes, n} for each arm), or per-item samples.",
                severity=Severity.minor,
                impact=Impact.none,
                provenance=prov,
            )
        ]
    return pre + _p_value_verdict(rep, rep.p_value, shown, cb, ct, b_disc, c_disc, prov)


def _p_value_zero(prov: dict) -> Finding:
    """Decides the minor finding that a reported p of exactly 0 is impossible for these tests."""
    return Finding(
        NAME,
        "p_value_zero",
        Outcome.flag,
        "The reported p = 0 is impossible for these tests",
        detail=f"Exact and asymptotic tests of two proportions give p > 0 for any finite counts. It is read as "
        f"p < {P_ZERO_MEANS:g} when matching tests; report the p-value itself, or 'p < {P_ZERO_MEANS:g}'.",
        severity=Severity.minor,
        impact=Impact.none,
        statistic={"reported_p": 0.0, "read_as": f"p < {P_ZERO_MEANS:g}"},
        provenance=prov,
    )


def _test_counts(ctx: Context, rep: Reported, cell: Any) -> tuple[Counts | None, Counts | None, int | None, int | None]:
    """Decides the counts the p-value is recomputed from (reported, else from the logs) and the discordant pairs."""
    cb, ct = rep.counts("baseline"), rep.counts("treatment")
    b_disc = c_disc = None
    if ctx.records is not None and cell is not None:
        p = ctx.records.paired(cell.scoring, ctx.claimed_budget)  # the claimed cell's scoring is ctx.claimed_scoring
        if p.binary:
            b_disc = int(((p.baseline == 0) & (p.treatment == 1)).sum())
            c_disc = int(((p.baseline == 1) & (p.treatment == 0)).sum())
            if cb is None or ct is None:
                cb = Counts(passes=int(p.baseline.sum()), n=p.n)
                ct = Counts(passes=int(p.treatment.sum()), n=p.n)
    return cb, ct, b_disc, c_disc


def _p_value_rows(
    rep: Reported, reported_p: float, cb: Counts, ct: Counts, b_disc: int | None, c_disc: int | None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The recomputed p of every test variant, each marked whether it matches the reported p, and the statistic."""
    variants = stats.p_value_variants(ct.passes, ct.n, cb.passes, cb.n, paired_b=b_disc, paired_c=c_disc)
    rows: list[dict[str, Any]] = [
        {
            "test": v.method,
            "alternative": v.alternative,
            "p_value": v.p_value,
            "matches": p_matches(v.p_value, reported_p),
        }
        for v in variants
    ]
    stat = {
        "reported_p": rep.p_value,
        "reported_test": rep.test,
        "counts": {"baseline": [cb.passes, cb.n], "treatment": [ct.passes, ct.n]},
        "discordant": None if b_disc is None else {"b": b_disc, "c": c_disc},
    }
    return rows, stat


def _p_value_verdict(
    rep: Reported,
    reported_p: float,
    shown: str,
    cb: Counts,
    ct: Counts,
    b_disc: int | None,
    c_disc: int | None,
    prov: dict,
) -> list[Finding]:
    """Decides whether the reported p reproduces, only one-sided, only under another test, or under none."""
    rows, stat = _p_value_rows(rep, reported_p, cb, ct, b_disc, c_disc)
    matches = [r for r in rows if r["matches"]]
    pv = dict(prov, counts="treatment as group 1; 'greater' = treatment higher")
    named = FAMILIES.get(rep.test or "", ())
    named_matches = [r for r in matches if any(f in r["test"].lower() for f in named)]
    two_sided_named = [r for r in named_matches if r["alternative"] == "two-sided"]
    if not matches:
        closest = sorted(rows, key=lambda r: abs(r["p_value"] - rep.p_value))[:3]
        return [
            Finding(
                NAME,
                "p_value_irreproducible",
                Outcome.flag,
                f"No standard test on {ct.passes}/{ct.n} vs {cb.passes}/{cb.n} gives the reported {shown}",
                detail="Closest: "
                + ", ".join(f"{r['test']} {r['alternative']} p = {r['p_value']:.4g}" for r in closest),
                severity=Severity.major,
                impact=Impact.none,
                statistic=stat,
                rows=rows,
                provenance=pv,
            )
        ]
    which = ", ".join(f"{r['test']} ({r['alternative']})" for r in matches)
    if named and not named_matches:
        return [
            Finding(
                NAME,
                "p_value_other_test",
                Outcome.flag,
                f"The reported {shown} is not what {rep.test} gives; it matches {which}",
                severity=Severity.major,
                impact=Impact.none,
                statistic=stat,
                rows=rows,
                provenance=pv,
            )
        ]
    if named and not two_sided_named:
        return [
            Finding(
                NAME,
                "p_value_one_sided",
                Outcome.flag,
                f"The reported {shown} reproduces only as a one-sided {rep.test} test ({which})",
                detail="Papers usually mean two-sided; a one-sided p reported as if two-sided halves it.",
                severity=Severity.major,
                impact=Impact.none,
                statistic=stat,
                rows=rows,
                provenance=pv,
            )
        ]
    return [
        Finding(
            NAME,
            "p_value_reproduced",
            Outcome.passed,
            f"The reported {shown} reproduces as {which}",
            statistic=stat,
            rows=rows,
            provenance=pv,
        )
    ]


def _arm_rows(ctx: Context, arm: str, scoring: str):
    """(scores, answered) of one arm at the claimed setting (``scoring``: the claimed one) on *all* its items (the
    published number of an arm run on its own item set is over those)."""
    import numpy as np

    try:
        f = ctx.samples.arm_scores(arm, scoring, ctx.claimed_budget)
    except (KeyError, AttributeError):
        p = ctx.samples.paired(scoring, ctx.claimed_budget)
        f = {
            "score": p.baseline if arm == "baseline" else p.treatment,
            "answered": p.frame["answered_b" if arm == "baseline" else "answered_t"],
        }
    return np.asarray(f["score"], dtype=float), np.asarray(f["answered"], dtype=float)


def _conventions(k: float, n: int, u: int, options: list[int]) -> list[tuple[str, str, float, float]]:
    """(code, words, rate, extra tolerance) for the logs' rate read under each common convention of a paper's
    scorer. ``u`` outputs have no extractable answer; the logs score them 0 ("counted wrong")."""
    out = []
    if u > 0:
        for kk in options:
            q = 1.0 / kk
            # A scorer that credits a seeded random guess gives Binomial(u, 1/K) extra passes, not exactly u/K.
            sd = math.sqrt(u * q * (1 - q)) / n
            out.append(
                (f"chance_1_{kk}", f"the unanswered outputs credited at chance (1/{kk})", (k + u * q) / n, 2 * sd)
            )
        if n - u > 0:
            out.append(("dropped", "the unanswered outputs dropped", k / (n - u), 0.0))
    return out


@dataclass(frozen=True)
class _Logs:
    """The reported arms against the logs at the claimed setting: what each arm's logs give, which reported rates
    reproduce, and the scorer convention that explains the others."""

    arms: dict[str, dict]  # arm → k, n, u (unanswered outputs), measured (k/n), reported
    given: dict[str, dict]  # the arms with a reported value
    reproduced: set[str]  # the arms whose reported value the logs reproduce
    explained: dict | None  # arm → the convention's read (code, words, rate, tolerance), when one accounts for all
    margin: float  # the materiality margin (NaN when undefined)
    mtol: float  # the same, 0 when undefined
    where: str


def _against_logs(ctx: Context, params: Params, prov: dict) -> list[Finding]:
    """The reported rates and n against the logs at the claimed setting.

    A mismatch is a finding of its own; the verdict on the *gain* stays with the significance check. It caps the
    verdict at inconclusive (``untrusted_input``) only when it is material — beyond the materiality margin, so it
    could account for a material part of the gain — and no arm's reported rate reproduces (then the logs or the
    scoring may not be those behind the numbers). When one arm reproduces, the other's gap *is* the gap between
    the reported and the measured delta, which the significance check judges. A mismatch that a common convention of
    a paper's scorer explains (unanswered outputs credited at chance 1/K, or dropped) is a note with the numbers."""
    rep = ctx.claim.claim.reported
    cell = ctx.cell(ctx.claimed_budget) if ctx.records is not None else None
    if cell is None:
        return []
    margin = ctx.margin
    mtol = margin if math.isfinite(margin) else 0.0
    places = ctx.written_places()[0] or table_places(rep.baseline, rep.treatment, rep.delta)
    where = f"{ctx.claimed_scoring}, {ctx.claimed_budget} tokens"
    arms = {}
    for arm in ("baseline", "treatment"):
        scores, answered = _arm_rows(ctx, arm, cell.scoring)  # the claimed cell's scoring is ctx.claimed_scoring
        k, n = float(scores.sum()), int(scores.size)
        u = int((answered == 0).sum())
        arms[arm] = {"k": k, "n": n, "u": u, "measured": k / n if n else math.nan, "reported": getattr(rep, arm)}
    # A live re-run, or a sequential audit's first drawn items (`audit.stopping`): a sample of the benchmark, not the
    # run behind the numbers, so they are compared within the sample's interval, not digit for digit.
    if ctx.claim.live or ctx.draw_seed is not None:
        return _against_rerun(ctx, cell, arms, prov, where)
    given = {a: d for a, d in arms.items() if d["reported"] is not None}
    reproduced = {a for a, d in given.items() if _matches(d, d["measured"], places)}
    explained = None
    if given and len(reproduced) < len(given):
        explained = _convention_fit(given, params, places)
    lg = _Logs(arms, given, reproduced, explained, margin, mtol, where)
    out = [_explained_finding(lg, explained, prov)] if explained is not None else _arm_findings(lg, params, prov)
    n_finding = _n_mismatch(ctx, lg, cell, prov)
    if n_finding is not None:
        out.append(n_finding)
    return out


def _matches(d: dict, rate: float, places: int | None, extra: float = 0.0) -> bool:
    """``rate`` (the logs', or a convention's read of them) reproduces the arm's reported value: for reported
    counts the same n and passes within ``extra``, else the rate within rounding plus ``extra``."""
    v = d["reported"]
    if isinstance(v, Counts):
        return v.n == d["n"] and abs(v.passes - rate * d["n"]) <= extra * d["n"] + 1e-9
    return math.isfinite(rate) and abs(rate - v) <= half_unit(v, places) + extra + 1e-12


def _convention_fit(given: dict[str, dict], params: Params, places: int | None) -> dict | None:
    """The common scorer convention that accounts for every reported arm (of those that do, the closest fit), as
    arm → its read; None when none does."""
    fits = []
    for code in [c for c, *_ in _conventions(1, 2, 1, params.chance_options)]:
        reads = {
            a: next((c for c in _conventions(d["k"], d["n"], d["u"], params.chance_options) if c[0] == code), None)
            for a, d in given.items()
        }
        found = {a: r for a, r in reads.items() if r is not None}
        if len(found) == len(reads) and all(_matches(given[a], r[2], places, r[3]) for a, r in found.items()):
            fits.append((sum(abs(_rate_of(given[a]["reported"]) - r[2]) for a, r in found.items()), found))
    if fits:
        return min(fits, key=lambda f: f[0])[1]
    return None


def _explained_finding(lg: _Logs, explained: dict, prov: dict) -> Finding:
    """The reported rates equal the logs' under a common convention of a paper's scorer (info)."""
    arms = lg.arms
    convention = next(iter(explained.values()))[1]
    parts = [
        f"{a} {_rate_of(arms[a]['reported'])} vs the logs' {arms[a]['k']:g}/{arms[a]['n']} = "
        f"{arms[a]['measured']:.4f}, {r[2]:.4f} with its {arms[a]['u']} unanswered outputs so read"
        for a, r in explained.items()
    ]
    return Finding(
        NAME,
        "explained_by_convention",
        Outcome.info,
        f"The reported rates equal the logs' with {convention}: " + "; ".join(parts),
        detail="The logs score an output without an extractable answer 0 (counted wrong); the paper's scorer "
        "evidently did not. The gain is audited as the logs score it; the difference is a convention of "
        "the scorer, not of the models. A scorer that credits a seeded random guess gives Binomial(u, 1/K) "
        "extra passes, so the match allows two of its standard deviations.",
        statistic={
            "convention": next(iter(explained.values()))[0],
            **{f"{a}_{key}": arms[a][key] for a in explained for key in ("k", "n", "u", "measured")},
            **{f"{a}_convention_rate": r[2] for a, r in explained.items()},
        },
        provenance=prov,
    )


def _arm_findings(lg: _Logs, params: Params, prov: dict) -> list[Finding]:
    """Per reported arm, whether the logs reproduce its rate; a gap is major when material, and caps the verdict
    only when no arm reproduces."""
    out: list[Finding] = []
    margin, mtol, reproduced = lg.margin, lg.mtol, lg.reproduced
    for arm, d in lg.given.items():
        reported = _rate_of(d["reported"])
        stat = {
            "arm": arm,
            "reported": reported,
            "measured": d["measured"],
            "k": d["k"],
            "n": d["n"],
            "unanswered": d["u"],
            "margin": margin,
        }
        if arm in reproduced:
            out.append(
                Finding(
                    NAME,
                    "matches_logs",
                    Outcome.passed,
                    f"The reported {arm} score {reported} matches the logs ({d['k']:g}/{d['n']} = {d['measured']:.4f})",
                    statistic=stat,
                    provenance=prov,
                )
            )
            continue
        diff = abs(reported - d["measured"]) if math.isfinite(d["measured"]) else math.inf
        material = diff > mtol
        caps = material and not reproduced
        stat.update(difference=diff, material=material)
        why = (
            "No arm's reported rate reproduces and the difference exceeds the materiality margin "
            f"±{mtol:.3g}: the logs or the scoring may not be those behind the published numbers, so the "
            "verdict is inconclusive at best."
            if caps
            else (
                "The other arm reproduces, so the logs and scoring are those behind the numbers: this gap is "
                "the gap between the reported and the measured delta, which the significance check judges."
                if reproduced
                else f"Within the materiality margin ±{mtol:.3g}: it cannot account for a material part of the gain."
            )
        )
        out.append(
            Finding(
                NAME,
                "differs_from_logs",
                Outcome.flag,
                f"The reported {arm} score {reported} differs from the logs at the claimed setting "
                f"({d['k']:g}/{d['n']} = {d['measured']:.4f}, {lg.where})",
                detail=why + " No common convention (unanswered outputs credited at chance 1/K for K "
                f"in {params.chance_options}, or dropped) accounts for it.",
                severity=Severity.major if material else Severity.minor,
                impact=Impact.untrusted_input if caps else Impact.none,
                statistic=stat,
                provenance=prov,
            )
        )
    return out


def _n_mismatch(ctx: Context, lg: _Logs, cell, prov: dict) -> Finding | None:
    """The reported n against the logs' items: explained when the paper dropped the unanswered ones (info), else a
    flag, major when material; None when n is not reported or matches."""
    rep = ctx.claim.claim.reported
    arms, mtol = lg.arms, lg.mtol
    n_arm = {a: d["n"] for a, d in arms.items()}
    # ``Claim.live`` is ``task is not None``: a live claim run with a task limit.
    limited = ctx.claim.task is not None and ctx.claim.task.limit
    if not (rep.n is not None and rep.n not in n_arm.values() and not limited):
        return None
    gap = max(abs(rep.n - v) for v in n_arm.values())
    dropped = [a for a, d in arms.items() if d["u"] and rep.n == d["n"] - d["u"]]
    material = gap / rep.n > mtol
    caps = material and not lg.reproduced and lg.explained is None
    shown = (
        f"{n_arm['baseline']} items"
        if n_arm["baseline"] == n_arm["treatment"]
        else f"{n_arm['baseline']} (baseline) and {n_arm['treatment']} (treatment) items"
    )
    if dropped:
        detail = (
            f"n = {rep.n} equals the logs' items less their unanswered outputs ({', '.join(dropped)}): the "
            "paper evidently dropped the items without an extractable answer."
        )
    elif caps:
        detail = (
            f"{gap} of {rep.n} items ({gap / rep.n:.1%}) are unaccounted for — more than the materiality "
            f"margin ±{mtol:.3g} could absorb — and no reported rate reproduces: the logs may not be those "
            "behind the numbers, so the verdict is inconclusive at best."
        )
    else:
        detail = f"{gap} of {rep.n} items ({gap / rep.n:.1%}): " + (
            "more than the materiality margin, but the reported rates reproduce, so the logs are those "
            "behind the numbers."
            if material
            else f"too few to move the delta by the materiality margin ±{mtol:.3g}."
        )
    return Finding(
        NAME,
        "n_mismatch",
        Outcome.flag if not dropped else Outcome.info,
        f"The claim reports n = {rep.n} items per arm; the logs have {shown}",
        detail=detail,
        severity=(Severity.major if material else Severity.minor) if not dropped else Severity.info,
        impact=Impact.untrusted_input if caps else Impact.none,
        statistic={
            "reported_n": rep.n,
            "logs_n": cell.n,
            "logs_n_baseline": n_arm["baseline"],
            "logs_n_treatment": n_arm["treatment"],
            "material": material,
        },
        provenance=prov,
    )


def _rate_of(v) -> float:
    return v.rate if isinstance(v, Counts) else v


def _against_rerun(ctx: Context, cell, arms: dict, prov: dict, where: str) -> list[Finding]:
    """A re-run on another server or machine need not match to the last digit: the reported rate must lie inside the
    re-run's Wilson interval. Outside it, the re-run is not the run behind the numbers — a finding, not a verdict."""
    out = []
    for arm, d in arms.items():
        if d["reported"] is None:
            continue
        reported = _rate_of(d["reported"])
        k, n = d["k"], d["n"]
        binary = bool(cell.binary)
        iv = stats.wilson(int(round(k)), n, level=ctx.level) if binary else None
        stat = {
            "arm": arm,
            "reported": reported,
            "measured": d["measured"],
            "k": k,
            "n": n,
            "ci_low": iv.low if iv else None,
            "ci_high": iv.high if iv else None,
        }
        pv = dict(prov, interval="Wilson")
        if iv is None or iv.contains(reported):
            out.append(
                Finding(
                    NAME,
                    "consistent_with_rerun",
                    Outcome.passed,
                    f"The reported {arm} score {reported} is inside the re-run's {ctx.level:.0%} interval "
                    f"({k:g}/{n} = {d['measured']:.4f}" + (f", [{iv.low:.3f}, {iv.high:.3f}])" if iv else ")"),
                    statistic=stat,
                    provenance=pv,
                )
            )
        else:
            out.append(
                Finding(
                    NAME,
                    "outside_rerun",
                    Outcome.flag,
                    f"The reported {arm} score {reported} lies outside the re-run's {ctx.level:.0%} "
                    f"interval [{iv.low:.3f}, {iv.high:.3f}] ({k:g}/{n}, {where})",
                    detail="The re-run does not reproduce the published absolute score; the verdict rests "
                    "on the gain, which the significance check judges.",
                    severity=Severity.major,
                    impact=Impact.none,
                    statistic=stat,
                    provenance=pv,
                )
            )
    return out


SPEC = CheckSpec(
    NAME,
    run,
    Params,
    needs_samples=False,
    description="reported rates, delta and p-value against k/n granularity and the standard tests",
)
"""This check in the registry (:data:`audit.checks.REGISTRY`)."""
