"""Report rendering: report.html (self-contained, escaped), summary.md and JUnit XML, from the validated Report.

report.html is one file: inline CSS, matplotlib plots as inline SVG, a small vanilla-JS item browser reading a JSON
blob from ``<script type="application/json">``. It loads nothing from the network (a Content-Security-Policy says
so, and only the report's own script, by hash, may run). Model outputs are untrusted: jinja2 autoescapes every
value, the JSON blob escapes ``<``, ``>`` and ``&``, and the script writes text with ``textContent`` only.
"""
from __future__ import annotations

import base64
import hashlib
import math
import os
import re
from typing import Any

from audit.checks.truncation import UNTRUNCATED_ROLE
from audit.findings import VERDICT_EXPLANATION, Report

SEVERITY_ORDER = {"critical": 0, "major": 1, "minor": 2, "info": 3}
OUTCOME_ORDER = {"flag": 0, "inconclusive": 1, "pass": 2, "info": 3}


def _env():
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(loader=PackageLoader("audit.reports", "templates"),
                      autoescape=select_autoescape(["html", "htm", "xml"], default_for_string=True, default=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = num
    env.filters["delta"] = delta
    env.filters["ci"] = ci
    env.filters["pval"] = pval
    env.filters["value"] = value
    env.filters["pct"] = pct
    env.filters["yaml"] = _yaml
    env.filters["count"] = lambda x: f"{x:,}"
    env.filters["redact"] = redact
    return env


def _yaml(obj: Any) -> str:
    import yaml

    return yaml.safe_dump(obj, sort_keys=False, allow_unicode=True, default_flow_style=False).rstrip()


# ---------------------------------------------------------------------------------------------------------------
# Number formatting (shared with the CLI)


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def num(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def delta(x: Any) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:+.3f}"


def ci(low: Any, high: Any) -> str:
    if low is None or high is None or not (_finite(low) and _finite(high)):
        return "[n/a]"
    return f"[{low:+.3f}, {high:+.3f}]"


def interval(low: Any, high: Any) -> str:
    """An interval of a rate (unsigned), e.g. [0.254, 0.746]."""
    if not (_finite(low) and _finite(high)):
        return "[n/a]"
    return f"[{low:.3f}, {high:.3f}]"


def pval(p: Any) -> str:
    if p is None or not _finite(p):
        return "n/a"
    return f"{p:.2e}" if p < 1e-3 else f"{p:.4f}"


def pct(x: Any) -> str:
    return "n/a" if not _finite(x) else f"{100 * x:.1f}%"


def value(x: Any, key: str = "") -> str:
    """A statistic's value for display: p-values as p-values, small floats in exponent form, lists compact."""
    if isinstance(x, float) and ("p_value" in key or key in ("p", "mid_p") or key.endswith("_p")):
        return pval(x)
    if isinstance(x, float) and math.isfinite(x):
        if x.is_integer():
            return str(int(x))
        if abs(x) < 1e-3:
            return f"{x:.3g}"
        return f"{x:.4f}".rstrip("0").rstrip(".")
    if isinstance(x, (list, tuple)):
        return ", ".join(value(v) for v in x)
    if isinstance(x, dict):
        return "; ".join(f"{k}: {value(v, str(k))}" for k, v in x.items())
    return num(x)


# ---------------------------------------------------------------------------------------------------------------
# Secrets: nothing that looks like a credential reaches a rendered file


_SECRET_KEY = re.compile(r"(api[_-]?key|secret|password|passwd|authorization|bearer|access[_-]?token|auth[_-]?token"
                         r"|private[_-]?key)", re.I)
_SECRET_INLINE = re.compile(r"(?i)\b(api[_-]?key|secret|password|token|authorization)(\s*[=:]\s*)([^,\s;&\"']+)")


def redact(obj: Any) -> Any:
    """Copy of a claim/settings structure with credential-like values replaced by "[redacted]".

    Keys ending in ``_env`` name an environment variable (``api_key_env: OPENAI_API_KEY``) and are kept: a name is
    not a secret. ``key=value`` pairs inside strings (lm-eval ``model_args``) are redacted too.
    """
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            ks = str(k)
            if _SECRET_KEY.search(ks) and not ks.lower().endswith("_env") and v not in (None, ""):
                out[k] = "[redacted]"
            else:
                out[k] = redact(v)
        return out
    if isinstance(obj, list):
        return [redact(v) for v in obj]
    if isinstance(obj, str):
        return _SECRET_INLINE.sub(lambda m: m.group(1) + m.group(2) + "[redacted]", obj)
    return obj


def _env_names(obj: Any) -> set[str]:
    names: set[str] = set()
    if isinstance(obj, dict):
        for k, v in obj.items():
            if str(k).lower().endswith("_env") and isinstance(v, str):
                names.add(v)
            names |= _env_names(v)
    elif isinstance(obj, list):
        for v in obj:
            names |= _env_names(v)
    return names


def scrub(text: str, report: Report) -> str:
    """Remove the values of environment variables the claim names (``*_env``) from rendered text, should a model or
    a log have echoed one. Values are read only to be removed; they are never printed."""
    from html import escape

    for name in _env_names(report.claim):
        val = os.environ.get(name)
        if val and len(val) >= 4:
            for form in {val, escape(val), escape(val, quote=False)}:
                text = text.replace(form, "[redacted]")
    return text


# ---------------------------------------------------------------------------------------------------------------
# What the page shows


def reported_delta(report: Report) -> float | None:
    rep = (report.claim.get("claim") or {}).get("reported") or {}
    if rep.get("delta") is not None:
        return float(rep["delta"])
    b, t = _rate(rep.get("baseline")), _rate(rep.get("treatment"))
    return None if b is None or t is None else t - b


def _rate(v: Any) -> float | None:
    if isinstance(v, dict) and v.get("n"):
        return v["passes"] / v["n"]
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    return None


def _counts(v: Any, n: Any) -> tuple[int, int] | None:
    if isinstance(v, dict) and v.get("n"):
        return int(v["passes"]), int(v["n"])
    if isinstance(v, (int, float)) and not isinstance(v, bool) and n:
        return int(round(v * n)), int(n)
    return None


def _significance_stat(report: Report) -> dict | None:
    for f in report.findings:
        if f.check == "significance" and f.statistic.get("delta") is not None:
            return f.statistic
    return None


def claim_vs_measured(report: Report, records=None) -> dict[str, Any]:
    """Rows baseline / treatment / delta: as reported (with CIs audit computes from the reported k/n) and as
    measured at the claimed setting (paired) or recomputed from the reported counts (counts only)."""
    from audit import stats

    level = report.options.get("level", 0.95)
    rep = (report.claim.get("claim") or {}).get("reported") or {}
    n = rep.get("n")
    cell = next((c for c in report.cells if c.claimed), None)
    binary = None
    if cell is not None:
        binary = "mcnemar" in cell.test
        if records is not None:
            try:
                binary = records.paired(cell.scoring, cell.budget, cell.variant).binary
            except KeyError:
                pass
    rows = []
    for arm in ("baseline", "treatment"):
        v = rep.get(arm)
        r = _rate(v)
        k_n = _counts(v, n)
        rep_ci = stats.wilson(*k_n, level=level) if k_n else None
        row = {"what": arm, "reported": r, "reported_counts": f"{k_n[0]}/{k_n[1]}" if k_n else None,
               "reported_ci": (rep_ci.low, rep_ci.high) if rep_ci and rep_ci.ok else None,
               "reported_ci_how": "Wilson, computed from the reported k/n" if rep_ci and rep_ci.ok else None}
        if cell is not None:
            m = getattr(cell, arm)
            row["measured"] = m
            if binary and m is not None:
                k = int(round(m * cell.n))
                iv = stats.wilson(k, cell.n, level=level)
                row.update(measured_counts=f"{k}/{cell.n}", measured_ci=(iv.low, iv.high) if iv.ok else None,
                           measured_ci_how="Wilson")
            else:
                row.update(measured_counts=None, measured_ci=None,
                           measured_ci_how="not binary: see the paired delta" if m is not None else None)
        elif (st := _significance_stat(report)) is not None and k_n:
            row.update(measured=r, measured_counts=f"{k_n[0]}/{k_n[1]}",
                       measured_ci=row["reported_ci"], measured_ci_how="Wilson, from the reported counts (no samples)")
        rows.append(row)
    rd = reported_delta(report)
    rep_ci = rep.get("ci")
    drow: dict[str, Any] = {"what": "delta", "reported": rd, "reported_counts": None,
                            "reported_ci": tuple(rep_ci) if rep_ci else None,
                            "reported_ci_how": "as reported" if rep_ci else None,
                            "reported_p": rep.get("p_value"), "reported_test": rep.get("test")}
    if rep.get("delta") is None and rd is not None:
        drow["reported_note"] = "treatment − baseline of the reported rates"
    cb, ct = _counts(rep.get("baseline"), n), _counts(rep.get("treatment"), n)
    if not rep_ci and cb and ct:
        iv = stats.newcombe_diff(ct[0], ct[1], cb[0], cb[1], level=level)
        if iv.ok:
            drow.update(reported_ci=(iv.low, iv.high), reported_ci_how="Newcombe hybrid score, computed from the "
                                                                       "reported k/n (unpaired)")
    if cell is not None:
        drow.update(measured=cell.delta, measured_ci=(cell.ci_low, cell.ci_high) if cell.ci_low is not None else None,
                    measured_ci_how=cell.ci_method, measured_p=cell.p_value, measured_test=cell.test)
        where = f"measured at the claimed setting: budget {cell.budget}, scoring {cell.scoring}, n = {cell.n} paired items"
    elif (st := _significance_stat(report)) is not None:
        drow.update(measured=st.get("delta"), measured_ci=(st.get("ci_low"), st.get("ci_high")),
                    measured_ci_how="Newcombe hybrid score (unpaired)", measured_p=st.get("p_value"),
                    measured_test=st.get("test"))
        where = "recomputed from the reported counts (no per-item samples: unpaired Fisher exact and Newcombe)"
    else:
        where = "nothing measured: no samples and no usable reported counts"
    rows.append(drow)
    keys = ("reported", "reported_counts", "reported_ci", "reported_ci_how", "reported_note", "reported_p",
            "reported_test", "measured", "measured_counts", "measured_ci", "measured_ci_how", "measured_p",
            "measured_test")
    rows = [{k: None for k in keys} | r for r in rows]
    return {"rows": rows, "where": where, "level": level}


def forest_rows(report: Report) -> list[dict[str, Any]]:
    """Every cell, plus the delta on the items neither arm truncated and the delta recomputed from counts."""
    variants = {c.variant for c in report.cells}
    rows = []
    for c in report.cells:
        label = f"{c.budget} tok · {c.scoring}" + (f" · {c.variant}" if len(variants) > 1 else "")
        rows.append({"label": label, "delta": c.delta, "ci_low": c.ci_low, "ci_high": c.ci_high,
                     "claimed": c.claimed, "kind": "cell"})
    for f in report.findings:
        for r in f.rows:
            role = r.get("role")
            if role == UNTRUNCATED_ROLE and r.get("delta") is not None:
                rows.append({"label": f"{r.get('budget')} tok · {r.get('scoring')} · untruncated items (n={r.get('n')})",
                             "delta": r["delta"], "ci_low": r.get("ci_low"), "ci_high": r.get("ci_high"),
                             "claimed": False, "kind": "extra"})
            elif role == "reported counts" and not report.cells and r.get("delta") is not None:
                rows.append({"label": f"reported counts · {r.get('scoring')} (n={r.get('n')})", "delta": r["delta"],
                             "ci_low": r.get("ci_low"), "ci_high": r.get("ci_high"), "claimed": True, "kind": "cell"})
    return rows


def truncation_rates(report: Report) -> list[dict[str, Any]]:
    for f in report.findings:
        if f.check == "truncation" and f.code == "rates":
            return f.rows
    return []


def no_answer_rates(report: Report) -> list[dict[str, Any]]:
    """The extraction check's rows: outputs with no extractable answer per scoring, budget and arm."""
    for f in report.findings:
        if f.check == "extraction" and f.code == "rates":
            return f.rows
    return []


def sorted_findings(report: Report) -> list[tuple[int, Any]]:
    """(index in report.findings, finding), flags first by severity, then inconclusive, pass, info."""
    return sorted(enumerate(report.findings),
                  key=lambda x: (OUTCOME_ORDER.get(x[1].outcome, 9), SEVERITY_ORDER.get(x[1].severity, 9), x[0]))


def ci_of(stat: dict[str, Any]) -> tuple[Any, Any] | None:
    if stat.get("ci_low") is not None or stat.get("ci_high") is not None:
        return stat.get("ci_low"), stat.get("ci_high")
    return None


def test_of(f: Any) -> str | None:
    for src in (f.statistic, f.provenance):
        for k in ("test", "asymmetry_test"):
            if src.get(k):
                return str(src[k])
    for r in f.rows:
        if r.get("test"):
            return str(r["test"])
    return None


def reproduce_command(report: Report) -> str:
    import shlex

    claim = report.claim_file or "claim.yaml"
    cmd = f"audit verify {shlex.quote(claim)} --seed {report.options.get('seed')} " \
          f"--resamples {report.options.get('resamples')}"
    if report.gate and report.gate.get("fail_on"):
        cmd += f" --fail-on {shlex.quote(report.gate['fail_on'])}"
    return redact(cmd + " --out out")


def _script_hash(js: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(js.encode("utf-8")).digest()).decode("ascii")


def render_html(report: Report, records=None, max_items: int | None = None) -> str:
    """report.html for ``report``; ``records`` (the audited Records) feed the item browser and the length plot."""
    from audit.reports import items as items_mod
    from audit.reports import plots

    env = _env()
    from markupsafe import Markup

    level = report.options.get("level", 0.95)
    data = items_mod.item_data(report, records, max_items=max_items or items_mod.MAX_ITEMS)
    lens = items_mod.lengths(records)
    budgets = records.budgets() if records is not None and len(records.table) else []
    forest = plots.forest_svg(forest_rows(report), reported_delta(report), level,
                              report.options.get("direction", "greater"))
    lengths_plot = plots.lengths_svg(lens.values, budgets, lens.unit, lens.label) if lens else None
    js = env.loader.get_source(env, "report_js.html")[0]
    css = env.loader.get_source(env, "report.css")[0]
    gate_failing = set((report.gate or {}).get("failing_findings") or [])
    html = env.get_template("report.html").render(
        r=report, explain=VERDICT_EXPLANATION, level_pct=f"{level:.0%}",
        cvm=claim_vs_measured(report, records), forest_svg=Markup(forest) if forest else None,
        lengths_svg=Markup(lengths_plot) if lengths_plot else None, lengths=lens, rates=truncation_rates(report), no_answer=no_answer_rates(report),
        findings=sorted_findings(report), gate_failing=gate_failing, ci_of=ci_of, test_of=test_of,
        items=data, items_json=Markup(items_mod.script_json(data.blob)) if data else None,
        claim_shown=redact(report.claim), arms_shown=redact(report.arms), reproduce=reproduce_command(report),
        reported_delta=reported_delta(report), js=Markup(js), css=Markup(css), script_hash=_script_hash(js),
    )
    return scrub(html, report)


# ---------------------------------------------------------------------------------------------------------------
# Markdown summary (GitHub job summary / PR comment)


def md_cell(x: Any) -> str:
    """A value safe inside a Markdown table cell: no pipes, newlines or raw HTML."""
    s = str(x).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")
    return s.replace("<", "&lt;").replace(">", "&gt;")


def render_summary(report: Report) -> str:
    """A Markdown summary: verdict, reason, gate, claimed vs measured, every cell, and every flagged finding."""
    title = md_cell((report.claim.get("claim") or {}).get("title", ""))
    icon = {"supported": "✅", "fragile": "⚠️", "not_reproduced": "❌", "inconclusive": "❔"}[report.verdict]
    lines = [f"## {icon} audit: {report.verdict.replace('_', ' ')}", "", f"**{title}**", "",
             md_cell(report.verdict_reason), "", f"_{VERDICT_EXPLANATION[report.verdict]}_", ""]
    gate = report.gate
    if gate:
        state = "passed" if gate.get("passed") else "failed"
        why = "; ".join(gate.get("reasons") or [])
        lines += [f"**CI gate** `--fail-on {md_cell(gate.get('fail_on'))}`: **{state}** (exit {report.exit_code})"
                  + (f": {md_cell(why)}" if why else ""), ""]
    cvm = claim_vs_measured(report)
    lines += ["### Claimed vs measured", "", f"_{md_cell(cvm['where'])}_", "",
              f"| | reported | {cvm['level']:.0%} CI (reported) | measured | {cvm['level']:.0%} CI (measured) |",
              "|---|---:|---|---:|---|"]
    for row in cvm["rows"]:
        fmt = delta if row["what"] == "delta" else num
        rc = row.get("reported_ci")
        mc = row.get("measured_ci")
        rep_txt = fmt(row.get("reported")) + (f" ({row['reported_counts']})" if row.get("reported_counts") else "")
        mea_txt = fmt(row.get("measured")) + (f" ({row['measured_counts']})" if row.get("measured_counts") else "")
        show = ci if row["what"] == "delta" else interval
        lines.append(f"| {row['what']} | {md_cell(rep_txt)} | {show(*rc) if rc else '—'} | {md_cell(mea_txt)} | "
                     f"{show(*mc) if mc else '—'} |")
    d = cvm["rows"][-1]
    if d.get("reported_p") is not None or d.get("measured_p") is not None:
        lines.append(f"| p-value | {pval(d.get('reported_p'))} ({md_cell(d.get('reported_test') or 'test not given')}) "
                     f"| | {pval(d.get('measured_p'))} ({md_cell(d.get('measured_test') or 'n/a')}) | |")
    lines.append("")
    claimed = [c for c in report.cells if c.claimed]
    if report.cells:
        lines += ["### Every cell", "",
                  f"| variant | budget | scoring | n | baseline | treatment | delta | {cvm['level']:.0%} CI | p | test |",
                  "|---|---:|---|---:|---:|---:|---:|---|---:|---|"]
        for c in report.cells:
            mark = " **(claimed)**" if c.claimed else ""
            lines.append(f"| {md_cell(c.variant)} | {c.budget} | {md_cell(c.scoring)}{mark} | {c.n} | {num(c.baseline)} "
                         f"| {num(c.treatment)} | {delta(c.delta)} | {ci(c.ci_low, c.ci_high)} | {pval(c.p_value)} "
                         f"| {md_cell(c.test)} |")
        lines.append("")
    failing = set((gate or {}).get("failing_findings") or [])
    flagged = [(i, f) for i, f in sorted_findings(report) if f.outcome in ("flag", "inconclusive")]
    if flagged:
        lines += ["### Findings", ""]
        for i, f in flagged:
            tag = f"**{f.severity}**" if f.outcome == "flag" else "_inconclusive_"
            fails = " — **fails the gate**" if i in failing else ""
            lines.append(f"- {tag} `{f.check}.{f.code}`: {md_cell(f.title)}{fails}")
        lines.append("")
    lines.append(f"seed {report.options['seed']}, {report.options['resamples']} resamples, audit {report.audit_version}"
                 + (f"; claimed: {claimed[0].budget} tokens, {md_cell(claimed[0].scoring)}" if claimed else ""))
    lines.append(f"Reproduce: `{reproduce_command(report)}`")
    # One last pass over the whole document: no control byte from a title, a log or a server reaches the file
    # raw (audit.textsafe), and no registered secret either.
    from audit.textsafe import for_markdown
    from audit.textsafe import scrub as scrub_secrets

    return for_markdown(scrub_secrets(scrub("\n".join(lines) + "\n", report)))


def render_junit(report: Report) -> str:
    from audit.reports.junit import render_junit as _junit

    return scrub(_junit(report), report)


__all__ = ["render_html", "render_summary", "render_junit", "num", "delta", "ci", "pval", "redact"]
