"""Report rendering: report.html (self-contained, escaped) and summary.md, from the validated Report."""
from __future__ import annotations

import math
from typing import Any

from audit.findings import VERDICT_EXPLANATION, Report


def _env():
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(loader=PackageLoader("audit.reports", "templates"), autoescape=select_autoescape(["html"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = num
    env.filters["delta"] = delta
    env.filters["ci"] = ci
    env.filters["pval"] = pval
    return env


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
    if low is None or high is None:
        return "[n/a]"
    return f"[{low:+.3f}, {high:+.3f}]"


def pval(p: Any) -> str:
    if p is None:
        return "n/a"
    return f"{p:.2e}" if p < 1e-3 else f"{p:.4f}"


def render_html(report: Report, records=None) -> str:
    return _env().get_template("report.html").render(r=report, explain=VERDICT_EXPLANATION)


def render_summary(report: Report) -> str:
    """A Markdown summary: verdict, reason, the claimed cell, and every flagged finding."""
    lines = [f"## audit: {report.verdict.replace('_', ' ')}", "", f"**{report.claim['claim']['title']}**", "",
             f"{report.verdict_reason}", "", f"_{VERDICT_EXPLANATION[report.verdict]}_", ""]
    claimed = [c for c in report.cells if c.claimed]
    if report.cells:
        lines += ["| budget | scoring | n | baseline | treatment | delta | 95% CI | p | test |",
                  "|---:|---|---:|---:|---:|---:|---|---:|---|"]
        for c in report.cells:
            mark = " **(claimed)**" if c.claimed else ""
            lines.append(f"| {c.budget} | {c.scoring}{mark} | {c.n} | {num(c.baseline)} | {num(c.treatment)} | "
                         f"{delta(c.delta)} | {ci(c.ci_low, c.ci_high)} | {pval(c.p_value)} | {c.test} |")
        lines.append("")
    flagged = [f for f in report.findings if f.outcome in ("flag", "inconclusive")]
    if flagged:
        lines.append("### Findings")
        for f in flagged:
            lines.append(f"- **{f.severity}** `{f.check}.{f.code}`: {f.title}")
        lines.append("")
    lines.append(f"seed {report.options['seed']}, {report.options['resamples']} resamples, audit {report.audit_version}"
                 + (f"; claimed: {claimed[0].budget} tokens, {claimed[0].scoring}" if claimed else ""))
    return "\n".join(lines) + "\n"
