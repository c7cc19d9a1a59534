"""reduction: were the arms' several outputs per item reduced the same way?

With several samples or candidates per item (``samples.reduce``, see :mod:`audit.importers.reduce`), a published
comparison may average one arm over its samples and credit the other when *any* of its k candidates is correct:
that compares an expected single-sample score with a best-of-k oracle, not two systems. When the arms' rules differ,
this check raises a major finding and shows, beside the published delta, the like-for-like deltas — both arms under
the baseline's rule and both under the treatment's — each with the decision inference of the significance check on
the per-item reduced scores (the item is the unit; the samples of one item enter through the per-item score, whose
variance holds the within-item sampling noise divided by the number of samples). When the rules agree it reports
the rule and the samples per item (info).
"""

from __future__ import annotations

import math
from typing import Any, cast

from audit import stats
from audit.check_params import ReductionParams
from audit.checks._common import CheckSpec, Context, fmt_ci, fmt_delta
from audit.findings import Finding, Impact, Outcome, Severity
from audit.plan import DEFAULT_VARIANT

NAME = "reduction"

Params = ReductionParams


def _delta(per_sample, rules: tuple[str, str], budget, scoring: str, level: float) -> dict:
    from audit.importers.reduce import reduce_frame

    ps = per_sample[
        (per_sample["budget"] == budget)
        & (per_sample["scoring"] == scoring)
        & (per_sample["variant"] == DEFAULT_VARIANT)
    ]
    b = reduce_frame(ps[ps["arm"] == "baseline"], rules[0]).set_index("item_id")["score"]
    t = reduce_frame(ps[ps["arm"] == "treatment"], rules[1]).set_index("item_id")["score"]
    both = b.index.intersection(t.index).sort_values()
    inf = stats.paired_inference(
        b.reindex(both).to_numpy(dtype=float), t.reindex(both).to_numpy(dtype=float), level=level
    )
    return {
        "baseline_rule": rules[0],
        "treatment_rule": rules[1],
        "n": int(len(both)),
        "baseline": float(b.reindex(both).mean()) if len(both) else math.nan,
        "treatment": float(t.reindex(both).mean()) if len(both) else math.nan,
        "delta": inf.value,
        "ci_low": inf.interval.low,
        "ci_high": inf.interval.high,
        "ci_method": inf.interval.method,
        "p_value": inf.test.p_value,
        "test": f"{inf.test.method} (two-sided)",
        "_interval": inf.interval,
    }


def run(ctx: Context, params: Params) -> list[Finding]:
    rec = ctx.records
    if rec is None or rec.per_sample is None or not rec.reductions:
        return []
    rb, rt = rec.reductions.get("baseline", {}), rec.reductions.get("treatment", {})
    # audit.importers.reduce records the rule of every arm it reduces, and the table it reduces holds both arms.
    rule_b, rule_t = cast(str, rb.get("rule")), cast(str, rt.get("rule"))
    per = (
        f"baseline {rule_b} over {rb.get('samples_min')}–{rb.get('samples_max')} samples per item, treatment "
        f"{rule_t} over {rt.get('samples_min')}–{rt.get('samples_max')}"
    )
    prov = ctx.provenance(
        reduction="audit.importers.reduce (pass@k: Chen et al. 2021 unbiased estimator)",
        unit="the item: the paired test runs on one reduced score per item",
        variance="Var(reduced score) = between-item variance + within-item sampling variance / "
        "samples per item, estimated from the reduced scores by the paired test",
    )
    budget, scoring = ctx.claimed_budget, ctx.claimed_scoring
    if rule_b == rule_t:
        return [
            Finding(
                NAME,
                "same_rule",
                Outcome.info,
                f"Both arms' several outputs per item are reduced alike: {per}",
                detail="Every paired test runs on the per-item reduced scores: the samples of an item are not "
                "independent items.",
                statistic={"baseline_rule": rule_b, "treatment_rule": rule_t},
                provenance=prov,
            )
        ]
    if budget is None or scoring is None or not rec.has(DEFAULT_VARIANT, budget, scoring):
        return []
    rows: list[dict[str, Any]] = []
    for label, rules in (
        ("published (each arm its own rule)", (rule_b, rule_t)),
        (f"like for like: both {rule_b}", (rule_b, rule_b)),
        (f"like for like: both {rule_t}", (rule_t, rule_t)),
    ):
        try:
            r = _delta(rec.per_sample, rules, budget, scoring, ctx.level)
        except ValueError as exc:  # e.g. pass@k on continuous scores for the other arm
            rows.append({"comparison": label, "baseline_rule": rules[0], "treatment_rule": rules[1], "note": str(exc)})
            continue
        iv = r.pop("_interval")
        rows.append({"comparison": label, **r, "summary": f"{fmt_delta(r['delta'])} {fmt_ci(iv)}"})
    pub = rows[0]
    title = (
        f"The arms' several outputs per item are reduced differently ({rule_b} for the baseline, {rule_t} for "
        f"the treatment): not a like-for-like comparison; published delta {pub.get('summary', 'n/a')}, like for "
        "like " + ", ".join(f"{r['comparison'].split(': ')[1]} {r.get('summary', 'n/a')}" for r in rows[1:])
    )
    return [
        Finding(
            NAME,
            "different_rules",
            Outcome.flag,
            title,
            detail=f"{per}. A mean over samples estimates one sample's score; any-of-k and pass@k credit the "
            "best of several tries; majority votes. Compare the arms under one rule (the like-for-like "
            "rows) before reading the gain as the treatment's.",
            severity=Severity.major,
            impact=Impact.none,
            statistic={
                "budget": budget,
                "scoring": scoring,
                "baseline_rule": rule_b,
                "treatment_rule": rule_t,
                "delta": pub.get("delta"),
                "ci_low": pub.get("ci_low"),
                "ci_high": pub.get("ci_high"),
                "test": pub.get("test"),
            },
            rows=rows,
            provenance=prov,
        )
    ]


SPEC = CheckSpec(
    NAME,
    run,
    Params,
    needs_samples=True,
    description="several outputs per item: arms reduced differently (mean vs any-of-k, pass@k, "
    "majority) and the like-for-like deltas",
)
"""This check in the registry (:data:`audit.checks.REGISTRY`)."""
