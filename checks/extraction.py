"""extraction: does the gain come from the other arm failing to produce a parseable answer?

Scorers that *extract* an answer before comparing it — a claim-defined regex scorer, an lm-eval filter (whose
regex writes "[invalid]" when it finds nothing), a logged extraction (``extracted`` null, e.g. MMLU-Pro's ``pred``)
— score an output without an extractable answer as wrong. Reasoning-heavy models often run out of words before
"The answer is …" or never state it; the gain then measures formatting, not ability. Records carry the flag per
item (``answered``: 1 found, 0 none, NaN the scoring does not extract).

Per extracting scoring, arm and budget: the share of outputs with no extractable answer (Wilson score interval);
its asymmetry between arms (McNemar test (continuity-corrected) on the paired no-answer flags, with the Tango
interval); and the delta on the items where both arms produced an answer (the decision inference of the
significance check). The evidence rule is the truncation check's: the gain is flagged as coming from unanswered
outputs only when the arms' no-answer rates differ significantly (α) *and*, on the items both arms answered,
H0 "gain ≥ margin" is rejected
one-sided at α/2. An unanswered output at the budget cap is both truncated and unanswered; each check counts it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import repeat
from operator import is_not
from typing import Any

import numpy as np
from audit.checks._common import CheckSpec, Context, fmt_ci, fmt_delta, item_evidence

from audit import stats
from audit.check_params import ExtractionParams
from audit.findings import Finding, Impact, Outcome, RateTable, Severity, TableKind
from audit.plan import DEFAULT_VARIANT

NAME = "extraction"
ANSWERED_ROLE = "items both arms answered"


Params = ExtractionParams


def answered_flags(frame, arm: str) -> np.ndarray:
    """One arm's answered flags on a paired frame (1 answer, 0 none, NaN unknown). An output that is not there at
    all (``no_output``) has no answer under any scoring; under a scoring that compares the whole output, every
    output that is there is its answer — so such a scoring is read as answering exactly when the arms' outputs
    include a missing one (else the flags stay NaN: the scoring does not extract)."""
    s = "b" if arm == "baseline" else "t"
    a = frame[f"answered_{s}"].to_numpy(dtype=float).copy()
    gone = _gone(frame[f"no_output_{s}"]) if f"no_output_{s}" in frame else np.zeros(len(a), dtype=bool)
    a[gone] = 0.0
    return a


def _gone(col) -> np.ndarray:
    """Whether each value names a cause (neither None nor NaN)."""
    vals = col.to_numpy(dtype=object)
    out = np.fromiter(map(is_not, vals, repeat(None)), dtype=bool, count=len(vals))
    maybe = np.flatnonzero(out)
    if len(maybe):  # the values that are not None: NaN is no cause either
        out[maybe] = [not (isinstance(c, float) and np.isnan(c)) for c in vals[maybe].tolist()]
    return out


def _causes(frame, s: str, mask: np.ndarray) -> dict[str, int]:
    """Counts of the no-output causes (with the finish reason) among ``mask``."""
    out: dict[str, int] = {}
    if f"no_output_{s}" not in frame:
        return out
    mask = mask & _gone(frame[f"no_output_{s}"])  # only the outputs that are not there are counted
    for c, fr in zip(
        frame[f"no_output_{s}"].to_numpy(dtype=object)[mask], frame[f"finish_{s}"].to_numpy(dtype=object)[mask]
    ):
        label = f"{c}, finish_reason {fr}" if isinstance(fr, str) else f"{c}, no finish reason"
        out[label] = out.get(label, 0) + 1
    return out


def no_answer_rates(records, level: float = 0.95) -> list[dict]:
    """Per scoring × budget × arm: outputs with no answer, of those whose answer status is known, with a Wilson
    interval and the cause of the outputs that are not there at all. A scoring that extracts counts every output
    its extractor found nothing in; a scoring that compares the whole output counts only the missing outputs, and
    has rows only where some output is missing. Empty when nothing extracts and no output is missing."""
    rows = []
    for scoring in records.scorings():
        for b in records.budgets():
            if not records.has(DEFAULT_VARIANT, b, scoring):
                continue
            f = records.paired(scoring, b).frame
            extracts = bool(
                np.isfinite(f["answered_b"].to_numpy(dtype=float)).any()
                or np.isfinite(f["answered_t"].to_numpy(dtype=float)).any()
            )
            missing_any = any(_gone(f[f"no_output_{s}"]).any() for s in ("b", "t") if f"no_output_{s}" in f)
            for arm, s in (("baseline", "b"), ("treatment", "t")):
                a = answered_flags(f, arm)
                if not extracts:
                    if not missing_any:
                        continue
                    a = np.where(np.isnan(a), 1.0, a)  # the whole output is the answer
                ok = ~np.isnan(a)
                known = a[ok]
                if not len(known):
                    continue
                k, n = int((known == 0).sum()), int(len(known))
                iv = stats.wilson(k, n, level=level)
                causes = _causes(f, s, np.ones(len(a), dtype=bool))
                gone = sum(causes.values())
                reason = None
                if gone:
                    reason = (
                        f"{gone} of them have no output at all ("
                        + "; ".join(f"{v} {c}" for c, v in causes.items())
                        + ")"
                        + ("" if extracts else "; the scoring compares the whole output")
                    )
                rows.append(
                    {
                        "scoring": scoring,
                        "budget": b,
                        "arm": arm,
                        "no_answer": k,
                        "known": n,
                        "items": int(len(a)),
                        "rate": k / n,
                        "ci_low": iv.low,
                        "ci_high": iv.high,
                        "ci_method": iv.method,
                        "no_output": gone,
                        "reason": reason,
                    }
                )
    return rows


def no_output_finding(ctx: Context, prov: dict) -> Finding | None:
    """Outputs that are not there at all (null content, null or empty text), per arm at the claimed scoring and
    every budget: flagged as probable budget exhaustion where the finish reason is absent or "length"."""
    rec = ctx.samples
    cs = ctx.claimed_scoring
    scoring = cs if cs is not None and cs in rec.scorings() else rec.scorings()[0]
    rows: list[dict[str, Any]] = []
    ev: list[dict] = []
    exhausted = 0
    for b in rec.budgets():
        if not rec.has(DEFAULT_VARIANT, b, scoring):
            continue
        p = rec.paired(scoring, b)
        f = p.frame
        for arm, s in (("baseline", "b"), ("treatment", "t")):
            if f"no_output_{s}" not in f:
                continue
            gone = _gone(f[f"no_output_{s}"])
            if not gone.any():
                continue
            fr = f[f"finish_{s}"].to_numpy(dtype=object)
            budget_out = gone & np.array([not isinstance(x, str) or x == "length" for x in fr], dtype=bool)
            exhausted += int(budget_out.sum())
            causes = _causes(f, s, gone)
            rows.append(
                {
                    "arm": arm,
                    "budget": b,
                    "items": p.n,
                    "no_output": int(gone.sum()),
                    "probable_budget_exhaustion": int(budget_out.sum()),
                    "causes": "; ".join(f"{v} {c}" for c, v in causes.items()),
                }
            )
            if len(ev) < 5:
                ev += item_evidence(p, gone, k=5 - len(ev))
    if not rows:
        return None
    per_arm = {a: sum(r["no_output"] for r in rows if r["arm"] == a) for a in ("baseline", "treatment")}
    title = (
        f"{per_arm['baseline']} baseline and {per_arm['treatment']} treatment outputs are not there at all (null "
        f"or empty); {exhausted} of them with no finish reason or 'length': probable budget exhaustion"
    )
    return Finding(
        NAME,
        "no_output",
        Outcome.flag,
        title,
        detail="An output that is not there scores 0 under every scoring, and counts as no answer in the "
        "no-answer table (with its cause). A reasoning model that spends the whole budget thinking "
        "returns null or empty content, so without a finish reason that says otherwise these are "
        "budget exhaustion until shown otherwise: re-run them with a larger budget before reading "
        "the gain as ability.",
        severity=Severity.minor,
        impact=Impact.none,
        statistic={
            "scoring": scoring,
            "no_output_baseline": per_arm["baseline"],
            "no_output_treatment": per_arm["treatment"],
            "probable_budget_exhaustion": exhausted,
        },
        rows=rows,
        evidence=ev,
        provenance=prov,
    )


def run(ctx: Context, params: Params) -> list[Finding]:
    rec = ctx.samples
    prov = ctx.provenance(
        rates="Wilson score interval",
        asymmetry="McNemar test (continuity-corrected) (Tango interval)",
        delta="the decision inference (see significance)",
        no_answer_rule="extracting scorer found no answer: no regex match, lm-eval '[invalid]' or "
        "empty, logged extraction null; and under any scoring an output that is not "
        "there at all (null content, null or empty text)",
    )
    rate_rows = no_answer_rates(rec, ctx.level)
    missing = no_output_finding(ctx, prov)
    if not rate_rows:
        return [
            Finding(
                NAME,
                "no_extraction",
                Outcome.info,
                "No scoring extracts an answer, so answer-extraction failures cannot be counted",
                detail="Extracting scorings: claim-defined regex / kind: extract scorers, lm-eval filters "
                "other than 'none', or an `extracted` key in generic logs.",
                provenance=prov,
            )
        ]
    findings = [
        Finding(
            NAME,
            "rates",
            Outcome.info,
            "Share of outputs with no extractable answer, per scoring, arm and budget",
            rows=rate_rows,
            table=RateTable.of(TableKind.no_answer, rate_rows, count="no_answer"),
            provenance=prov,
        )
    ]
    if missing is not None:
        findings.append(missing)
    cb, cs = ctx.claimed_budget, ctx.claimed_scoring
    if cb is None or cs is None or not rec.has(DEFAULT_VARIANT, cb, cs):
        return findings
    findings.append(_claimed_finding(ctx, params, cs, prov))
    return findings


@dataclass(frozen=True)
class _Answered:
    """The claimed cell split by answered outputs: the arms' no-answer rates and their asymmetry, and the delta on
    the items both arms answered."""

    known: np.ndarray  # items whose answer status is known in both arms
    nb: np.ndarray  # no-answer flags on the known items
    nt: np.ndarray
    rb: float  # no-answer rates
    rt: float
    asym: stats.PairedInference  # the no-answer asymmetry (McNemar, Tango interval)
    n_both: int  # items both arms answered
    both_inf: stats.PairedInference | None  # the delta on them (None below 2 items)
    iv: stats.Interval
    delta_all: float  # the claimed cell's delta on every item
    margin: float
    p_both: float  # one-sided p of H0 "gain ≥ margin" on the items both arms answered
    row: dict
    stat: dict


def _claimed_flags(p) -> tuple[np.ndarray, np.ndarray]:
    """Both arms' answered flags at the claimed cell; under a scoring that compares the whole output (no flags) with
    a missing output in an arm, the output is the answer, missing exactly when there is none."""
    ab, at = answered_flags(p.frame, "baseline"), answered_flags(p.frame, "treatment")
    if (
        np.isnan(p.frame["answered_b"].to_numpy(dtype=float)).all()
        and np.isnan(p.frame["answered_t"].to_numpy(dtype=float)).all()
        and (ab == 0).any() | (at == 0).any()
    ):
        # A scoring that compares the whole output: its answer is the output, missing exactly when there is none.
        ab, at = np.where(np.isnan(ab), 1.0, ab), np.where(np.isnan(at), 1.0, at)
    return ab, at


def _answered(ctx: Context, p, ab: np.ndarray, at: np.ndarray, known: np.ndarray) -> _Answered:
    """The no-answer rates and asymmetry, the delta on the items both arms answered, and the finding's numbers."""
    cb, cs = ctx.claimed_budget, ctx.claimed_scoring
    nb, nt = 1.0 - ab[known], 1.0 - at[known]
    rb, rt = float(nb.mean()), float(nt.mean())
    asym = stats.paired_inference(nb, nt, level=ctx.level)
    both = known & (ab == 1) & (at == 1)
    n_both = int(both.sum())
    claimed = ctx.cell(cb)
    delta_all = claimed.delta.value if claimed is not None else math.nan
    both_inf = stats.paired_inference(p.baseline[both], p.treatment[both], level=ctx.level) if n_both >= 2 else None
    margin = ctx.margin if math.isfinite(ctx.margin) else 0.0
    p_both = both_inf.p_value(ctx.sign * margin, "less" if ctx.sign > 0 else "greater") if both_inf else math.nan
    iv = (
        both_inf.interval
        if both_inf
        else stats.Interval.nan(ctx.level, "paired", f"{n_both} item(s) both arms answered: need 2")
    )
    row = {
        "variant": DEFAULT_VARIANT,
        "budget": cb,
        "scoring": cs,
        "n": n_both,
        "baseline": float(np.mean(p.baseline[both])) if n_both else math.nan,
        "treatment": float(np.mean(p.treatment[both])) if n_both else math.nan,
        "delta": both_inf.value if both_inf else math.nan,
        "ci_low": iv.low,
        "ci_high": iv.high,
        "ci_method": iv.method,
        "role": ANSWERED_ROLE,
    }
    stat = {
        "budget": cb,
        "scoring": cs,
        "no_answer_baseline": rb,
        "no_answer_treatment": rt,
        "asymmetry_delta": asym.value,
        "asymmetry_ci_low": asym.interval.low,
        "asymmetry_ci_high": asym.interval.high,
        "asymmetry_p": asym.test.p_value,
        "asymmetry_test": asym.test.method,
        "n_both_answered": n_both,
        "delta_all": delta_all,
        "delta_both_answered": row["delta"],
        "ci_low": iv.low,
        "ci_high": iv.high,
        "p_both_below_margin": p_both,
        "margin": margin,
    }
    return _Answered(known, nb, nt, rb, rt, asym, n_both, both_inf, iv, delta_all, margin, p_both, row, stat)


def _from_no_answer_finding(
    ctx: Context, cs: str, p, a: _Answered, known: np.ndarray, rates: str, on_both: str, asym_text: str, prov: dict
) -> Finding:
    """The critical flag: the gain comes from the arm with more no-answer outputs, gone on both-answered items."""
    cb = ctx.claimed_budget
    rb, rt, stat, row = a.rb, a.rt, a.stat, a.row
    worse = "baseline" if rb > rt else "treatment"
    mask = np.zeros(p.n, dtype=bool)
    mask[np.flatnonzero(known)[(a.nb if worse == "baseline" else a.nt) == 1]] = True
    return Finding(
        NAME,
        "from_no_answer",
        Outcome.flag,
        f"The gain comes from the {worse} failing to produce a parseable answer: {rates} ({cs!r}, {cb} tokens); "
        + on_both,
        detail=asym_text + f" On the items both arms answered H0 'gain ≥ margin {a.margin:.3g}' is rejected: "
        f"one-sided p = {a.p_both:.3g} < α/2.",
        severity=Severity.critical,
        impact=Impact.fragile,
        statistic=stat,
        rows=[row],
        provenance=prov,
        evidence=item_evidence(p, mask),
    )


def _claimed_finding(ctx: Context, params: Params, cs: str, prov: dict) -> Finding:
    """Whether the claimed gain comes from one arm failing to produce a parseable answer (on evidence), the arms
    merely differ, many outputs lack an answer, or few do. ``cs``: the claimed scoring."""
    cb = ctx.claimed_budget
    p = ctx.samples.paired(cs, cb)
    ab, at = _claimed_flags(p)
    known = ~np.isnan(ab) & ~np.isnan(at)
    if known.sum() < 2:
        return Finding(
            NAME,
            "claimed_not_extracting",
            Outcome.info,
            f"The claimed scoring {cs!r} does not extract an answer (or the logs do not say), so "
            "the claimed gain cannot be split by answered / unanswered outputs",
            provenance=prov,
        )
    a = _answered(ctx, p, ab, at, known)
    rb, rt, asym, stat, row = a.rb, a.rt, a.asym, a.stat, a.row
    asymmetric = asym.test.p_value < ctx.alpha
    gains = math.isfinite(a.delta_all) and ctx.sign * a.delta_all > 0
    rates = f"{rb:.1%} of baseline vs {rt:.1%} of treatment outputs have no extractable answer"
    on_both = (
        f"on the {a.n_both} items both arms answered the delta is {fmt_delta(a.both_inf.value)} {fmt_ci(a.iv)}"
        if a.both_inf
        else f"{a.n_both} item(s) were answered by both arms"
    )
    asym_text = (
        f"No-answer asymmetry: McNemar p = {asym.test.p_value:.3g}, difference (treatment − baseline) "
        f"{fmt_delta(asym.value)} {fmt_ci(asym.interval)}."
    )
    if asymmetric and gains and math.isfinite(a.p_both) and a.p_both < ctx.alpha / 2:
        return _from_no_answer_finding(ctx, cs, p, a, known, rates, on_both, asym_text, prov)
    if asymmetric:
        return Finding(
            NAME,
            "asymmetric_no_answer",
            Outcome.info,
            f"The arms fail to produce a parseable answer at different rates: {rates}; " + on_both,
            detail=asym_text + (" The gain is not shown to vanish on the items both arms answered." if gains else ""),
            statistic=stat,
            rows=[row],
            provenance=prov,
        )
    if max(rb, rt) > params.high_rate:
        return Finding(
            NAME,
            "high_rate",
            Outcome.info,
            f"Many outputs have no extractable answer: {rates}; " + on_both,
            detail=asym_text,
            statistic=stat,
            rows=[row],
            provenance=prov,
        )
    return Finding(
        NAME,
        "answered",
        Outcome.passed,
        f"Few outputs lack an extractable answer: {rates}; " + on_both,
        detail=asym_text,
        statistic=stat,
        rows=[row],
        provenance=prov,
    )


SPEC = CheckSpec(
    NAME,
    run,
    Params,
    needs_samples=True,
    description="outputs with no extractable answer per arm; their asymmetry; the delta on answered items",
)
"""This check in the registry (:data:`audit.checks.REGISTRY`)."""
