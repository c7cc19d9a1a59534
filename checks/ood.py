"""ood: does the gain survive out-of-distribution prompts?

For every prompt variant besides the default (live: ``perturbations.ood`` sets and built-in perturbations; replay:
``samples.variants``) the paired delta at the claimed budget and scoring with the decision inference (see
significance).

A variant *breaks* the claim only on evidence (the audit-wide rule of ``Context.perturbations``): the change of the
gain from the default — per item on shared items (paired t of the difference of differences), Welch's t on a
different item set — is shown to exceed the materiality margin (one-sided at α/2, Holm-adjusted over every
perturbation of the audit, statsmodels ``method="holm"`` passed explicitly). A variant under which the gain merely
loses significance is reported as info. Within ±margin (TOST) the gain is shown to hold.

``perturbations.ood.question`` adds the summary it asks for: ``holds_everywhere`` (default) reports the
intersection–union test (Berger 1982: "holds everywhere" is shown only when each variant's own test rejects at α,
no adjustment); ``find_breaks`` reports the per-variant break tests alone. Neither changes the break rule.
"""

from __future__ import annotations

from audit.checks._common import CheckSpec, Context, excludes_zero, fmt_ci, fmt_delta, item_evidence

from audit.breaks import Perturbation
from audit.check_params import OodParams
from audit.findings import Finding, Impact, Outcome, Severity
from audit.measure import MeasuredCell
from audit.records import DEFAULT_VARIANT

NAME = "ood"


Params = OodParams


def _variant_finding(
    ctx: Context, v: str, c: MeasuredCell, base: MeasuredCell, pt: Perturbation, prov: dict
) -> tuple[Finding, bool]:
    """Variant ``v``'s change test (flag when it breaks the claim, else as judged), and whether its gain is
    significant on its own."""
    head = f"{v}: {fmt_delta(c.delta.value)} {fmt_ci(c.interval)} (default {fmt_delta(base.delta.value)})"
    stat = {**ctx.perturbation_stat(pt), "default_delta": base.delta.value, "test": c.test.method, "n": c.n}
    code, outcome, sev, impact, sentence = ctx.judge(pt)
    sig_here = ctx.sign * c.delta.value > 0 and excludes_zero(c.interval)
    if outcome == Outcome.flag:
        code = {"shrinks": "collapses", "vanishes": "collapses"}.get(code, code)
        out = Finding(
            NAME,
            code,
            Outcome.flag,
            f"{sentence[0].upper()}{sentence[1:]}: {head}",
            detail=ctx.change_text(pt),
            severity=sev,
            impact=impact,
            statistic=stat,
            evidence=_evidence(ctx, base.scoring, v),
            provenance=prov,
        )
    else:
        out = Finding(
            NAME,
            code,
            outcome,
            f"{sentence[0].upper()}{sentence[1:]}: {head}",
            detail=ctx.change_text(pt) + ("" if sig_here else f" The gain is not significant under {v} on its own."),
            statistic=stat,
            provenance=prov,
        )
    return out, sig_here


def _everywhere_finding(
    ctx: Context, base: MeasuredCell, n_cells: int, shown_everywhere: bool, prov: dict
) -> Finding | None:
    """For a significant claimed gain: whether the intersection–union test shows it under every variant; else None."""
    claimed_sig = ctx.sign * base.delta.value > 0 and excludes_zero(base.interval)
    if claimed_sig and shown_everywhere:
        return Finding(
            NAME,
            "shown_everywhere",
            Outcome.passed,
            f"The gain is significant under every prompt variant ({n_cells}): the "
            "intersection–union test of 'holds everywhere' rejects",
            provenance=prov,
        )
    elif claimed_sig:
        return Finding(
            NAME,
            "not_shown_everywhere",
            Outcome.info,
            "The gain is not significant under every prompt variant on its own; that is not "
            "evidence that a variant breaks it (see the change tests)",
            detail="Intersection–union (Berger 1982): 'holds everywhere' is shown only when "
            "each variant's own test rejects at α. A variant breaks the claim only when "
            "the change of the gain is shown beyond the margin (Holm).",
            provenance=prov,
        )
    return None


def run(ctx: Context, params: Params) -> list[Finding]:
    rec = ctx.samples
    variants = [v for v in rec.variants() if v != DEFAULT_VARIANT]
    if not variants:
        return []
    ood = ctx.claim.perturbations.ood
    question = params.question or (ood.question if ood else "holds_everywhere")
    cb, sc = ctx.claimed_budget, ctx.claimed_scoring
    base = ctx.cell(cb, sc)
    prov = ctx.provenance(
        question=question,
        delta="the decision inference (see significance)",
        breaks="change of the gain beyond the margin, one-sided at α/2, Holm over every "
        "perturbation of the audit (statsmodels multipletests method='holm')",
        holds_everywhere="intersection-union (no adjustment)",
    )
    if base is None:
        return [
            Finding(
                NAME,
                "no_default_cell",
                Outcome.inconclusive,
                "No default-variant records at the claimed setting",
                severity=Severity.major,
                impact=Impact.inconclusive,
                provenance=prov,
            )
        ]
    rows = [base.row(role="default")]
    cells = {}
    for v in variants:
        c = ctx.cell(cb, sc, v)
        if c is None:
            continue
        cells[v] = c
        rows.append(c.row(role="ood"))
    findings = [
        Finding(
            NAME,
            "per_variant",
            Outcome.info,
            "Delta under each prompt variant: " + ", ".join(f"{r['variant']}: {fmt_delta(r['delta'])}" for r in rows),
            rows=rows,
            provenance=prov,
        )
    ]
    by_variant = {pt.cell.variant: pt for pt in ctx.perturbations() if pt.kind == "variant"}
    shown_everywhere = True
    for v, c in cells.items():
        pt = by_variant.get(v)
        if pt is None:
            continue
        out, sig_here = _variant_finding(ctx, v, c, base, pt, prov)
        shown_everywhere &= sig_here
        findings.append(out)
    if question == "holds_everywhere" and cells:
        summary = _everywhere_finding(ctx, base, len(cells), shown_everywhere, prov)
        if summary is not None:
            findings.append(summary)
    return findings


def _evidence(ctx: Context, scoring: str, variant: str) -> list[dict]:
    """``scoring``: the claimed one (the default cell's)."""
    p = ctx.samples.paired(scoring, ctx.claimed_budget, variant)
    return item_evidence(p, (p.treatment - p.baseline) * ctx.sign <= 0, k=3)


SPEC = CheckSpec(
    NAME,
    run,
    Params,
    needs_samples=True,
    description="the delta under every OOD prompt variant; intersection-union or Holm, as the claim asks",
)
"""This check in the registry (:data:`audit.checks.REGISTRY`)."""
