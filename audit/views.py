"""What the report shows beside the findings, derived once from the claim, the cells and the findings.

:func:`audit.verify.verify` stores these views in the :class:`~audit.findings.Report`; the HTML page, the Markdown
summary, the JUnit file and ``audit compare`` only read them.
"""

from __future__ import annotations

from typing import Any, Sequence

from audit import stats
from audit.claim import Claim
from audit.findings import Cell, ClaimVsMeasured, ForestEstimate, EstimateKind, Finding, RateRow, TableKind, Versus


def _reported_counts_estimate(findings: Sequence[Finding]) -> ForestEstimate | None:
    for f in findings:
        for e in f.estimates:
            if e.kind == EstimateKind.reported_counts:
                return e
    return None


def claim_vs_measured(
    claim: Claim, cells: Sequence[Cell], findings: Sequence[Finding], level: float, binary: bool | None
) -> ClaimVsMeasured:
    """Rows baseline / treatment / delta: as reported (with Wilson / Newcombe intervals computed from the reported
    k/n) and as measured at the claimed setting (paired), or recomputed from the reported counts (counts only).
    ``binary``: whether the claimed cell's scores are 0/1 (arms' Wilson intervals are shown only then)."""
    rep = claim.claim.reported
    cell = next((c for c in cells if c.claimed), None)
    counted = _reported_counts_estimate(findings)
    arms: dict[str, Versus] = {}
    for arm in ("baseline", "treatment"):
        r = rep.rate(arm)
        k_n = rep.counts(arm)
        rep_ci = stats.wilson(k_n.passes, k_n.n, level=level) if k_n else None
        row: dict[str, Any] = {"what": arm, "reported": r, "reported_counts": f"{k_n.passes}/{k_n.n}" if k_n else None}
        if rep_ci is not None and rep_ci.ok:
            row.update(reported_ci=(rep_ci.low, rep_ci.high), reported_ci_how="Wilson, computed from the reported k/n")
        if cell is not None:
            m = getattr(cell, arm)
            row["measured"] = m
            if binary and m is not None:
                k = int(round(m * cell.n))
                iv = stats.wilson(k, cell.n, level=level)
                row.update(
                    measured_counts=f"{k}/{cell.n}",
                    measured_ci=(iv.low, iv.high) if iv.ok else None,
                    measured_ci_how="Wilson",
                )
            elif m is not None:
                row["measured_ci_how"] = "not binary: see the paired delta"
        elif counted is not None and k_n:
            row.update(
                measured=r,
                measured_counts=f"{k_n.passes}/{k_n.n}",
                measured_ci=row.get("reported_ci"),
                measured_ci_how="Wilson, from the reported counts (no samples)",
            )
        arms[arm] = Versus(**row)
    rd = rep.delta_or_difference()
    drow: dict[str, Any] = {"what": "delta", "reported": rd, "reported_p": rep.p_value, "reported_test": rep.test}
    if rep.ci:
        drow.update(reported_ci=tuple(rep.ci), reported_ci_how="as reported")
    if rep.delta is None and rd is not None:
        drow["reported_note"] = "treatment − baseline of the reported rates"
    cb, ct = rep.counts("baseline"), rep.counts("treatment")
    if not rep.ci and cb and ct:
        iv = stats.newcombe_diff(ct.passes, ct.n, cb.passes, cb.n, level=level)
        if iv.ok:
            drow.update(
                reported_ci=(iv.low, iv.high),
                reported_ci_how="Newcombe hybrid score, computed from the reported k/n (unpaired)",
            )
    if cell is not None:
        drow.update(
            measured=cell.delta,
            measured_ci=(cell.ci_low, cell.ci_high) if cell.ci_low is not None else None,
            measured_ci_how=cell.ci_method,
            measured_p=cell.p_value,
            measured_test=cell.test,
        )
        where = (
            f"measured at the claimed setting: budget {cell.budget}, scoring {cell.scoring}, n = {cell.n} paired items"
        )
    elif counted is not None:
        drow.update(
            measured=counted.delta,
            measured_ci=(counted.ci_low, counted.ci_high)
            if counted.ci_low is not None and counted.ci_high is not None
            else None,
            measured_ci_how=counted.ci_method,
            measured_p=counted.p_value,
            measured_test=counted.test,
        )
        where = "recomputed from the reported counts (no per-item samples: unpaired Fisher exact and Newcombe)"
    else:
        where = "nothing measured: no samples and no usable reported counts"
    return ClaimVsMeasured(
        baseline=arms["baseline"], treatment=arms["treatment"], delta=Versus(**drow), where=where, level=level
    )


def forest(cells: Sequence[Cell], findings: Sequence[Finding]) -> list[ForestEstimate]:
    """Every cell, then every estimate a check asked to draw (the delta on untruncated items; the delta recomputed
    from reported counts when there are no cells)."""
    multi = len({c.variant for c in cells}) > 1
    out = [
        ForestEstimate(
            kind=EstimateKind.cell,
            label=f"{c.budget} tok · {c.scoring}" + (f" · {c.variant}" if multi else ""),
            variant=c.variant,
            budget=c.budget,
            scoring=c.scoring,
            n=c.n,
            delta=c.delta,
            ci_low=c.ci_low,
            ci_high=c.ci_high,
            ci_method=c.ci_method,
            claimed=c.claimed,
        )
        for c in cells
    ]
    for f in findings:
        for e in f.estimates:
            if e.delta is None or (e.kind == EstimateKind.reported_counts and cells):
                continue
            out.append(e)
    return out


def rate_tables(findings: Sequence[Finding]) -> dict[TableKind, list[RateRow]]:
    """The rate tables the checks produced, by kind (one table per kind)."""
    out: dict[TableKind, list[RateRow]] = {}
    for f in findings:
        if f.table is not None and f.table.kind not in out:
            out[f.table.kind] = list(f.table.rows)
    return out


__all__ = ["claim_vs_measured", "forest", "rate_tables"]
