"""emergence: is the gain an artifact of a discontinuous metric?

Schaeffer, Miranda & Koyejo (2023), "Are Emergent Abilities of Large Language Models a Mirage?", arXiv:2304.15004:
a smooth rise in per-token accuracy p looks like a sudden jump under exact match, which for an L-token target
behaves like p^L, while a continuous metric (token edit distance ≈ L(1 − p), edit similarity, Brier score,
log-likelihood) moves smoothly. The check therefore

1. compares the paired delta under the discontinuous scorings in the records (exact match, strict extraction,
   multiple-choice grade) with the delta under the continuous ones (edit similarity, token edit distance, Brier,
   log-likelihood). Which is which: ``checks.emergence.discontinuous`` / ``continuous`` in the claim, else
   ``audit.scoring.KINDS``, else the values (a scoring whose scores are all 0 or 1 is discontinuous). Each scoring is
   read in its own polarity (``Context.polarity``: the claimed scoring takes the claim's ``direction``; built-in
   scorers such as edit similarity are higher-is-better whatever the claim's direction; ``lower_is_better`` here or
   ``perturbations.higher_is_better`` in the claim override), so with ``direction: less`` (an error rate) an edit
   similarity that rises is a gain, not a reversal;
2. computes, per item, the per-token accuracy a_i of the answer against the target: the fraction of the L_i target
   tokens reproduced *in position* (character tokens by default, whitespace-separated words with
   ``tokens: whitespace``; the answer is the logged extraction when the logs carry one, else the output text, both
   stripped), and from it the predicted exact match, against the observed token exact match, with a calibration
   table by target length and the observed vs expected token edit distance L(1 − p̄). Two predictors are reported:
   the pooled mean_i(p̄^{L_i}) with p̄ = matched target tokens / target tokens (Schaeffer's model: one per-token
   accuracy per model; the default, because it is unbiased under independent errors) and the per-item plug-in
   mean_i(a_i^{L_i}) (``predictor: per_item``), which overstates exact match whenever misses are near misses
   (E[a^L] ≥ p^L by Jensen's inequality: a 7-of-8 near miss still contributes 0.875^8 ≈ 0.34);
3. checks resolution: an arm at 0/n (or n/n) under a discontinuous scoring says nothing about how far it is from
   the threshold.

Flags. "The gain exists only under the discontinuous metric" (``discontinuous_only``, impact fragile) is a statement
about every continuous metric, and rests on evidence for each, never on a continuous delta that is merely not
significant:

* critical: a continuous metric significantly *reverses* (its CI excludes 0 on the harmful side, in its own
  polarity);
* major: no continuous metric shows a significant gain, and for each of them the continuous gain is shown to be
  *smaller* than the discontinuous one: the paired t interval of the per-item difference of the two gains (each in
  its own polarity; the cluster-robust interval with ``options.cluster_field``) lies above 0. This needs both
  scorings on a common 0–1 scale (exact match, edit similarity, per-token accuracy); a metric on another scale (edit
  distance, log-likelihood) can support the flag only by a significant reversal. The null refuted is "the
  continuous metric gains at least as much as the discontinuous one" (mean per-item gap ≤ 0). Because a smooth
  per-token improvement can also move exact match more than a continuous metric (p^L is steep in the middle), the
  flag further needs every continuous gain to be non-significant; ``explained_by_token_accuracy`` below says when
  p^L accounts for the exact-match gain;
* both need at least ``min_changed`` items whose discontinuous score differs between the arms (the informative items
  of its gain, McNemar's discordant pairs; default 10) and, for a reversal, as many items whose continuous score
  differs. Why 10: with fewer, the gain rests on a handful of items whose answers a reader can inspect one by one, and
  a normal-theory interval of a mean of a few nonzero differences is too coarse to trust; it matches the 10 per class
  asked of an AUC in the probes and mimicry checks.

Otherwise the same numbers are reported as ``discontinuous_only_unresolved`` (inconclusive, minor, no verdict impact)
with the reason. An exact-match gain that the per-token improvement fully explains (the predicted exact-match delta
lies inside the observed delta's CI: the gain is real but smooth, not emergent) is a minor flag with no verdict impact,
as is an arm at 0/n.

The check runs when the records carry a continuous scoring or the claim has a ``checks.emergence`` section;
otherwise it returns nothing, so claims scored only with exact match are unaffected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from audit.checks._common import CheckSpec, Context, excludes_zero, fmt_ci, fmt_delta

from audit import stats
from audit.check_params import EmergenceParams
from audit.findings import Finding, Impact, Outcome, Severity
from audit.records import DEFAULT_VARIANT

NAME = "emergence"
TOKEN_ACCURACY = "token-accuracy"
_MAX_LENGTH_BINS = 12


Params = EmergenceParams


# ---------------------------------------------------------------------------------------------------------------
# Pure helpers (tested directly)


def tokenize(s: str, tokens: str = "character") -> list[str]:
    s = (s or "").strip()
    return s.split() if tokens == "whitespace" else list(s)


def token_accuracy(answer: str, target: str, tokens: str = "character") -> tuple[float, int, bool]:
    """(a, L, exact): the share of the L target tokens that the answer reproduces in the same position, and whether
    the answer's tokens equal the target's. a is NaN when the target has no tokens."""
    t = tokenize(target, tokens)
    o = tokenize(answer, tokens)
    L = len(t)
    if L == 0:
        return math.nan, 0, False
    hits = sum(1 for j in range(min(L, len(o))) if o[j] == t[j])
    return hits / L, L, o == t


def token_edit_distance(a: list[str], b: list[str]) -> int:
    """Levenshtein distance between two token lists (unit insert, delete, substitute): RapidFuzz
    ``Levenshtein.distance``, which compares sequences of hashables element by element (as ``scoring`` does)."""
    from rapidfuzz.distance import Levenshtein

    return int(Levenshtein.distance(a, b))


def predicted_exact_match(acc: np.ndarray, lengths: np.ndarray, predictor: str = "pooled") -> float:
    """Predicted exact match under independent token errors (Schaeffer et al. 2023): mean_i(a_i^{L_i}), or with
    ``pooled`` mean_i(p̄^{L_i}) where p̄ = Σ a_i L_i / Σ L_i. Uses ``stats.exact_match_from_token_accuracy``."""
    acc = np.asarray(acc, dtype=float)
    lengths = np.asarray(lengths, dtype=int)
    if acc.size == 0:
        return math.nan
    if predictor == "pooled":
        p = float(np.sum(acc * lengths) / np.sum(lengths))
        base = np.full(acc.shape, p)
    else:
        base = acc
    out = np.empty(acc.shape)
    for L in np.unique(lengths):
        m = lengths == L
        out[m] = stats.exact_match_from_token_accuracy(base[m], int(L))
    return float(out.mean())


def expected_edit_distance(acc: np.ndarray, lengths: np.ndarray) -> float:
    """mean_i L_i(1 − p̄) with the pooled per-token accuracy p̄ (``stats.edit_distance_from_token_accuracy``)."""
    acc = np.asarray(acc, dtype=float)
    lengths = np.asarray(lengths, dtype=int)
    if acc.size == 0:
        return math.nan
    p = float(np.sum(acc * lengths) / np.sum(lengths))
    return float(np.mean([stats.edit_distance_from_token_accuracy(p, int(L)) for L in lengths]))


def classify(ctx: Context, params: Params) -> dict[str, tuple[str, str]]:
    """scoring → (kind, where the kind came from): the check's parameters, else ``audit.scoring`` (``kind_of`` /
    ``KINDS``, imported defensively), else the scores themselves (all 0 or 1: discontinuous)."""
    try:
        from audit import scoring as _scoring

        kinds = dict(getattr(_scoring, "KINDS", {}) or {})
        kind_of = getattr(_scoring, "kind_of", None)
    except Exception:  # the registry of kinds is optional
        kinds, kind_of = {}, None
    t = ctx.samples.table
    out = {}
    for s in ctx.samples.scorings():
        known = None
        if kind_of is not None:
            try:
                known = kind_of(s, ctx.claim.scorers)
            except Exception:  # an unknown or unloadable scorer: fall back to the values
                known = None
        if known is None:
            known = kinds.get(s)
        if s in params.discontinuous:
            out[s] = ("discontinuous", "checks.emergence.discontinuous")
        elif s in params.continuous:
            out[s] = ("continuous", "checks.emergence.continuous")
        elif known in ("discontinuous", "continuous"):
            out[s] = (known, "audit.scoring")
        else:
            v = t.loc[t["scoring"] == s, "score"].dropna().to_numpy(dtype=float)
            binary = bool(v.size) and bool(np.all((v == 0) | (v == 1)))
            out[s] = (
                ("discontinuous", "scores are all 0 or 1") if binary else ("continuous", "scores are not all 0 or 1")
            )
    return out


# ---------------------------------------------------------------------------------------------------------------
# The check


@dataclass(frozen=True)
class _Metrics:
    """The scorings at the claimed budget sorted by kind, each one's polarity, and the per-token analysis."""

    budget: int
    kinds: dict[str, tuple[str, str]]  # scoring → (kind, where the kind came from)
    sign: dict[str, int]  # scoring → polarity (+1: higher is better)
    disc: list[str]  # discontinuous scorings with a cell at the budget
    cont: list[str]  # continuous scorings with a cell at the budget
    ref: str | None  # the discontinuous scoring the per-token analysis is checked against
    tok: dict | None  # _token_analysis (None without targets)
    rows: list[dict]  # the per_metric finding's rows
    claimed: str  # the claimed scoring


@dataclass(frozen=True)
class _Continuous:
    """One continuous metric a discontinuous gain is weighed against."""

    name: str
    est: Any  # stats.Estimate: its delta at the claimed budget
    sign: int  # its polarity
    test: Any  # its cell's test (stats.TestResult | None)
    diffs: np.ndarray  # per-item treatment − baseline
    full: np.ndarray  # the same, aligned with the claimed cell's item ids (NaN where an item is missing)
    unit: bool  # every score lies in [0, 1]


def run(ctx: Context, params: Params) -> list[Finding]:
    rec = ctx.records
    if rec is None or not len(rec.table):
        return []
    kinds = classify(ctx, params)
    configured = NAME in ctx.claim.checks.model_fields_set  # the claim has a checks.emergence block
    if not configured and not any(k == "continuous" for k, _ in kinds.values()):
        return []
    cb = ctx.claimed_budget
    prov = ctx.provenance(
        method="Schaeffer et al. 2023 (arXiv:2304.15004): discontinuous vs continuous metrics, exact match ≈ p^L",
        delta="the decision inference (see significance); gap: paired t",
        tokens=params.tokens,
        predictor=params.predictor,
        kinds={s: f"{k} ({src})" for s, (k, src) in kinds.items()},
    )
    claimed = ctx.cell(cb) if cb is not None else None
    if cb is None or claimed is None:
        return [
            Finding(
                NAME,
                "no_claimed_cell",
                Outcome.inconclusive,
                "No records at the claimed setting to compare metrics",
                severity=Severity.minor,
                impact=Impact.none,
                provenance=prov,
            )
        ]
    ms = _metrics(ctx, params, kinds, cb, claimed.scoring)  # the claimed cell's scoring is ctx.claimed_scoring
    findings: list[Finding] = [
        Finding(
            NAME,
            "per_metric",
            Outcome.info,
            f"Delta under discontinuous vs continuous metrics at {cb} tokens: "
            + ", ".join(f"{r['scoring']} ({r['kind']}): {fmt_delta(r['delta'])}" for r in ms.rows),
            detail="Continuous metrics move smoothly with per-token accuracy; exact match moves like p^L.",
            rows=ms.rows,
            provenance=prov,
        )
    ]
    # 1. Does the gain exist only under the discontinuous metric?
    findings.extend(_discontinuous_only(ctx, params, ms, prov))
    # 2. Per-token accuracy, predicted vs observed exact match.
    if ms.tok is not None:
        findings.extend(_token_findings(ctx, params, ms.tok, prov))
    # 3. Resolution: an arm at 0/n or n/n under a discontinuous scoring.
    findings.extend(_resolution(ctx, ms, prov))
    return findings


def _metrics(ctx: Context, params: Params, kinds: dict[str, tuple[str, str]], cb: int, claimed: str) -> _Metrics:
    """Which scorings at the claimed budget are discontinuous or continuous, in which polarity, with their cells'
    rows and the per-token analysis against the reference discontinuous scoring (``claimed``: the claimed
    scoring)."""
    sign = {s: polarity(ctx, params, s) for s in kinds}
    disc = [s for s, (k, _) in kinds.items() if k == "discontinuous" and ctx.cell(cb, s) is not None]
    cont = [s for s, (k, _) in kinds.items() if k == "continuous" and ctx.cell(cb, s) is not None]
    rows = []
    for s in kinds:
        c = ctx.cell(cb, s)
        if c is not None:
            rows.append(c.row(kind=kinds[s][0], kind_source=kinds[s][1], better="lower" if sign[s] < 0 else "higher"))

    ref = claimed if claimed in disc else (disc[0] if disc else None)
    tok = _token_analysis(ctx, params, ref, cb, claimed)
    if tok is not None:
        rows.append(tok["row"])
    return _Metrics(cb, kinds, sign, disc, cont, ref, tok, rows, claimed)


def _diffs(rec, scoring: str, budget: int) -> np.ndarray:
    """Per-item treatment − baseline under ``scoring`` at ``budget``, in the paired records' item order."""
    p = rec.paired(scoring, budget)
    return p.treatment - p.baseline


def _continuous(ctx: Context, ms: _Metrics, item_ids: np.ndarray) -> list[_Continuous]:
    """The continuous metrics a discontinuous gain is weighed against: the continuous scorings, else the per-token
    accuracy when it is comparable with the discontinuous scoring."""
    rec, cb, tok = ctx.samples, ms.budget, ms.tok
    # (every scoring in ms.cont has a cell at the budget)
    continuous = [
        _Continuous(
            s, c.delta, ms.sign[s], c.test, _diffs(rec, s, cb), _aligned(rec, s, cb, item_ids), _unit_scale(rec, s)
        )
        for s in ms.cont
        if (c := ctx.cell(cb, s)) is not None
    ]
    if tok is not None and tok["comparable"] and not ms.cont:
        arms = tok["arms"]
        d_tok = arms["treatment"]["acc"] - arms["baseline"]["acc"]
        full = pd.Series(d_tok, index=arms["baseline"]["ids"]).reindex(item_ids).to_numpy(dtype=float)
        continuous.append(_Continuous(tok["name"], tok["acc_delta"], 1, tok["acc_test"], d_tok, full, True))
    return continuous


def _discontinuous_only(ctx: Context, params: Params, ms: _Metrics, prov: dict) -> list[Finding]:
    """Whether each significant discontinuous gain exists only under the discontinuous metric, or has no continuous
    metric to be compared with."""
    rec, cb, tok = ctx.samples, ms.budget, ms.tok
    claimed_pair = rec.paired(ms.claimed, cb)
    continuous = _continuous(ctx, ms, claimed_pair.item_ids)
    judged = [ms.claimed] if ms.ref == ms.claimed else ms.disc  # scorings in ms.disc: each has a cell at the budget
    gains = [
        (s, c)
        for s in judged
        if (c := ctx.cell(cb, s)) is not None and _gain(ctx, c.delta, ms.sign[s], c.test, _diffs(rec, s, cb)) > 0
    ]
    findings: list[Finding] = []
    if gains and not continuous:
        findings.append(
            Finding(
                NAME,
                "no_continuous_metric",
                Outcome.inconclusive,
                "No continuous metric to compare the discontinuous gain with",
                detail="Add a continuous scoring (edit similarity, token edit distance, Brier or log-likelihood) to "
                "perturbations.scorings, or give targets the answers can be compared with token by token."
                + (f" {tok['reason']}" if tok is not None and tok.get("reason") else ""),
                severity=Severity.minor,
                impact=Impact.none,
                provenance=prov,
            )
        )
    for s, c in gains:
        f = _gain_finding(ctx, params, ms, s, c.delta, continuous, claimed_pair, prov)
        if f is not None:
            findings.append(f)
    return findings


def _continuous_evidence(
    ctx: Context,
    params: Params,
    ms: _Metrics,
    s: str,
    continuous: list[_Continuous],
    verdicts: dict[str, int],
    claimed_pair,
) -> tuple[dict, list[str]]:
    """Per continuous metric: its delta and whether it is evidence that the gain under ``s`` exists only there (a
    reversal on enough changed items, or a gain shown smaller on the common 0–1 scale); and why each is not."""
    rec, cb = ctx.records, ms.budget
    item_ids, clusters = claimed_pair.item_ids, claimed_pair.clusters
    g_s = ms.sign[s] * _aligned(rec, s, cb, item_ids)
    evidence, why_not = {}, []
    for cm in continuous:
        c, est, sg, dd, full, unit = cm.name, cm.est, cm.sign, cm.diffs, cm.full, cm.unit
        n_c = int(np.count_nonzero(dd))
        e = {
            "delta": est.value,
            "ci_low": est.interval.low,
            "ci_high": est.interval.high,
            "better": "lower" if sg < 0 else "higher",
            "changed_items": n_c,
        }
        if verdicts[c] < 0:
            e["evidence"] = "reverses" if n_c >= params.min_changed else None
            if e["evidence"] is None:
                why_not.append(f"{c} reverses on only {n_c} changed item(s) (need {params.min_changed})")
        elif verdicts[c] == 0:
            if not (unit and _unit_scale(rec, s)):
                e["evidence"] = None
                why_not.append(
                    f"{c} is not significant and is not on the 0–1 scale of {s!r}, so it cannot be "
                    "shown smaller than the discontinuous gain"
                )
            else:
                m = np.isfinite(full) & np.isfinite(g_s)
                dd_est = _smaller(ctx, sg * full[m], g_s[m], f"{s}/{c}", None if clusters is None else clusters[m])
                iv = dd_est.interval
                e.update(
                    {
                        "gap": dd_est.value,
                        "gap_ci_low": iv.low,
                        "gap_ci_high": iv.high,
                        "gap_ci_method": iv.method,
                        "gap_n": int(m.sum()),
                    }
                )
                e["evidence"] = "smaller" if iv.ok and iv.low > 0 else None
                if e["evidence"] is None:
                    why_not.append(
                        f"{c} is not significant, but it is not shown smaller than the gain under "
                        f"{s!r} either (difference of gains {fmt_delta(dd_est.value)} {fmt_ci(iv)})"
                    )
        evidence[c] = e
    return evidence, why_not


def _discontinuous_only_finding(
    s: str, d: stats.Estimate, cont_txt: str, evidence: dict, rev: list[str], stat: dict, prov: dict
) -> Finding:
    """The flag for a gain under ``s`` that the continuous metrics reverse or show smaller: critical if one reverses."""
    gap_txt = "; ".join(
        f"{c}: difference of gains {fmt_delta(e['gap'])} [{e['gap_ci_low']:+.3f}, {e['gap_ci_high']:+.3f}]"
        for c, e in evidence.items()
        if e.get("evidence") == "smaller"
    )
    return Finding(
        NAME,
        "discontinuous_only",
        Outcome.flag,
        f"The gain exists only under the discontinuous metric {s!r} ({fmt_delta(d.value)} "
        f"{fmt_ci(d.interval)}); under the continuous metric(s) it is {cont_txt}",
        detail="Schaeffer et al. (2023): a gain visible only under exact match / strict extraction is a "
        "property of the metric, not a measured improvement of the outputs"
        + (
            f" — here {', '.join(rev)} significantly reverses."
            if rev
            else f". Each continuous gain is shown smaller than the discontinuous one (paired t of "
            f"the per-item difference of gains, CI above 0): {gap_txt}."
        ),
        severity=Severity.critical if rev else Severity.major,
        impact=Impact.fragile,
        statistic=stat,
        provenance=prov,
    )


def _gain_finding(
    ctx: Context,
    params: Params,
    ms: _Metrics,
    s: str,
    d: stats.Estimate,
    continuous: list[_Continuous],
    claimed_pair,
    prov: dict,
) -> Finding | None:
    """For one significant gain under the discontinuous ``s`` (``d``: its cell's delta): shown to exist only there
    (flag), not shown either way (inconclusive), or also under a continuous metric (pass); None without a continuous
    metric."""
    cb = ms.budget
    d_s = _diffs(ctx.samples, s, cb)
    n_changed = int(np.count_nonzero(d_s))
    verdicts = {cm.name: _gain(ctx, cm.est, cm.sign, cm.test, cm.diffs) for cm in continuous}
    sig = [c for c, v in verdicts.items() if v > 0]
    cont_txt = "; ".join(f"{cm.name}: {fmt_delta(cm.est.value)} {fmt_ci(cm.est.interval)}" for cm in continuous)
    evidence, why_not = _continuous_evidence(ctx, params, ms, s, continuous, verdicts, claimed_pair)
    stat = {
        "scoring": s,
        "delta": d.value,
        "ci_low": d.interval.low,
        "ci_high": d.interval.high,
        "better": "lower" if ms.sign[s] < 0 else "higher",
        "changed_items": n_changed,
        "min_changed": params.min_changed,
        "continuous": evidence,
    }
    rev = [c for c, e in evidence.items() if e.get("evidence") == "reverses"]
    if n_changed < params.min_changed:
        why_not = [f"only {n_changed} item(s) change their {s!r} score between the arms (need {params.min_changed})"]
    if (
        continuous
        and not sig
        and n_changed >= params.min_changed
        and (rev or all(e.get("evidence") == "smaller" for e in evidence.values()))
    ):
        return _discontinuous_only_finding(s, d, cont_txt, evidence, rev, stat, prov)
    if continuous and not sig:
        return Finding(
            NAME,
            "discontinuous_only_unresolved",
            Outcome.inconclusive,
            f"The gain under {s!r} ({fmt_delta(d.value)} {fmt_ci(d.interval)}) is not significant under the "
            f"continuous metric(s) ({cont_txt}), but that is not evidence that it exists only under {s!r}",
            detail="Not evidence: " + "; ".join(why_not) + ". A continuous delta that merely loses significance "
            "does not show the gain to be an artifact of the metric.",
            severity=Severity.minor,
            impact=Impact.none,
            statistic=stat,
            provenance=prov,
        )
    if continuous:
        return Finding(
            NAME,
            "holds_continuous",
            Outcome.passed,
            f"The gain under {s!r} ({fmt_delta(d.value)} {fmt_ci(d.interval)}) also shows under continuous "
            f"metric(s): {cont_txt}",
            statistic=stat,
            provenance=prov,
        )
    return None


def _resolution(ctx: Context, ms: _Metrics, prov: dict) -> list[Finding]:
    """Per discontinuous scoring, whether an arm is at 0/n or n/n, where exact match cannot resolve how far it is
    from the threshold."""
    cb, cont = ms.budget, ms.cont
    findings: list[Finding] = []
    for s in ms.disc:
        p = ctx.samples.paired(s, cb)
        res_rows = []
        for arm, x in (("baseline", p.baseline), ("treatment", p.treatment)):
            k, n = int(np.sum(x)), int(len(x))
            if n and k in (0, n):
                iv = stats.wilson(k, n, level=ctx.level)
                res_rows.append(
                    {
                        "scoring": s,
                        "arm": arm,
                        "k": k,
                        "n": n,
                        "rate": k / n,
                        "ci_low": iv.low,
                        "ci_high": iv.high,
                        "ci_method": iv.method,
                    }
                )
        if res_rows:
            which = ", ".join(f"{r['arm']} {r['k']}/{r['n']}" for r in res_rows)
            bound = "; ".join(
                f"{r['arm']}: Wilson {ctx.level:.0%} CI [{r['ci_low']:.3f}, {r['ci_high']:.3f}]" for r in res_rows
            )
            cont_hint = (
                (
                    " Under the continuous metric(s): "
                    + "; ".join(  # each of ms.cont has a cell
                        f"{c}: baseline {cell.baseline:.3f}, treatment {cell.treatment:.3f}"
                        for c in cont
                        if (cell := ctx.cell(cb, c)) is not None
                    )
                    + "."
                )
                if cont
                else ""
            )
            findings.append(
                Finding(
                    NAME,
                    "resolution",
                    Outcome.flag,
                    f"Under {s!r} an arm is at the floor or ceiling ({which}): exact match cannot resolve how far it "
                    "is from the threshold",
                    detail=f"{bound}. A score of 0/n (or n/n) says the ability is below (above) what the metric can "
                    f"see, not that it is absent; compare under a continuous metric or with more items.{cont_hint}",
                    severity=Severity.minor,
                    impact=Impact.none,
                    rows=res_rows,
                    provenance=prov,
                )
            )
    return findings


def polarity(ctx: Context, params: Params, scoring: str) -> int:
    """+1 when higher is better under ``scoring``, −1 when lower is: the claim's direction for the claimed scoring,
    else the check's ``lower_is_better``, else ``Context.polarity`` (claim override, built-in table)."""
    if scoring != ctx.claimed_scoring and scoring in params.lower_is_better:
        return -1
    return ctx.polarity(scoring)


def _aligned(rec, scoring: str, budget: int, item_ids: np.ndarray) -> np.ndarray:
    """Per-item treatment − baseline under ``scoring``, aligned with ``item_ids`` (NaN where an item is missing)."""
    p = rec.paired(scoring, budget)
    return pd.Series(p.treatment - p.baseline, index=p.item_ids).reindex(item_ids).to_numpy(dtype=float)


def _unit_scale(rec, scoring: str) -> bool:
    """Every score of ``scoring`` lies in [0, 1] (exact match, edit similarity): deltas are then commensurable."""
    t = rec.table
    v = t.loc[t["scoring"] == scoring, "score"].dropna().to_numpy(dtype=float)
    return bool(v.size) and bool(np.all((v >= 0) & (v <= 1)))


def _smaller(ctx: Context, cont_gain: np.ndarray, disc_gain: np.ndarray, salt: str, clusters=None):
    """The mean per-item difference disc_gain − cont_gain with the paired t interval (each gain already in its own
    polarity; with clusters, the cluster-robust t the cells use): above 0 shows the continuous gain smaller than the
    discontinuous one. No resampling: the decision carries no Monte Carlo error."""
    return stats.paired_inference(cont_gain, disc_gain, level=ctx.level, clusters=clusters, outcomes="scores")


def _gain(ctx: Context, est, sg: int, test=None, diffs: np.ndarray | None = None) -> int:
    """+1: a significant gain in the scoring's own polarity ``sg`` (+1: higher is better); −1: a significant
    reversal; 0: neither.

    The cell's decision interval (which inverts its test) decides. Where it is undefined (every paired difference
    equal) the cell's test does (as in the significance check), and where that is undefined too (a paired t with
    zero variance) an exact sign test on the nonzero per-item differences (Dixon & Mood 1946; scipy ``binomtest``)."""
    if est.interval.ok:
        significant = excludes_zero(est.interval)
    elif test is not None and test.ok:
        significant = test.significant(ctx.alpha) and est.value != 0
    elif diffs is not None and np.count_nonzero(diffs):
        from scipy.stats import binomtest

        nz = diffs[diffs != 0]
        significant = bool(binomtest(int((nz > 0).sum()), int(nz.size)).pvalue < ctx.alpha) and est.value != 0
    else:
        significant = False
    if not significant:
        return 0
    return 1 if sg * est.value > 0 else -1


def _arm_column(rec, arm: str, column: str, scoring: str, budget: int, ids: np.ndarray) -> np.ndarray:
    t = rec.table
    sub = t[(t["arm"] == arm) & (t["variant"] == DEFAULT_VARIANT) & (t["budget"] == budget) & (t["scoring"] == scoring)]
    return sub.set_index("item_id")[column].reindex(ids).to_numpy(dtype=object)


def _answers(rec, arm, scoring, budget, ids, mode: str) -> np.ndarray:
    text = _arm_column(rec, arm, "text", scoring, budget, ids)
    if mode == "output":
        return text
    ext = _arm_column(rec, arm, "extracted", scoring, budget, ids)
    has = np.array([isinstance(e, str) for e in ext])
    if mode == "extracted" or has.any():
        return np.where(has, ext, text if mode == "auto" else "")
    return text


def _token_analysis(ctx: Context, params: Params, ref: str | None, cb: int, claimed: str) -> dict | None:
    """Per-item token accuracy and exact match of both arms on the items with a target (under ``ref``, else the
    ``claimed`` scoring); None without targets."""
    rec = ctx.samples
    scoring = ref or claimed
    p = rec.paired(scoring, cb)
    ids = p.item_ids
    targets = _arm_column(rec, "baseline", "target", scoring, cb, ids)
    has_target = np.array([isinstance(t, str) and bool(t.strip()) for t in targets])
    if not has_target.any():
        return None
    out: dict = {"name": f"{TOKEN_ACCURACY} ({params.tokens}, built-in)", "n_no_target": int((~has_target).sum())}
    per_arm = {}
    for arm, score in (("baseline", p.baseline), ("treatment", p.treatment)):
        ans = _answers(rec, arm, scoring, cb, ids, params.answer)
        accs, lens, ems, eds = [], [], [], []
        for a, t in zip(ans[has_target], targets[has_target]):
            a = a if isinstance(a, str) else ""
            x, n_tok, exact = token_accuracy(a, t, params.tokens)
            accs.append(x)
            lens.append(n_tok)
            ems.append(float(exact))
            eds.append(token_edit_distance(tokenize(a, params.tokens), tokenize(t, params.tokens)))
        acc, L, em, ed = map(np.asarray, (accs, lens, ems, eds))
        # The scoring's "right" is a high score, or a low one for an error indicator (lower is better).
        right = score[has_target] >= 0.5 if ref is None or polarity(ctx, params, ref) > 0 else score[has_target] < 0.5
        agree = float(np.mean(em == right)) if ref is not None else math.nan
        per_arm[arm] = {
            "acc": acc.astype(float),
            "L": L.astype(int),
            "em": em.astype(float),
            "ed": ed.astype(float),
            "agreement": agree,
            "ids": ids[has_target],
            "answers": ans[has_target],
        }
    out["arms"] = per_arm
    b, t = per_arm["baseline"], per_arm["treatment"]
    n = int(b["acc"].size)
    out["n"] = n
    agreements = [v["agreement"] for v in per_arm.values() if math.isfinite(v["agreement"])]
    out["comparable"] = bool(agreements) and min(agreements) >= params.min_agreement and n >= 2
    if not agreements:
        out["reason"] = "No discontinuous scoring to check the token exact match against."
    elif min(agreements) < params.min_agreement:
        out["reason"] = (
            f"The token exact match agrees with {ref!r} on only {min(agreements):.0%} of items (need "
            f"{params.min_agreement:.0%}): the answers carry text around them; define a scoring that "
            "extracts the answer, or set checks.emergence.answer."
        )
    elif n < 2:
        out["reason"] = "Fewer than 2 items with a target."
    out["ref"] = ref
    out["acc_delta"] = stats.paired_inference(b["acc"], t["acc"], level=ctx.level, outcomes="scores").estimate
    out["em_delta"] = stats.paired_inference(b["em"], t["em"], level=ctx.level).estimate
    test = stats.paired_ttest(b["acc"], t["acc"], alternative="two-sided") if n >= 2 else None
    out["acc_test"] = test
    out["em_test"] = stats.mcnemar_paired(b["em"], t["em"], alternative="two-sided") if n else None
    iv = out["acc_delta"].interval
    out["row"] = {
        "variant": DEFAULT_VARIANT,
        "budget": cb,
        "scoring": out["name"],
        "n": n,
        "baseline": float(b["acc"].mean()) if n else math.nan,
        "treatment": float(t["acc"].mean()) if n else math.nan,
        "delta": out["acc_delta"].value,
        "ci_low": iv.low,
        "ci_high": iv.high,
        "ci_method": iv.method,
        "p_value": test.p_value if test else math.nan,
        "test": f"{test.method} ({test.alternative})" if test else "n/a",
        "kind": "continuous",
        "kind_source": "computed from answers and targets",
        "better": "higher",
        "reason": out.get("reason"),
    }
    return out


def _token_rows(ctx: Context, params: Params, arms: dict) -> tuple[list[dict], list[dict], dict, dict]:
    """Per arm: the token-accuracy row, the calibration rows, and the predicted exact match (chosen, and both)."""
    rows, calib = [], []
    pred, both = {}, {}
    for arm, v in arms.items():
        pi = predicted_exact_match(v["acc"], v["L"], "per_item")
        po = predicted_exact_match(v["acc"], v["L"], "pooled")
        both[arm] = (pi, po)
        pred[arm] = pi if params.predictor == "per_item" else po
        k, n = int(v["em"].sum()), int(v["em"].size)
        iv = stats.wilson(k, n, level=ctx.level)
        rows.append(
            {
                "arm": arm,
                "n": n,
                "target_tokens_mean": float(v["L"].mean()) if n else math.nan,
                "token_accuracy": float(np.sum(v["acc"] * v["L"]) / np.sum(v["L"])) if n else math.nan,
                "predicted_em_pooled": po,
                "predicted_em_per_item": pi,
                "observed_em": k / n if n else math.nan,
                "ci_low": iv.low,
                "ci_high": iv.high,
                "ci_method": iv.method,
                "agreement_with_scoring": v["agreement"],
                "edit_distance_observed": float(v["ed"].mean()) if n else math.nan,
                "edit_distance_expected": expected_edit_distance(v["acc"], v["L"]),
            }
        )
        calib.extend(_calibration(arm, v, ctx.level))
    return rows, calib, pred, both


def _token_stat(params: Params, tok: dict, pred_delta: float) -> dict:
    """The statistic shared by the token-accuracy findings: predicted vs observed exact-match delta."""
    em_d, acc_d = tok["em_delta"], tok["acc_delta"]
    return {
        "predicted_em_delta": pred_delta,
        "observed_em_delta": em_d.value,
        "observed_ci_low": em_d.interval.low,
        "observed_ci_high": em_d.interval.high,
        "token_accuracy_delta": acc_d.value,
        "token_accuracy_ci_low": acc_d.interval.low,
        "token_accuracy_ci_high": acc_d.interval.high,
        "predictor": params.predictor,
        "tokens": params.tokens,
        "n": tok["n"],
        "n_no_target": tok["n_no_target"],
        "reference_scoring": tok["ref"],
    }


def _token_gain_finding(
    ctx: Context, tok: dict, head: str, stat: dict, prov: dict, pred_delta: float
) -> Finding | None:
    """For a significant exact-match gain: explained by the per-token gain (flag) or not (pass); None without one."""
    arms = tok["arms"]
    em_d, acc_d = tok["em_delta"], tok["acc_delta"]
    b, t = arms["baseline"], arms["treatment"]
    em_gain = _gain(ctx, em_d, 1, tok["em_test"], t["em"] - b["em"]) > 0
    acc_gain = _gain(ctx, acc_d, 1, tok["acc_test"], t["acc"] - b["acc"]) > 0
    if em_gain and acc_gain and em_d.interval.contains(pred_delta):
        return Finding(
            NAME,
            "explained_by_token_accuracy",
            Outcome.flag,
            f"The exact-match gain is what the per-token accuracy gain predicts: {head}",
            detail="A smooth per-token improvement of "
            f"{fmt_delta(acc_d.value)} {fmt_ci(acc_d.interval)} fully explains the exact-match gain "
            "(Schaeffer et al. 2023): the gain is real but not a sudden or emergent ability.",
            severity=Severity.minor,
            impact=Impact.none,
            statistic=stat,
            provenance=prov,
        )
    elif em_gain:
        return Finding(
            NAME,
            "not_explained",
            Outcome.passed,
            f"The exact-match gain is not just the per-token improvement raised to the power L: {head}",
            statistic=stat,
            provenance=prov,
        )
    return None


def _token_findings(ctx: Context, params: Params, tok: dict, prov: dict) -> list[Finding]:
    arms = tok["arms"]
    rows, calib, pred, both = _token_rows(ctx, params, arms)
    em_d, acc_d = tok["em_delta"], tok["acc_delta"]
    pred_delta = pred["treatment"] - pred["baseline"]
    stat = _token_stat(params, tok, pred_delta)
    rows.append(
        {
            "arm": "treatment − baseline",
            "n": tok["n"],
            "token_accuracy": acc_d.value,
            "predicted_em_pooled": both["treatment"][1] - both["baseline"][1],
            "predicted_em_per_item": both["treatment"][0] - both["baseline"][0],
            "observed_em": em_d.value,
            "ci_low": em_d.interval.low,
            "ci_high": em_d.interval.high,
            "ci_method": em_d.interval.method,
        }
    )
    out = []
    if not tok["comparable"]:
        out.append(
            Finding(
                NAME,
                "token_accuracy_not_comparable",
                Outcome.inconclusive,
                "The per-token accuracy cannot be compared with the exact-match scoring",
                detail=tok.get("reason") or "",
                severity=Severity.minor,
                impact=Impact.none,
                statistic=stat,
                rows=rows,
                provenance=prov,
            )
        )
        return out
    head = (
        f"predicted exact match {pred['baseline']:.3f} → {pred['treatment']:.3f} ({fmt_delta(pred_delta)}) vs "
        f"observed {rows[0]['observed_em']:.3f} → {rows[1]['observed_em']:.3f} ({fmt_delta(em_d.value)} "
        f"{fmt_ci(em_d.interval)})"
    )
    out.append(
        Finding(
            NAME,
            "token_accuracy",
            Outcome.info,
            f"Per-token accuracy ({params.tokens} tokens) {rows[0]['token_accuracy']:.3f} → "
            f"{rows[1]['token_accuracy']:.3f}; {head}",
            detail="Predicted exact match "
            + ("mean_i(a_i^L_i)" if params.predictor == "per_item" else "mean_i(p̄^L_i)")
            + "; observed: the answer's tokens equal the target's.",
            statistic=stat,
            rows=rows,
            provenance=prov,
        )
    )
    out.append(
        Finding(
            NAME,
            "calibration",
            Outcome.info,
            "Predicted vs observed exact match by target length, per arm",
            detail="Under independent token errors exact match falls like p^L with the target length L.",
            rows=calib,
            provenance=prov,
        )
    )
    gain = _token_gain_finding(ctx, tok, head, stat, prov, pred_delta)
    if gain is not None:
        out.append(gain)
    return out


def _calibration(arm: str, v: dict, level: float) -> list[dict]:
    L = v["L"]
    lengths = np.unique(L)
    if lengths.size == 0:
        return []
    groups = np.array_split(lengths, min(_MAX_LENGTH_BINS, lengths.size))
    out = []
    for g in groups:
        m = np.isin(L, g)
        k, n = int(v["em"][m].sum()), int(m.sum())
        iv = stats.wilson(k, n, level=level)
        out.append(
            {
                "arm": arm,
                "target_tokens": f"{g[0]}" if g.size == 1 else f"{g[0]}–{g[-1]}",
                "n": n,
                "token_accuracy": float(np.sum(v["acc"][m] * L[m]) / np.sum(L[m])),
                "predicted_em_pooled": predicted_exact_match(v["acc"][m], L[m], "pooled"),
                "predicted_em_per_item": predicted_exact_match(v["acc"][m], L[m], "per_item"),
                "observed_em": k / n,
                "ci_low": iv.low,
                "ci_high": iv.high,
                "ci_method": iv.method,
            }
        )
    return out


__all__ = [
    "NAME",
    "Params",
    "run",
    "token_accuracy",
    "token_edit_distance",
    "predicted_exact_match",
    "expected_edit_distance",
    "tokenize",
    "classify",
]


SPEC = CheckSpec(
    NAME,
    run,
    Params,
    needs_samples=True,
    description="delta under discontinuous vs continuous metrics; exact match predicted from per-token "
    "accuracy (p^L); resolution at 0/n",
)
"""This check in the registry (:data:`audit.checks.REGISTRY`)."""
