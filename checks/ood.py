"""ood: does the gain survive out-of-distribution prompts?

For every prompt variant besides the default (live: ``perturbations.ood`` sets and built-in perturbations; replay:
``samples.variants``) the paired delta at the claimed budget and scoring, with its bootstrap CI and the design's
test (McNemar exact for 0/1 outcomes).

Which question is asked decides the multiplicity treatment (``perturbations.ood.question``):

* ``holds_everywhere`` (default) — "does the gain hold under every variant?" is an intersection–union test
  (Berger 1982): the claim survives only if each variant's own test rejects at α, and no adjustment is needed.
  Every variant whose test does not reject is reported.
* ``find_breaks`` — "which variants break it?" tests, per variant, whether the delta dropped from the default:
  on the same items a paired test of the per-item difference of differences (paired t), on a different item set
  Welch's t on the per-item differences; the family of p-values is Holm-adjusted (family-wise error control, the
  ``method="holm"`` of statsmodels passed explicitly).
"""
from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from audit import stats
from audit.checks._common import Context, excludes_zero, fmt_ci, fmt_delta, item_evidence
from audit.findings import Finding
from audit.records import DEFAULT_VARIANT

NAME = "ood"


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str | None = Field(None, description="holds_everywhere | find_breaks (default: perturbations.ood.question)")


def run(ctx: Context, params: Params) -> list[Finding]:
    rec = ctx.records
    variants = [v for v in rec.variants() if v != DEFAULT_VARIANT]
    if not variants:
        return []
    ood = ctx.claim.perturbations.ood
    question = params.question or (ood.question if ood else "holds_everywhere")
    cb, sc = ctx.claimed_budget, ctx.claimed_scoring
    base = ctx.cell(cb, sc)
    prov = ctx.provenance(question=question, delta="paired bootstrap percentile",
                          multiplicity="none (intersection-union)" if question == "holds_everywhere"
                          else "Holm (statsmodels multipletests method='holm')")
    if base is None:
        return [Finding(NAME, "no_default_cell", "inconclusive", "No default-variant records at the claimed setting",
                        severity="major", impact="inconclusive", provenance=prov)]
    rows = [base.row(role="default")]
    cells = {}
    for v in variants:
        c = ctx.cell(cb, sc, v)
        if c is None:
            continue
        cells[v] = c
        rows.append(c.row(role="ood"))
    findings = [Finding(NAME, "per_variant", "info",
                        "Delta under each prompt variant: " + ", ".join(f"{r['variant']}: {fmt_delta(r['delta'])}"
                                                                        for r in rows),
                        rows=rows, provenance=prov)]
    if question == "find_breaks":
        return findings + _find_breaks(ctx, base, cells, prov)
    return findings + _holds_everywhere(ctx, base, cells, prov)


def _holds_everywhere(ctx: Context, base, cells: dict, prov: dict) -> list[Finding]:
    out = []
    claimed_sig = ctx.sign * base.delta.value > 0 and base.test.p_value < ctx.alpha
    for v, c in cells.items():
        head = f"{v}: {fmt_delta(c.delta.value)} {fmt_ci(c.interval)} (default {fmt_delta(base.delta.value)})"
        stat = {"variant": v, "delta": c.delta.value, "ci_low": c.interval.low, "ci_high": c.interval.high,
                "p_value": c.test.p_value, "test": c.test.method, "n": c.n, "default_delta": base.delta.value}
        ev = _evidence(ctx, v)
        holds = ctx.sign * c.delta.value > 0 and c.test.p_value < ctx.alpha
        if ctx.sign * c.delta.value < 0 and excludes_zero(c.interval):
            out.append(Finding(NAME, "reverses", "flag", f"The gain reverses under {head}", severity="critical",
                               impact="fragile", statistic=stat, evidence=ev, provenance=prov))
        elif not holds and claimed_sig:
            out.append(Finding(NAME, "collapses", "flag", f"The gain does not hold under {head}",
                               detail=f"{c.test.method} p = {c.test.p_value:.3g} ≥ α = {ctx.alpha}: under the "
                                      "intersection–union question every variant must show the gain on its own.",
                               severity="major", impact="fragile", statistic=stat, evidence=ev, provenance=prov))
        elif holds:
            out.append(Finding(NAME, "holds", "pass", f"The gain holds under {head}", statistic=stat,
                               provenance=prov))
        else:
            out.append(Finding(NAME, "not_tested", "info",
                               f"No significant gain at the default to test under {head}", statistic=stat,
                               provenance=prov))
    return out


def _find_breaks(ctx: Context, base, cells: dict, prov: dict) -> list[Finding]:
    rec = ctx.records
    cb, sc = ctx.claimed_budget, ctx.claimed_scoring
    p0 = rec.paired(sc, cb)
    d0 = pd_series(p0)
    tests = {}
    for v in cells:
        pv = rec.paired(sc, cb, v)
        dv = pd_series(pv)
        shared = d0.index.intersection(dv.index)
        alt = "greater" if ctx.sign > 0 else "less"  # H1: the gain drops, d0 − dv > 0 in the claim's direction
        if len(shared) == len(dv) == len(d0):
            t = stats.paired_ttest(dv.loc[shared].to_numpy(), d0.loc[shared].to_numpy(), alternative=alt)
        else:
            t = stats.welch_ttest(d0.to_numpy(), dv.to_numpy(), alternative=alt)
        tests[v] = t
    names = list(tests)
    raw = np.array([tests[v].p_value for v in names], dtype=float)
    adj = stats.holm(raw)
    out = []
    for v, p_raw, p_adj in zip(names, raw, adj):
        c = cells[v]
        stat = {"variant": v, "delta": c.delta.value, "ci_low": c.interval.low, "ci_high": c.interval.high,
                "default_delta": base.delta.value, "drop_test": tests[v].method, "p_raw": p_raw,
                "p_holm": p_adj, "family_size": len(names)}
        head = f"{v}: {fmt_delta(c.delta.value)} {fmt_ci(c.interval)} vs default {fmt_delta(base.delta.value)}"
        if math.isfinite(p_adj) and p_adj < ctx.alpha:
            sev = "critical" if ctx.sign * c.delta.value < 0 else "major"
            out.append(Finding(NAME, "breaks", "flag", f"The gain drops under {head} (Holm p = {p_adj:.3g})",
                               severity=sev, impact="fragile", statistic=stat, evidence=_evidence(ctx, v),
                               provenance=prov))
        else:
            out.append(Finding(NAME, "no_break", "pass",
                               f"No significant drop under {head} (Holm p = {p_adj:.3g})", statistic=stat,
                               provenance=prov))
    return out


def pd_series(p):
    import pandas as pd

    return pd.Series(p.treatment - p.baseline, index=p.item_ids)


def _evidence(ctx: Context, variant: str) -> list[dict]:
    p = ctx.records.paired(ctx.claimed_scoring, ctx.claimed_budget, variant)
    return item_evidence(p, (p.treatment - p.baseline) * ctx.sign <= 0, k=3)
