"""probes: does a probe's AUC survive out-of-distribution prompts?

Input: ``claim.probes`` — one file of per-item probe scores and 0/1 labels in distribution (ID) and one per OOD set
(CSV, TSV or JSONL by file suffix; the id, score and label columns are configurable), read before the checks run
by ``audit.importers.probes.load_probes`` and handed in as ``ctx.probe_sets``. Per set the check reports
the AUC with DeLong's variance (DeLong, DeLong & Clarke-Pearson 1988, Biometrics 44:837; statsmodels
``rank_compare_2indep``) and its CI on the logit scale, which stays inside [0, 1] (``stats.auc_delong``; Pepe 2003),
and the Mann–Whitney test of AUC = 0.5 against
"positives score higher" (one-sided; ``stats.auc_mann_whitney``) — the DeLong z at 0.5 is anti-conservative at
small n, so "better than chance" is always the Mann–Whitney test.

ID vs OOD: when the same item ids with the same labels appear in both files, the two AUCs are correlated and are
compared with DeLong's paired test on the shared items: the structural components (placement values) V10 of the
positives and V01 of the negatives of both score sets give the 2×2 covariance S = S10/m + S01/n, and
var(AUC_ID − AUC_OOD) = S11 + S22 − 2 S12 (DeLong et al. 1988, eqs. 3–5). The components are computed from midranks
(Sun & Xu 2014, IEEE SPL 21:1389), O((m+n) log(m+n)) (``stats.delong_paired``). Without shared items the sets are
independent and the difference is tested with an unpaired z using both DeLong variances (``stats.delong_unpaired``).

Evidence rule: a major or critical flag rests on a test that excludes the null it refutes, on enough items.

* "Collapses on OOD set X" (critical, fragile) refutes "the OOD AUC is as high as the ID AUC": it needs the ID − OOD
  difference (paired DeLong on shared items, else the unpaired z) to exclude 0 in the direction of a drop, with the
  OOD AUC not distinguishable from chance by the one-sided Mann–Whitney test (or its CI wholly below 0.5: inverted),
  while the ID AUC is measured (or claimed) above chance. An OOD AUC at chance whose drop from ID is not shown is
  reported with its numbers (``ood_unresolved``: inconclusive, minor, no verdict impact) — "indistinguishable from
  chance" is a statement of that test, not evidence of a collapse (the real case 0.683 ID → 0.516 OOD is shown on 400
  shared items: ID − OOD +0.17, p < 1e-6).
* A significant ID → OOD drop that stays above chance: ``ood_drop`` (major, no verdict impact).
* The claimed ID AUC is refuted only when the measured CI lies wholly *below* it (``claimed_auc_outside_ci``, major,
  not_reproduced; a one-sided test at α/2 by the two-sided interval). A measured AUC significantly above the claim is
  no failure of the claim (``claimed_auc_exceeded``, info).
* Every one of these flags needs at least ``min_per_class`` positives and ``min_per_class`` negatives in each set it
  compares (default 10). Why 10: DeLong's interval is a normal approximation built from the per-item placement
  values; with fewer than about ten cases in a class it rests on a handful of values and its coverage is not to be
  trusted (Qin & Hotilovac 2008, Stat Methods Med Res 17:207, compare AUC intervals at small samples), while the
  Mann–Whitney test against chance stays valid and is still reported. Below the minimum the same numbers are
  reported as ``ood_unresolved`` / ``claimed_auc_unresolved`` (inconclusive, minor) with the counts.

A claim without ``probes:`` gets no findings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from audit.checks._common import CheckSpec, Context

from audit import stats
from audit.check_params import ProbesParams
from audit.findings import Finding, Impact, Outcome, Severity
from audit.importers.probes import ProbeSet

NAME = "probes"


Params = ProbesParams


# ---------------------------------------------------------------------------------------------------------------
# The check


@dataclass(frozen=True)
class SetAuc:
    set: ProbeSet
    delong: stats.Estimate
    mw: stats.TestResult

    def above_chance(self, alpha: float) -> bool:
        return self.mw.ok and self.mw.p_value < alpha


def set_auc(s: ProbeSet, level: float) -> SetAuc:
    return SetAuc(s, stats.auc_delong(s.pos, s.neg, level=level), stats.auc_mann_whitney(s.pos, s.neg, "greater"))


def _row(a: SetAuc, role: str) -> dict:
    iv = a.delong.interval
    return {
        "set": a.set.name,
        "role": role,
        "file": a.set.path,
        "n": int(a.set.ids.size),
        "n_pos": int(a.set.pos.size),
        "n_neg": int(a.set.neg.size),
        "auc": a.delong.value,
        "se": a.delong.se,
        "ci_low": iv.low,
        "ci_high": iv.high,
        "ci_method": iv.method,
        "p_value": a.mw.p_value,
        "test": "mann-whitney (greater: AUC > 0.5)",
        "reason": a.delong.reason or a.mw.reason,
    }


def _fmt_auc(a: SetAuc) -> str:
    iv = a.delong.interval
    ci = f"[{iv.low:.3f}, {iv.high:.3f}]" if iv.ok else "[n/a]"
    return f"{a.delong.value:.3f} {ci}"


def _sole_evidence(ctx: Context) -> bool:
    """The probe is the claim: no samples, no live run, no reported arm scores."""
    c = ctx.claim
    rep = c.claim.reported
    return c.samples is None and not c.live and rep.baseline is None and rep.treatment is None


def compare(
    id_set: ProbeSet, ood: ProbeSet, id_auc: SetAuc, ood_auc: SetAuc, level: float, min_shared: int
) -> tuple[stats.AucComparison, dict]:
    """ID vs OOD: paired DeLong on the items both files share with the same label, else the unpaired z-test."""
    id_index = {k: i for i, k in enumerate(id_set.ids)}
    shared, label_conflicts = [], 0
    for j, k in enumerate(ood.ids):
        i = id_index.get(k)
        if i is None:
            continue
        if id_set.labels[i] != ood.labels[j]:
            label_conflicts += 1
            continue
        shared.append((i, j))
    info: dict[str, Any] = {"n_shared": len(shared), "label_conflicts": label_conflicts}
    if shared:
        ii = np.array([i for i, _ in shared])
        jj = np.array([j for _, j in shared])
        y = id_set.labels[ii]
        if int((y == 1).sum()) >= min_shared and int((y == 0).sum()) >= min_shared:
            return stats.delong_paired(id_set.scores[ii], ood.scores[jj], y, level=level), info
        info["paired_skipped"] = (
            f"only {int((y == 1).sum())} positive / {int((y == 0).sum())} negative shared "
            f"items (need {min_shared} of each)"
        )
    return stats.delong_unpaired(id_auc.delong, ood_auc.delong, level=level), info


@dataclass(frozen=True)
class _Reference:
    """The in-distribution side every OOD set is compared with."""

    set: ProbeSet
    auc: SetAuc
    above: bool  # the measured ID AUC is above chance (one-sided Mann–Whitney)
    counts_short: str | None  # why the ID set is too small to count as evidence; None when it is not
    reference_above: bool  # the ID AUC is measured above chance or claimed above 0.5


@dataclass(frozen=True)
class _OodComparison:
    """One OOD set against the in-distribution set: the test of ID − OOD, its sentence, and the finding's numbers."""

    cmp: stats.AucComparison
    text: str
    stat: dict
    row: dict


def run(ctx: Context, params: Params) -> list[Finding]:
    if ctx.claim.probes is None:
        return []
    pr = ctx.claim.probes
    if ctx.probe_sets is None:
        # The files are read before the checks run (audit.importers.probes.load_probes, called by verify).
        raise RuntimeError(
            "the claim has probes: but the Context carries no probe_sets; pass "
            "probe_sets=load_probes(claim) when building the Context"
        )
    id_set, ood_sets = ctx.probe_sets.in_distribution, ctx.probe_sets.ood
    alpha, level = ctx.alpha, ctx.level
    prov = ctx.provenance(
        auc="DeLong variance (statsmodels rank_compare_2indep, use_t=False); CI on the logit scale (Pepe 2003)",
        min_per_class=params.min_per_class,
        chance_test="Mann-Whitney U, one-sided (positives score higher)",
        comparison="paired DeLong on shared items (DeLong et al. 1988), else unpaired z",
        files={"in-distribution": id_set.path, **{k: v.path for k, v in ood_sets.items()}},
    )
    ida = set_auc(id_set, level)
    oods = {k: set_auc(v, level) for k, v in ood_sets.items()}
    rows = [_row(ida, "in-distribution")] + [_row(a, "ood") for a in oods.values()]
    findings: list[Finding] = [
        Finding(
            NAME,
            "aucs",
            Outcome.info,
            "Probe AUC per set: "
            + ", ".join(f"{r['set']}: {r['auc']:.3f}" if math.isfinite(r["auc"]) else f"{r['set']}: n/a" for r in rows),
            detail=f"AUC with DeLong's {level:.0%} CI (logit scale, inside [0, 1]); p is the one-sided Mann–Whitney "
            "test of AUC = 0.5.",
            rows=rows,
            provenance=prov,
        )
    ]

    claimed = pr.claimed_auc
    id_stat = {
        "auc": ida.delong.value,
        "ci_low": ida.delong.interval.low,
        "ci_high": ida.delong.interval.high,
        "se": ida.delong.se,
        "mw_p": ida.mw.p_value,
        "claimed_auc": claimed,
        "n_pos": int(id_set.pos.size),
        "n_neg": int(id_set.neg.size),
    }
    if not math.isfinite(ida.delong.value) or not ida.mw.ok:
        findings.append(
            Finding(
                NAME,
                "id_no_auc",
                Outcome.inconclusive,
                "The in-distribution probe AUC cannot be computed",
                detail=ida.delong.reason or ida.mw.reason or "",
                severity=Severity.major,
                impact=Impact.inconclusive,
                statistic=id_stat,
                provenance=prov,
            )
        )
        return findings
    id_above = ida.above_chance(alpha)
    id_counts = _counts_short(id_set.pos.size, id_set.neg.size, params.min_per_class)
    findings.extend(_id_findings(ctx, ida, id_above, id_counts, claimed, id_stat, prov))
    ref = _Reference(id_set, ida, id_above, id_counts, id_above or (claimed is not None and claimed > 0.5))
    for name, oa in oods.items():
        findings.append(_ood_finding(ctx, params, ref, name, ood_sets[name], oa, prov))
    return findings


def _id_findings(
    ctx: Context, ida: SetAuc, id_above: bool, id_counts: str | None, claimed: float | None, id_stat: dict, prov: dict
) -> list[Finding]:
    """The measured in-distribution AUC against the claimed one, and against chance."""
    level = ctx.level
    sole = _sole_evidence(ctx)
    findings: list[Finding] = []
    iv = ida.delong.interval
    if claimed is not None and iv.ok and iv.high < claimed and id_counts is None:
        findings.append(
            Finding(
                NAME,
                "claimed_auc_outside_ci",
                Outcome.flag,
                f"The claimed in-distribution AUC {claimed:.3f} lies above the measured {_fmt_auc(ida)}",
                detail=f"The measured {level:.0%} CI lies wholly below the claimed AUC (a one-sided test at "
                f"α = {(1 - level) / 2:.3g}): the claimed probe quality is not what the probe files give.",
                severity=Severity.major,
                impact=Impact.not_reproduced,
                statistic=id_stat,
                provenance=prov,
            )
        )
    elif claimed is not None and iv.ok and iv.high < claimed:
        findings.append(
            Finding(
                NAME,
                "claimed_auc_unresolved",
                Outcome.inconclusive,
                f"The claimed in-distribution AUC {claimed:.3f} lies above the measured {_fmt_auc(ida)}, "
                "but the set is too small to count as evidence",
                detail=id_counts,
                severity=Severity.minor,
                impact=Impact.none,
                statistic=id_stat,
                provenance=prov,
            )
        )
    elif claimed is not None and iv.ok and iv.low > claimed:
        findings.append(
            Finding(
                NAME,
                "claimed_auc_exceeded",
                Outcome.info,
                f"The measured in-distribution AUC {_fmt_auc(ida)} is above the claimed {claimed:.3f}",
                detail="A probe better than claimed is no failure of the claim.",
                statistic=id_stat,
                provenance=prov,
            )
        )
    if id_above:
        findings.append(
            Finding(
                NAME,
                "id_above_chance",
                Outcome.passed,
                f"The probe is above chance in distribution: AUC {_fmt_auc(ida)}, "
                f"Mann–Whitney p = {ida.mw.p_value:.3g}",
                impact=Impact.reproduced if sole else Impact.none,
                statistic=id_stat,
                provenance=prov,
            )
        )
    else:
        findings.append(
            Finding(
                NAME,
                "id_not_above_chance",
                Outcome.inconclusive,
                f"The probe is not distinguishable from chance in distribution: AUC {_fmt_auc(ida)}, Mann–Whitney "
                f"p = {ida.mw.p_value:.3g}",
                detail="Without an in-distribution signal an OOD drop cannot be judged.",
                severity=Severity.major,
                impact=Impact.inconclusive,
                statistic=id_stat,
                provenance=prov,
            )
        )
    return findings


def _compare_ood(ctx: Context, params: Params, ref: _Reference, name: str, s: ProbeSet, oa: SetAuc) -> _OodComparison:
    """ID vs one OOD set (paired DeLong on shared items, else unpaired z), said in a sentence, with its numbers."""
    ida = ref.auc
    cmp_, info = compare(ref.set, s, ida, oa, ctx.level, params.min_shared_per_class)
    if cmp_.method == "delong-paired":
        how = (
            f"paired DeLong on {cmp_.n_pos + cmp_.n_neg} shared items (ID {cmp_.auc_a:.3f} vs OOD "
            f"{cmp_.auc_b:.3f} there, correlation {cmp_.correlation:.2f})"
        )
    else:
        how = (
            "unpaired DeLong z (no shared items)"
            if not info["n_shared"]
            else f"unpaired DeLong z ({info.get('paired_skipped', '')})"
        )
    cmp_txt = (
        f"ID − OOD {cmp_.diff:+.3f} "
        + (
            f"[{cmp_.interval.low:+.3f}, {cmp_.interval.high:+.3f}], p = {cmp_.p_value:.3g}"
            if cmp_.interval.ok
            else f"[n/a] ({cmp_.reason})"
        )
        + f", {how}"
    )
    stat = {
        "set": name,
        "auc_id": ida.delong.value,
        "auc_ood": oa.delong.value,
        "ood_ci_low": oa.delong.interval.low,
        "ood_ci_high": oa.delong.interval.high,
        "ood_mw_p": oa.mw.p_value,
        "diff": cmp_.diff,
        "diff_ci_low": cmp_.interval.low,
        "diff_ci_high": cmp_.interval.high,
        "diff_se": cmp_.se,
        "z": cmp_.z,
        "p_value": cmp_.p_value,
        "test": cmp_.method,
        "correlation": cmp_.correlation,
        "auc_id_shared": cmp_.auc_a,
        "auc_ood_shared": cmp_.auc_b,
        **info,
    }
    row = {
        "set": name,
        "comparison": "in-distribution − " + name,
        "test": cmp_.method,
        "n_pos": cmp_.n_pos,
        "n_neg": cmp_.n_neg,
        "auc_id": cmp_.auc_a,
        "auc_ood": cmp_.auc_b,
        "delta": cmp_.diff,
        "ci_low": cmp_.interval.low,
        "ci_high": cmp_.interval.high,
        "ci_method": cmp_.interval.method,
        "p_value": cmp_.p_value,
        "reason": cmp_.reason,
    }
    return _OodComparison(cmp_, cmp_txt, stat, row)


def _ood_finding(
    ctx: Context, params: Params, ref: _Reference, name: str, s: ProbeSet, oa: SetAuc, prov: dict
) -> Finding:
    """Whether the probe collapses on one OOD set (critical), drops but stays above chance (major), is not shown
    to do either (inconclusive), or holds (pass)."""
    alpha, level = ctx.alpha, ctx.level
    if not math.isfinite(oa.delong.value) or not oa.mw.ok:
        return _ood_no_auc(name, oa, prov)
    oc = _compare_ood(ctx, params, ref, name, s, oa)
    cmp_, cmp_txt, stat, row = oc.cmp, oc.text, oc.stat, oc.row
    ev = _evidence(ref.set, s, params.max_evidence)
    head = f"ID AUC {_fmt_auc(ref.auc)} → {name} {_fmt_auc(oa)} (Mann–Whitney p = {oa.mw.p_value:.3g})"
    inverted = oa.delong.interval.ok and oa.delong.interval.high < 0.5
    at_chance = not oa.above_chance(alpha) or inverted
    # The drop is shown when the ID − OOD interval excludes 0 on the side of a drop (it inverts the z-test).
    drop_shown = cmp_.interval.ok and cmp_.interval.low > 0
    short = (
        ref.counts_short
        or _counts_short(s.pos.size, s.neg.size, params.min_per_class, name)
        or _counts_short(cmp_.n_pos, cmp_.n_neg, params.min_per_class, f"{cmp_.method} comparison")
    )
    stat["min_per_class"] = params.min_per_class
    if ref.reference_above and at_chance and drop_shown and short is None:
        return _ood_chance(level, ref, name, oa, inverted, head, oc, ev, prov)
    if (ref.reference_above and at_chance) or (drop_shown and short is not None):
        why_not = short or (f"the drop from in-distribution is not shown: {cmp_txt}")
        what = ("is not distinguishable from chance" if at_chance else "drops") + f" on OOD set {name!r}"
        return Finding(
            NAME,
            "ood_unresolved",
            Outcome.inconclusive,
            f"The probe {what}, but that is not evidence of a collapse: {head}",
            detail=f"{why_not}. A collapse needs the ID − OOD difference to exclude 0 on at least "
            f"{params.min_per_class} positives and {params.min_per_class} negatives per set.",
            severity=Severity.minor,
            impact=Impact.none,
            statistic=stat,
            rows=[row],
            provenance=prov,
        )
    if drop_shown and cmp_.p_value < alpha:
        return Finding(
            NAME,
            "ood_drop",
            Outcome.flag,
            f"The probe's AUC drops on OOD set {name!r} but stays above chance: {head}",
            detail=cmp_txt + ".",
            severity=Severity.major,
            impact=Impact.none,
            statistic=stat,
            rows=[row],
            evidence=ev,
            provenance=prov,
        )
    return Finding(
        NAME,
        "ood_holds",
        Outcome.passed,
        f"The probe holds on OOD set {name!r}: {head}",
        detail=cmp_txt + ".",
        statistic=stat,
        rows=[row],
        provenance=prov,
    )


def _ood_no_auc(name: str, oa: SetAuc, prov: dict) -> Finding:
    """Decides the inconclusive finding for an OOD set whose probe AUC cannot be computed."""
    return Finding(
        NAME,
        "ood_no_auc",
        Outcome.inconclusive,
        f"The probe AUC on OOD set {name!r} cannot be computed",
        detail=oa.delong.reason or oa.mw.reason or "",
        severity=Severity.major,
        impact=Impact.inconclusive,
        statistic={"set": name},
        provenance=prov,
    )


def _ood_chance(
    level: float,
    ref: _Reference,
    name: str,
    oa: SetAuc,
    inverted: bool,
    head: str,
    oc: _OodComparison,
    ev: list[dict],
    prov: dict,
) -> Finding:
    """Decides the critical finding for a probe shown to fall to chance (or invert) on one OOD set."""
    why = "claimed" if not ref.above else "measured"
    what = "inverts (AUC below 0.5)" if inverted else "falls to chance"
    chance_txt = (
        f"its {level:.0%} CI lies below 0.5"
        if inverted
        else f"the one-sided Mann–Whitney test cannot reject AUC = 0.5 (p = {oa.mw.p_value:.3g})"
    )
    return Finding(
        NAME,
        "ood_chance",
        Outcome.flag,
        f"The probe {what} on OOD set {name!r}: {head}",
        detail=f"The in-distribution AUC is {why} above chance; on {name!r} {chance_txt}, and the drop from "
        f"in-distribution excludes 0: {oc.text}.",
        severity=Severity.critical,
        impact=Impact.fragile,
        statistic=oc.stat,
        rows=[oc.row],
        evidence=ev,
        provenance=prov,
    )


def _counts_short(n_pos: int, n_neg: int, minimum: int, what: str = "the in-distribution set") -> str | None:
    """Why a set is too small to count as evidence, or None when it has ``minimum`` cases of each class."""
    if n_pos >= minimum and n_neg >= minimum:
        return None
    return (
        f"{what} has only {int(n_pos)} positive(s) and {int(n_neg)} negative(s); at least {minimum} of each are "
        "needed before its AUC counts as evidence"
    )


def _evidence(id_set: ProbeSet, ood: ProbeSet, k: int) -> list[dict]:
    """Positives the OOD probe ranks lowest (with their ID score when the item is shared)."""
    if k == 0:
        return []
    id_score = dict(zip(id_set.ids, id_set.scores))
    order = np.argsort(ood.scores, kind="stable")
    out = []
    for j in order:
        if ood.labels[j] != 1:
            continue
        iid = str(ood.ids[j])
        out.append(
            {
                "item_id": iid,
                "label": 1,
                "ood_score": float(ood.scores[j]),
                "id_score": float(id_score[iid]) if iid in id_score else None,
            }
        )
        if len(out) >= k:
            break
    return out


SPEC = CheckSpec(
    NAME,
    run,
    Params,
    needs_samples=False,
    description="probe AUC in distribution vs OOD: DeLong CIs, Mann-Whitney vs chance, paired DeLong ID vs OOD",
)
"""This check in the registry (:data:`audit.checks.REGISTRY`)."""
