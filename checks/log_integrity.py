"""log_integrity: do the replayed lm-eval samples support the numbers published in their results file?

lm-eval writes, in one run, a ``samples_<task>_<date>.jsonl`` (one line per document × filter) and a
``results_<date>.json`` (the aggregate numbers a paper's table is copied from). A samples file that was trimmed
(documents dropped, a filter's lines removed) or a results file that was edited no longer describe the same run, and
an audit of such samples says nothing about the published claim. Per arm and budget (the default prompt variant; the
importer records what each file says in ``records.settings[arm][budget]["files"]``) this check compares:

* the number of documents in the samples with the results' ``n-samples`` effective count (``sample_len`` on older
  lm-eval), and each filter's documents with it;
* the filters of the claimed metric in the results (``<metric>,<filter>`` keys) with the filters on the sample
  lines, both ways;
* each filter's claimed metric recomputed from the sample lines (the mean over documents, lm-eval's ``mean``
  aggregation) with the published value, to an absolute tolerance of 1e-6 (``TOLERANCE`` in
  :mod:`audit.importers.lmeval`: lm-eval writes full-precision floats; one document of n moves a mean by 1/n).
  A metric whose aggregation is not ``mean`` (corpus-level F1, BLEU) is not recomputed, and said so.

Any mismatch is one flagged finding (major) whose impact, ``untrusted_input``, caps the verdict at ``inconclusive``:
a trimmed log neither supports nor refutes the claim. A run made with ``--limit`` (``config.limit`` set, or fewer
effective than original documents) is reported (info): the published number covers a subset, which is no mismatch.
Logs without a results file (or one that publishes neither a document count nor the metric) are reported as not
cross-checked; other formats return nothing.
"""

from __future__ import annotations

import math
from typing import Any

from audit.checks._common import CheckSpec, Context

from audit.check_params import LogIntegrityParams
from audit.findings import Finding, Impact, Outcome, Severity
from audit.importers.lmeval import RESULTS_ROLE, SAMPLES_ROLE

NAME = "log_integrity"


Params = LogIntegrityParams


def _combine(samples: list[dict], metric: str) -> tuple[int, dict[str, dict]]:
    """Documents and per-filter (documents, lines, recomputed mean) over the samples files of one arm × budget."""
    docs = sum(int(s.get("documents") or 0) for s in samples)
    filters: dict[str, dict] = {}
    for s in samples:
        for name, f in (s.get("filters") or {}).items():
            acc = filters.setdefault(name, {"documents": 0, "lines": 0, "sum": 0.0})
            acc["documents"] += int(f.get("documents") or 0)
            acc["lines"] += int(f.get("lines") or 0)
            v = f.get(metric)
            acc["sum"] += (v if isinstance(v, (int, float)) else math.nan) * int(f.get("lines") or 0)
    for acc in filters.values():
        acc["recomputed"] = acc["sum"] / acc["lines"] if acc["lines"] else math.nan
    return docs, filters


def _filter_row(
    where: str,
    arm: str,
    budget,
    metric: str,
    name: str,
    f: dict | None,
    p,
    n_eff,
    aggregation,
    has_published: bool,
    samples: dict,
    rpath: str,
    mism: list[str],
) -> dict:
    """One filter's row, recomputed vs published, and its status; appends each mismatch it finds to ``mism``."""
    from audit.importers.lmeval import TOLERANCE

    row = {
        "arm": arm,
        "budget": budget,
        "filter": name,
        "metric": metric,
        "documents_samples": f["documents"] if f else 0,
        "documents_results": n_eff,
        "recomputed": f["recomputed"] if f else math.nan,
        "published": p if p is not None else math.nan,
        "difference": (f["recomputed"] - p) if f and p is not None else math.nan,
        "tolerance": TOLERANCE,
        "samples": ", ".join(samples),
        "results": rpath,
    }
    if f is None:
        row["status"] = "in the results, no sample lines"
        mism.append(f"{where}: filter {name!r} is in the results ({metric} = {p:.6g}) but has no sample lines")
    elif p is None:
        row["status"] = "sample lines, not in the results"
        if has_published:
            mism.append(f"{where}: filter {name!r} has sample lines but the results publish no {metric} for it")
        else:
            row["status"] = f"no published {metric}"
    else:
        status = []
        if isinstance(n_eff, int) and f["documents"] != n_eff:
            status.append("documents missing")
            mism.append(f"{where}: filter {name!r} has lines for {f['documents']} of {n_eff} documents")
        if aggregation != "mean":
            status.append(f"not recomputed (aggregation {aggregation!r})")
        elif not abs(row["difference"]) <= TOLERANCE:
            status.append("value differs")
            mism.append(
                f"{where}: filter {name!r}: {metric} recomputed from the samples is "
                f"{f['recomputed']:.6g}, the results say {p:.6g}"
            )
        row["status"] = "; ".join(status) or "matches"
    return row


def compare(settings: dict, metric: str, arm: str, budget) -> dict:
    """One arm × budget: the comparison rows, the mismatches (sentences), and notes (limit, no results file)."""
    files = settings.get("files")
    if not isinstance(files, dict):
        files = {}
    samples = {p: v for p, v in files.items() if isinstance(v, dict) and v.get("role") == SAMPLES_ROLE}
    results = {p: v for p, v in files.items() if isinstance(v, dict) and v.get("role") == RESULTS_ROLE}
    out: dict[str, Any] = {"rows": [], "mismatches": [], "limited": None, "no_results": None, "compared": False}
    where = f"{arm} at budget {budget}"
    if not samples:
        return out
    if not results:
        out["no_results"] = f"{where}: no results_*.json beside {', '.join(samples)}"
        return out
    rpath, pub = next(iter(results.items()))
    docs, filters = _combine(list(samples.values()), metric)
    n_eff = (pub.get("n_samples") or {}).get("effective", pub.get("sample_len"))
    n_orig = (pub.get("n_samples") or {}).get("original")
    limit = pub.get("limit")
    if limit is not None or (isinstance(n_orig, int) and isinstance(n_eff, int) and n_eff < n_orig):
        out["limited"] = f"{where}: the run evaluated {n_eff} of {n_orig} documents" + (
            f" (--limit {limit})" if limit is not None else ""
        )
    published = {k.split(",", 1)[1]: v for k, v in (pub.get("metrics") or {}).items() if k.split(",", 1)[0] == metric}
    aggregation = (pub.get("aggregation") or {}).get(metric, "mean")
    mism = out["mismatches"]
    tasks = pub.get("tasks") or []
    if pub.get("task") is not None and tasks and pub["task"] not in tasks:
        shown = ", ".join(tasks[:10]) + (f" and {len(tasks) - 10} more" if len(tasks) > 10 else "")
        out["no_results"] = f"{where}: {rpath} holds results of {shown}, not task {pub['task']}"
        return out
    if not isinstance(n_eff, int) and not published:
        out["no_results"] = f"{where}: {rpath} publishes no document count and no {metric}"
        return out
    out["compared"] = True
    if isinstance(n_eff, int) and docs != n_eff:
        mism.append(
            f"{where}: the samples hold {docs} document(s), the results file says {n_eff} "
            f"(n-samples effective{f', of {n_orig} original' if n_orig is not None else ''})"
        )
    for name in dict.fromkeys([*published, *filters]):
        f, p = filters.get(name), published.get(name)
        row = _filter_row(
            where, arm, budget, metric, name, f, p, n_eff, aggregation, bool(published), samples, rpath, mism
        )
        out["rows"].append(row)
    return out


def _compare_all(st: dict, metric: str) -> tuple[list[dict], list[str], list[str], list[str], int]:
    """Every lm-eval arm × budget compared: rows, mismatches, limited runs, missing results, count compared."""
    rows, mism, limited, no_results = [], [], [], []
    compared = 0
    for arm in ("baseline", "treatment"):
        for budget, s in sorted((st.get(arm) or {}).items(), key=lambda kv: (kv[0] is None, kv[0])):
            if not isinstance(s, dict) or s.get("format") != "lm-eval":
                continue
            c = compare(s, metric, arm, budget)
            rows += c["rows"]
            mism += c["mismatches"]
            compared += c["compared"]
            limited += [c["limited"]] if c["limited"] else []
            no_results += [c["no_results"]] if c["no_results"] else []
    return rows, mism, limited, no_results, compared


def run(ctx: Context, params: Params) -> list[Finding]:
    st = ctx.samples.settings or {}
    metric = ctx.claim.claim.metric
    rows, mism, limited, no_results, compared = _compare_all(st, metric)
    if not (rows or no_results):
        return []
    from audit.importers.lmeval import TOLERANCE

    prov = ctx.provenance(
        source="records.settings[arm][budget]['files']: the samples files and the results_*.json beside them",
        metric=metric,
        recomputed="mean over documents of the per-line metric",
        tolerance=TOLERANCE,
    )
    findings: list[Finding] = []
    if mism:
        findings.append(
            Finding(
                NAME,
                "samples_do_not_support_results",
                Outcome.flag,
                f"The samples do not support the published numbers: {mism[0]}"
                + (f" ({len(mism)} mismatches)" if len(mism) > 1 else ""),
                detail="Every mismatch: " + "; ".join(mism) + ". A trimmed samples file or an edited results file no "
                "longer describes one run, so the audit of these samples neither supports nor refutes the "
                "published claim: the verdict is inconclusive at best. Audit the complete, unedited output of "
                "the run (re-run lm-eval with --log_samples if it is lost).",
                severity=Severity.major,
                impact=Impact.untrusted_input,
                statistic={"mismatches": len(mism), "metric": metric},
                rows=rows,
                evidence=[{"mismatch": m} for m in mism[:10]],
                provenance=prov,
            )
        )
    elif compared:
        findings.append(
            Finding(
                NAME,
                "samples_support_results",
                Outcome.passed,
                f"The samples reproduce their results files: document counts and every filter's {metric} "
                f"(within {TOLERANCE:g}) at {compared} arm × budget run(s)",
                rows=rows,
                provenance=prov,
            )
        )
    if limited:
        findings.append(
            Finding(
                NAME,
                "limited_run",
                Outcome.info,
                "The published numbers cover a subset of the task's documents (--limit)",
                detail="; ".join(limited)
                + ". lm-eval's --limit is meant for testing: a number from a subset is not the "
                "task's score.",
                provenance=prov,
            )
        )
    if no_results:
        findings.append(
            Finding(
                NAME,
                "no_results_file",
                Outcome.info,
                "Some samples have no published numbers beside them to be cross-checked with",
                detail="; ".join(no_results) + ". Put the results file of the same run next to its samples file.",
                provenance=prov,
            )
        )
    return findings


SPEC = CheckSpec(
    NAME,
    run,
    Params,
    needs_samples=True,
    description="lm-eval samples vs their results file: document counts, filters, each filter's metric recomputed",
)
"""This check in the registry (:data:`audit.checks.REGISTRY`)."""
