"""scoring: does the gain depend on how outputs are scored, and were both arms scored the same way?

Both arms are re-scored under every scoring in the claim (lm-eval filters from the logs, or built-in scorers applied
to the raw outputs) and the paired delta is reported under each. A gain whose sign flips, or that loses
significance, under another reasonable extractor is flagged only on evidence: the change of the gain between
scorings of the same scale is shown beyond the materiality margin, or a scoring on another scale shows a significant
reversal in its own polarity (the audit-wide break rule, ``Context.perturbations``). Losing significance alone is
reported, not flagged. Separately, the arms' logged scoring configuration
(lm-eval filter list, metric list, task version) is compared: arms scored with different extractors or metric
versions are not comparable.
"""

from __future__ import annotations

from typing import Any

from audit.checks._common import CheckSpec, Context, MeasuredCell, Perturbation, fmt_ci, fmt_delta, item_evidence

from audit.check_params import ScoringParams
from audit.findings import Finding, Impact, Outcome, Severity

NAME = "scoring"
_COMPARED = ("filter_list", "metric_list", "task_version", "doc_to_target")


Params = ScoringParams


def run(ctx: Context, params: Params) -> list[Finding]:
    findings = _config_mismatch(ctx) + _unsplittable(ctx)
    cb = ctx.claimed_budget
    claimed = ctx.cell(cb)
    scorings = ctx.samples.scorings()
    prov = ctx.provenance(delta="paired bootstrap percentile", scorings=scorings)
    if claimed is None:
        return findings + [
            Finding(
                NAME,
                "no_claimed_cell",
                Outcome.inconclusive,
                "No records at the claimed setting",
                severity=Severity.major,
                impact=Impact.inconclusive,
                provenance=prov,
            )
        ]
    degenerate = _degenerate_findings(ctx, scorings, prov, findings)
    others = [s for s in scorings if s != ctx.claimed_scoring and s not in degenerate]
    findings.append(_per_scoring(ctx, cb, scorings, prov))
    if not others:
        findings.append(
            Finding(
                NAME,
                "single_scoring",
                Outcome.inconclusive,
                "Only one scoring is available, so robustness to scoring was not tested"
                + (" (the others are degenerate)" if degenerate else ""),
                detail="Add perturbations.scorings (an lm-eval filter in the logs, or a built-in "
                "scorer such as last-number or exact).",
                severity=Severity.minor,
                impact=Impact.none,
                provenance=prov,
            )
        )
        return findings
    by_scoring = {pt.cell.scoring: pt for pt in ctx.perturbations() if pt.kind == "scoring"}
    for s in others:
        pt = by_scoring.get(s)
        alt = ctx.cell(cb, s)
        if pt is None or alt is None:
            continue
        findings.append(_alternative_finding(ctx, cb, claimed, s, pt, alt, prov))
    return findings


def _degenerate_findings(ctx: Context, scorings: list[str], prov: dict, findings: list[Finding]) -> dict:
    """Decides which scorings are degenerate (appending their findings); none count when no scoring separates."""
    degenerate = ctx.degenerate()
    if degenerate and len(degenerate) == len(scorings):
        # Every scoring gives one score: the items do not separate at all (both arms fail, or pass, everything) —
        # a floor or ceiling of the task, not a broken scorer. No scoring can show a gain; said, not flagged.
        findings.append(
            Finding(
                NAME,
                "no_scoring_separates",
                Outcome.info,
                "No scoring separates the items: every item of both arms scores "
                + ", ".join(f"{d.value:g} under {d.scoring!r}" for d in degenerate.values()),
                detail="Every item of both arms has one score under every scoring, so no gain, loss or "
                "change of one can be measured.",
                statistic={"scorings": sorted(degenerate)},
                provenance=prov,
            )
        )
        degenerate = {}
    for name, deg in degenerate.items():
        claimed_txt = (
            " It is the claimed scoring, so the gain cannot be measured (see significance)."
            if name == ctx.claimed_scoring
            else " It is left out of the perturbations: it is no evidence that the gain changes."
        )
        findings.append(
            Finding(
                NAME,
                "degenerate",
                Outcome.flag,
                f"A degenerate scoring: {deg.sentence()}, while another scoring separates them",
                detail="A scoring under which every item of both arms scores the same cannot tell the "
                "arms apart; the usual cause is a target no output can match (a whole worked "
                "solution where the final answer belongs: use a target rule that takes the "
                "final answer) or an extractor that never fires." + claimed_txt,
                severity=Severity.major,
                impact=Impact.none,
                statistic={"scoring": name, "value": deg.value, "rows": deg.rows},
                provenance=prov,
            )
        )
    return degenerate


def _per_scoring(ctx: Context, cb: int | None, scorings: list[str], prov: dict) -> Finding:
    """Decides the info finding listing the delta under each scoring at the claimed budget."""
    rows = [
        c.row(role="claimed" if s == ctx.claimed_scoring else "alternative")
        for s in scorings
        if (c := ctx.cell(cb, s)) is not None
    ]
    return Finding(
        NAME,
        "per_scoring",
        Outcome.info,
        f"Delta under each scoring at {cb} tokens: "
        + ", ".join(f"{r['scoring']}: {fmt_delta(r['delta'])}" for r in rows),
        rows=rows,
        provenance=prov,
    )


def _alternative_finding(
    ctx: Context, cb: int | None, claimed: MeasuredCell, s: str, pt: Perturbation, alt: MeasuredCell, prov: dict
) -> Finding:
    """Decides whether the gain survives one alternative scoring (a flag with item evidence when it does not)."""
    pol = ctx.polarity(s)
    head = (
        f"{ctx.claimed_scoring}: {fmt_delta(claimed.delta.value)} {fmt_ci(claimed.interval)} vs "
        f"{s}: {fmt_delta(alt.delta.value)} {fmt_ci(alt.interval)}"
        + ("" if pol == ctx.sign else f" ({s} is {'higher' if pol > 0 else 'lower'}-is-better)")
    )
    stat = {**ctx.perturbation_stat(pt), "claimed_delta": claimed.delta.value, "polarity": pol}
    code, outcome, sev, impact, sentence = ctx.judge(pt)
    if outcome == Outcome.flag:
        p_alt = ctx.samples.paired(s, cb)
        p_cl = ctx.samples.paired(claimed.scoring, cb)  # the claimed cell's scoring is ctx.claimed_scoring
        changed = (p_alt.treatment - p_alt.baseline) != (p_cl.treatment - p_cl.baseline)
        code = {"reverses": "sign_change", "vanishes": "vanishes", "shrinks": "shrinks"}.get(code, code)
        return Finding(
            NAME,
            code,
            Outcome.flag,
            f"{sentence[0].upper()}{sentence[1:]}: {head}",
            detail=ctx.change_text(pt),
            severity=sev,
            impact=impact,
            statistic=stat,
            evidence=item_evidence(p_alt, changed),
            provenance=prov,
        )
    return Finding(
        NAME,
        code,
        outcome,
        f"{sentence[0].upper()}{sentence[1:]}: {head}",
        detail=ctx.change_text(pt),
        statistic=stat,
        provenance=prov,
    )


def _unsplittable(ctx: Context) -> list[Finding]:
    """Outputs a code_exec scoring scored 0 because their tests could not be split from the program (the sandbox
    sends only plain data between them; ``Records.scoring_notes``), counted per arm."""
    from collections import Counter

    out = []
    for scoring, notes in (getattr(ctx.records, "scoring_notes", None) or {}).items():
        rows = list((notes or {}).get("unsplittable") or [])
        if not rows:
            continue
        n = {arm: sum(r["outputs"] for r in rows if r["arm"] == arm) for arm in ("baseline", "treatment")}
        of = {arm: sum(r["of"] for r in rows if r["arm"] == arm) for arm in ("baseline", "treatment")}
        reasons: Counter = Counter()
        for r in rows:
            reasons.update(r.get("reasons") or {})
        out.append(
            Finding(
                NAME,
                "code_exec_unsplittable",
                Outcome.info,
                f"code_exec scoring {scoring!r}: {n['baseline']} of {of['baseline']} baseline and {n['treatment']} of "
                f"{of['treatment']} treatment output(s) were scored 0 because their tests cannot be split from "
                "the program",
                detail="The sandbox runs a program and its tests in separate processes that exchange only plain data, "
                "so no program can write its own pass. A test that hands the program a function, a class or another "
                "object that is not plain data cannot be run that way: such an output scores 0 (a fail) whatever "
                "it computes. Both arms' pass rates are therefore lower bounds, and the delta counts these items "
                "as failed in whichever arm met them. Reasons: "
                + "; ".join(f"{k} ({v})" for k, v in reasons.most_common(5))
                + ". To score them, rewrite those tests to pass plain values (numbers, strings, lists, dicts).",
                statistic={
                    "scoring": scoring,
                    "baseline": n["baseline"],
                    "treatment": n["treatment"],
                    "baseline_of": of["baseline"],
                    "treatment_of": of["treatment"],
                    "score_given": 0.0,
                },
                rows=[{k: v for k, v in r.items() if k != "reasons"} for r in rows],
                provenance=ctx.provenance(
                    source="records.scoring_notes: the code_exec supervisor's note on each output"
                ),
            )
        )
    return out


def _config_mismatch(ctx: Context) -> list[Finding]:
    """Compare the logged scoring configuration of the two arms at each budget."""
    st = ctx.samples.settings or {}
    out = []
    for budget in sorted(set(st.get("baseline", {})) & set(st.get("treatment", {}))):
        b, t = st["baseline"][budget], st["treatment"][budget]
        diffs: list[dict[str, Any]] = [
            {"field": k, "baseline": b.get(k), "treatment": t.get(k)}
            for k in _COMPARED
            if b.get(k) is not None and t.get(k) is not None and b.get(k) != t.get(k)
        ]
        if diffs:
            out.append(
                Finding(
                    NAME,
                    "arms_scored_differently",
                    Outcome.flag,
                    f"The arms were scored differently at {budget} tokens: " + ", ".join(d["field"] for d in diffs),
                    detail="Deltas between arms scored with different extractors or metric versions are not "
                    "comparable; re-score both arms the same way.",
                    severity=Severity.critical,
                    impact=Impact.fragile,
                    rows=diffs,
                    provenance=ctx.provenance(source="lm-eval results_*.json of each arm"),
                )
            )
    return out


SPEC = CheckSpec(
    NAME,
    run,
    Params,
    needs_samples=True,
    description="the delta under every scoring; arms scored with different extractors or metric versions",
)
"""This check in the registry (:data:`audit.checks.REGISTRY`)."""
