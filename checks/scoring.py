"""scoring: does the gain depend on how outputs are scored, and were both arms scored the same way?

Both arms are re-scored under every scoring in the claim (lm-eval filters from the logs, or built-in scorers applied
to the raw outputs) and the paired delta is reported under each. A gain whose sign flips, or that loses
significance, under another reasonable extractor is flagged. Separately, the arms' logged scoring configuration
(lm-eval filter list, metric list, task version) is compared: arms scored with different extractors or metric
versions are not comparable.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from audit.checks._common import Context, excludes_zero, fmt_ci, fmt_delta, item_evidence
from audit.findings import Finding

NAME = "scoring"
_COMPARED = ("filter_list", "metric_list", "task_version", "doc_to_target")


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


def run(ctx: Context, params: Params) -> list[Finding]:
    findings = _config_mismatch(ctx)
    cb = ctx.claimed_budget
    claimed = ctx.cell(cb)
    scorings = ctx.records.scorings()
    prov = ctx.provenance(delta="paired bootstrap percentile", scorings=scorings)
    if claimed is None:
        return findings + [Finding(NAME, "no_claimed_cell", "inconclusive", "No records at the claimed setting",
                                   severity="major", impact="inconclusive", provenance=prov)]
    others = [s for s in scorings if s != ctx.claimed_scoring]
    rows = [ctx.cell(cb, s).row(role="claimed" if s == ctx.claimed_scoring else "alternative")
            for s in scorings if ctx.cell(cb, s) is not None]
    findings.append(Finding(NAME, "per_scoring", "info",
                            f"Delta under each scoring at {cb} tokens: "
                            + ", ".join(f"{r['scoring']}: {fmt_delta(r['delta'])}" for r in rows),
                            rows=rows, provenance=prov))
    if not others:
        findings.append(Finding(NAME, "single_scoring", "inconclusive",
                                "Only one scoring is available, so robustness to scoring was not tested",
                                detail="Add perturbations.scorings (an lm-eval filter in the logs, or a built-in scorer "
                                       "such as last-number or exact).", severity="minor", impact="none",
                                provenance=prov))
        return findings
    claimed_sig = ctx.sign * claimed.delta.value > 0 and excludes_zero(claimed.interval)
    for s in others:
        alt = ctx.cell(cb, s)
        head = (f"{ctx.claimed_scoring}: {fmt_delta(claimed.delta.value)} {fmt_ci(claimed.interval)} vs "
                f"{s}: {fmt_delta(alt.delta.value)} {fmt_ci(alt.interval)}")
        stat = {"scoring": s, "delta": alt.delta.value, "ci_low": alt.interval.low, "ci_high": alt.interval.high,
                "claimed_delta": claimed.delta.value, "p_value": alt.test.p_value}
        p_alt = ctx.records.paired(s, cb)
        p_cl = ctx.records.paired(ctx.claimed_scoring, cb)
        changed = (p_alt.treatment - p_alt.baseline) != (p_cl.treatment - p_cl.baseline)
        ev = item_evidence(p_alt, changed)
        if ctx.sign * claimed.delta.value > 0 and ctx.sign * alt.delta.value < 0:
            findings.append(Finding(NAME, "sign_change", "flag", f"The gain reverses under scoring {s!r}: {head}",
                                    severity="critical", impact="fragile", statistic=stat, evidence=ev, provenance=prov))
        elif claimed_sig and not excludes_zero(alt.interval):
            findings.append(Finding(NAME, "loses_significance", "flag",
                                    f"The gain is not significant under scoring {s!r}: {head}", severity="major",
                                    impact="fragile", statistic=stat, evidence=ev, provenance=prov))
        else:
            findings.append(Finding(NAME, "holds", "pass", f"The delta holds under scoring {s!r}: {head}",
                                    statistic=stat, provenance=prov))
    return findings


def _config_mismatch(ctx: Context) -> list[Finding]:
    """Compare the logged scoring configuration of the two arms at each budget."""
    st = ctx.records.settings or {}
    out = []
    for budget in sorted(set(st.get("baseline", {})) & set(st.get("treatment", {}))):
        b, t = st["baseline"][budget], st["treatment"][budget]
        diffs = [{"field": k, "baseline": b.get(k), "treatment": t.get(k)} for k in _COMPARED
                 if b.get(k) is not None and t.get(k) is not None and b.get(k) != t.get(k)]
        if diffs:
            out.append(Finding(NAME, "arms_scored_differently", "flag",
                               f"The arms were scored differently at {budget} tokens: "
                               + ", ".join(d["field"] for d in diffs),
                               detail="Deltas between arms scored with different extractors or metric versions are not "
                                      "comparable; re-score both arms the same way.",
                               severity="critical", impact="fragile", rows=diffs,
                               provenance=ctx.provenance(source="lm-eval results_*.json of each arm")))
    return out
