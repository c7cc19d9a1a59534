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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit.errors import AuditError
from audit.findings import VERDICT_EXPLANATION, Outcome, Report, Severity, TableKind
from audit.gate import DEFAULT_FAIL_ON


def _env():
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=PackageLoader("audit.reports", "templates"),
        autoescape=select_autoescape(["html", "htm", "xml"], default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
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
    if isinstance(x, float) and (
        "p_value" in key or key in ("p", "mid_p") or key.endswith("_p") or key.startswith("p_")
    ):
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


_SECRET_KEY = re.compile(
    r"(api[_-]?key|secret|password|passwd|authorization|bearer|access[_-]?token|auth[_-]?token"
    r"|private[_-]?key)",
    re.I,
)
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

    for name in _env_names(report.claim_dict()):
        val = os.environ.get(name)
        if val and len(val) >= 4:
            for form in {val, escape(val), escape(val, quote=False)}:
                text = text.replace(form, "[redacted]")
    return text


def scrub_all(text: str, report: Report) -> str:
    """:func:`scrub` (the exact values of the claim's ``*_env`` variables, HTML-escaped forms too), then
    :func:`audit.textsafe.scrub` — every registered secret in any letter case, any piece of 8 characters or more,
    and the value after ``Bearer``. The claim's own keys are scrubbed that way too (passed along, not registered:
    rendering must not change what later scrubbing removes), so a report rendered outside ``audit verify`` (which
    registers them) is as clean. Defence in depth: generations are scrubbed before they are cached or reported, so
    this pass normally finds nothing."""
    from audit.textsafe import scrub as scrub_secrets

    text = scrub(text, report)
    keys: list[str | None] = [v for v in (os.environ.get(n) for n in sorted(_env_names(report.claim_dict()))) if v]
    for key in keys or [None]:
        text = scrub_secrets(text, key)
    return text


# ---------------------------------------------------------------------------------------------------------------
# What the page shows (read from the Report; computed once in audit.verify)


def sorted_findings(report: Report) -> list[tuple[int, Any]]:
    """(index in report.findings, finding), flags first by severity, then inconclusive, pass, info."""
    return sorted(
        enumerate(report.findings), key=lambda x: (Outcome(x[1].outcome).rank, Severity(x[1].severity).rank, x[0])
    )


_SIGNED = (
    "delta",
    "change",
    "diff",
    "boot",
    "newcombe",
    "clean",
    "shared",
    "marker",
    "correctness",
    "token_accuracy",
    "observed",
)


def _stat_interval(low: Any, high: Any, key: str) -> str:
    """A statistic's interval on a findings card: signed for differences, plain for rates and AUCs."""
    if not (_finite(low) and _finite(high)):
        return "n/a"
    if any(s in key for s in _SIGNED):
        return f"{delta(low)} … {delta(high)}"
    return f"{value(low)} … {value(high)}"


def stat_rows(f: Any) -> list:
    """A finding's statistic as labelled rows (name, value, meaning) — :mod:`audit.reports.glossary`. The headline
    interval and test are shown above it, so they are not repeated."""
    from audit.reports.glossary import statistic_rows

    skip = ("ci_low", "ci_high") + (("test",) if f.test_in_statistic else ())

    def shown(x: Any, key: str) -> str:
        return "none" if isinstance(x, (list, tuple, dict)) and not x else value(x, key)

    return statistic_rows(f.statistic, shown, _stat_interval, skip=skip)


def reproduce_command(report: Report, out: str | Path | None = None) -> str:
    """The command that reproduces the audit, to be run in the claim file's folder: the claim by its file name, the
    seed, resamples and gate that were used, and the ``--out`` that was given (a relative one re-based on the claim
    file's folder, an absolute one as given; none when none was given). Nothing of the machine that ran it (its
    absolute paths) appears unless the user typed it."""
    import shlex

    claim = Path(report.claim_file) if report.claim_file else None
    cmd = (
        f"audit verify {shlex.quote(claim.name if claim else 'claim.yaml')} --seed {report.options.seed} "
        f"--resamples {report.options.resamples}"
    )
    if report.gate.fail_on != DEFAULT_FAIL_ON:
        cmd += f" --fail-on {shlex.quote(report.gate.fail_on)}"
    if out is not None:
        where = str(out)
        if claim is not None and not os.path.isabs(where):
            where = os.path.relpath(os.path.abspath(where), claim.parent)
        cmd += f" --out {shlex.quote(where)}"
    return redact(cmd)


def _script_hash(js: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(js.encode("utf-8")).digest()).decode("ascii")


def render_html(report: Report, records=None, max_items: int | None = None, out: str | Path | None = None) -> str:
    """report.html for ``report``; ``records`` (the audited Records) feed the item browser and the length plot;
    ``out`` is the ``--out`` folder as given (for the reproduce command)."""
    from audit.reports import items as items_mod
    from audit.reports import plots
    from audit.reports.glossary import method_meaning

    env = _env()
    from markupsafe import Markup

    level = report.options.level
    data = items_mod.item_data(report, records, max_items=max_items or items_mod.MAX_ITEMS)
    lens = items_mod.lengths(records)
    budgets = records.budgets() if records is not None and len(records.table) else []
    reported = report.claim_vs_measured.delta.reported
    estimates = [e.model_dump() for e in report.forest]
    forest = plots.forest_svg(estimates, reported, level, report.options.direction)
    # A second drawing for narrow screens (a phone): labels above each bar, larger text, the full width for the bars.
    forest_narrow = (
        plots.forest_svg(estimates, reported, level, report.options.direction, narrow=True) if forest else None
    )
    lengths_plot = plots.lengths_svg(lens.values, budgets, lens.unit, lens.label) if lens else None
    js = env.loader.get_source(env, "report_js.html")[0]
    css = env.loader.get_source(env, "report.css")[0]
    html = env.get_template("report.html").render(
        r=report,
        explain=VERDICT_EXPLANATION,
        level_pct=f"{level:.0%}",
        cvm=report.claim_vs_measured,
        forest_svg=Markup(forest) if forest else None,
        forest_narrow_svg=Markup(forest_narrow) if forest_narrow else None,
        stat_rows=stat_rows,
        lengths_svg=Markup(lengths_plot) if lengths_plot else None,
        lengths=lens,
        rates=report.rate_tables.get(TableKind.truncation, []),
        no_answer=report.rate_tables.get(TableKind.no_answer, []),
        findings=sorted_findings(report),
        gate_failing=set(report.gate.failing_findings),
        items=data,
        items_json=Markup(items_mod.script_json(data.blob)) if data else None,
        claim_shown=redact(report.claim_dict()),
        arms_shown=redact(report.arms),
        reproduce="# in the claim file's folder\n" + reproduce_command(report, out),
        reported_delta=reported,
        js=Markup(js),
        css=Markup(css),
        script_hash=_script_hash(js),
        seq=sequential_view(report),
        method_meaning=method_meaning,
    )
    return scrub_all(html, report)


def rate_text(row: Any) -> str:
    """One rate k/n as the summary and the terminal show it: ``74.0% (37/50)``; ``unknown`` when nothing tells."""
    if row is None:
        return "—"
    if row.rate is None or not _finite(row.rate):
        return "unknown"
    return f"{pct(row.rate)} ({row.count}/{row.known}" + (f" of {row.items}" if row.known < row.items else "") + ")"


@dataclass(frozen=True)
class RateGrid:
    """The rates summary.md and the terminal show side by side: ``header`` then ``rows`` of display text."""

    header: list[str]
    rows: list[list[str]]
    has_no_answer: bool


def rates_side_by_side(report: Report) -> RateGrid:
    """Truncation and no-answer rates per arm × budget, one row each: the share of outputs cut off by the budget,
    then the share with no extractable answer under each extracting scoring (summary.md and the terminal)."""
    trunc = {(r.arm, r.budget): r for r in report.rate_tables.get(TableKind.truncation, [])}
    no_answer = report.rate_tables.get(TableKind.no_answer, [])
    scorings = list(dict.fromkeys(r.scoring for r in no_answer))
    na = {(r.arm, r.budget, r.scoring): r for r in no_answer}
    keys = list(dict.fromkeys([*trunc, *((r.arm, r.budget) for r in no_answer)]))
    keys.sort(key=lambda k: (k[1] is None, k[1] if k[1] is not None else 0, k[0] != "baseline"))
    header = ["budget", "arm", "truncated"] + [f"no answer ({s})" for s in scorings]
    rows = [
        [str(b), arm, rate_text(trunc.get((arm, b))) if trunc else "—"]
        + [rate_text(na.get((arm, b, s))) for s in scorings]
        for arm, b in keys
    ]
    return RateGrid(header, rows, bool(no_answer))


# ---------------------------------------------------------------------------------------------------------------
# A sequential run (report.sequential): where it stopped and why, in the words the page, the summary and the terminal
# share


@dataclass(frozen=True)
class SequentialDecisionRow:
    """One decision of a sequential run as display text."""

    name: str
    state: str
    estimate: str
    anytime: str  # the anytime-valid interval the state rests on
    fixed: str  # the fixed-n interval on the same items and its method, shown beside: not the decision
    why: str


@dataclass(frozen=True)
class SequentialView:
    """What the report says of ``report.sequential``: ``headline`` ("Stopped early after 300 of 1,000 items") and
    ``reason`` make one sentence; ``line`` is the terminal's; ``facts`` the batch, seed, looks and generations;
    ``note`` what the verdict rests on; ``looks`` (items, decisions still open) per look."""

    mode: str
    settled: bool
    stopped_at: int
    items_total: int
    headline: str
    reason: str
    line: str
    facts: str
    note: str
    decisions: list[SequentialDecisionRow]
    looks: list[tuple[int, str]]
    anytime_method: str
    anytime_meaning: str


def _seq_outcome(run: Any, ok: bool) -> str:
    """Where the run stopped: "stopped early after k of n items" and its kin (live), or what a live re-run would have
    done ("would have stopped after k of n items", replay)."""
    k, n = f"{run.stopped_at:,}", f"{run.items_total:,}"
    if run.mode == "replay":
        if run.stopped_at >= run.items_total:  # settled at the last look, or not at all: every item was needed
            return f"would have run all {n} items"
        return f"would have stopped after {k} of {n} items" if ok else f"would have run {k} of {n} items (n_max)"
    if run.stopped_at >= run.items_total:
        return f"ran all {n} items"
    return f"stopped early after {k} of {n} items" if ok else f"stopped at n_max after {k} of {n} items"


def _seq_generations(gen: dict[str, Any]) -> str:
    """The generations a live run made (``generations``: ``requests`` over all looks, ...), or that none were."""
    if not gen:
        return "no generations recorded (the items were not generated by this run)"
    parts = []
    if _finite(gen.get("requests")):
        parts.append(f"{gen['requests']:,} new model call(s) over all looks")
    if _finite(gen.get("cached")) and gen["cached"] > 0:
        parts.append(f"{gen['cached']:,} reused from the cache")
    if _finite(gen.get("generations_used")):
        parts.append(f"{gen['generations_used']:,} output(s) the verdict rests on (new, cached or derived)")
    known = {"requests", "cached", "generations_used"}
    parts += [f"{k}: {value(v, str(k))}" for k, v in gen.items() if k not in known]
    return "; ".join(parts) if parts else "no generations recorded"


def _seq_decision(d: Any) -> SequentialDecisionRow:
    fixed = "—"
    if d.fixed_low is not None and d.fixed_high is not None:
        fixed = ci(d.fixed_low, d.fixed_high) + (f" {d.fixed_method}" if d.fixed_method else "")
    anytime = ci(d.low, d.high) if d.low is not None and d.high is not None else "—"
    return SequentialDecisionRow(d.name, d.state, delta(d.estimate), anytime, fixed, d.why)


def sequential_view(report: Report) -> SequentialView | None:
    """``report.sequential`` as the page, the summary and the terminal show it; None for an ordinary audit."""
    from audit.reports.glossary import METHODS
    from audit.stats import ANYTIME_METHOD

    run = report.sequential
    if run is None:
        return None
    ok = run.settled
    outcome = _seq_outcome(run, ok)
    if run.mode == "replay":
        headline = f"A live re-run in draw order (seed {run.seed}, batches of {run.batch:,}) {outcome}"
    else:
        headline = outcome[0].upper() + outcome[1:]
    looks = f"{len(run.looks)} look(s)" + (
        f" (at {', '.join(f'{lk.items:,}' for lk in run.looks)} items)" if 0 < len(run.looks) <= 12 else ""
    )
    facts = f"a look every {run.batch:,} items in the draw order seeded with {run.seed}; {looks}; n_max {run.n_max:,}"
    if run.mode == "live":
        facts += "; " + _seq_generations(run.generations)
        note = (
            f"The verdict, every cell and every finding of this report rest on the first {run.stopped_at:,} items in "
            f"the draw order; the decisions below are read from anytime-valid intervals ({ANYTIME_METHOD}), valid "
            "at this data-dependent stop."
        )
        line = f"sequential: {outcome} ({run.reason})"
    else:
        note = (
            f"The verdict rests on every logged item ({run.items_total:,}) that both arms hold, as in any replayed "
            "audit; this says what a live re-run would cost, and the decisions below are the state at that point "
            f"(anytime-valid intervals, {ANYTIME_METHOD})."
        )
        line = f"sequential (replay): a live re-run {outcome} ({run.reason})"
    return SequentialView(
        mode=run.mode,
        settled=ok,
        stopped_at=run.stopped_at,
        items_total=run.items_total,
        headline=headline,
        reason=run.reason,
        line=line,
        facts=facts,
        note=note,
        decisions=[_seq_decision(d) for d in run.decisions],
        looks=[(lk.items, ", ".join(lk.open) or "none") for lk in run.looks],
        anytime_method=ANYTIME_METHOD,
        anytime_meaning=METHODS[ANYTIME_METHOD][1],
    )


# ---------------------------------------------------------------------------------------------------------------
# Markdown summary (GitHub job summary / PR comment)


def md_cell(x: Any) -> str:
    """A value safe inside a Markdown table cell: no pipes, newlines or raw HTML, and nothing live from untrusted
    text — images, non-http(s) links, autolinks and @mentions are neutralised (:func:`audit.textsafe.md_inert`)."""
    from audit.textsafe import md_inert

    s = md_inert(str(x).replace("\\", "\\\\"))
    s = s.replace("|", "\\|").replace("\r", " ").replace("\n", " ")
    return s.replace("<", "&lt;").replace(">", "&gt;")


def _summary_claim_vs_measured(report: Report) -> list[str]:
    """The summary's "Claimed vs measured" table."""
    lines: list[str] = []
    cvm = report.claim_vs_measured
    lines += [
        "### Claimed vs measured",
        "",
        f"_{md_cell(cvm.where)}_",
        "",
        f"| | reported | {cvm.level:.0%} CI (reported) | measured | {cvm.level:.0%} CI (measured) |",
        "|---|---:|---|---:|---|",
    ]
    for row in cvm.rows:
        fmt = delta if row.what == "delta" else num
        rc, mc = row.reported_ci, row.measured_ci
        rep_txt = fmt(row.reported) + (f" ({row.reported_counts})" if row.reported_counts else "")
        mea_txt = fmt(row.measured) + (f" ({row.measured_counts})" if row.measured_counts else "")
        show = ci if row.what == "delta" else interval
        lines.append(
            f"| {row.what} | {md_cell(rep_txt)} | {show(*rc) if rc else '—'} | {md_cell(mea_txt)} | "
            f"{show(*mc) if mc else '—'} |"
        )
    d = cvm.delta
    if d.reported_p is not None or d.measured_p is not None:
        lines.append(
            f"| p-value | {pval(d.reported_p)} ({md_cell(d.reported_test or 'test not given')}) "
            f"| | {pval(d.measured_p)} ({md_cell(d.measured_test or 'n/a')}) | |"
        )
    lines.append("")
    return lines


def _summary_cells(report: Report) -> list[str]:
    """The summary's "Every cell" table (nothing without cells)."""
    lines: list[str] = []
    cvm = report.claim_vs_measured
    if report.cells:
        lines += [
            "### Every cell",
            "",
            f"| variant | budget | scoring | n | baseline | treatment | delta | {cvm.level:.0%} CI | p | test |",
            "|---|---:|---|---:|---:|---:|---:|---|---:|---|",
        ]
        for c in report.cells:
            mark = " **(claimed)**" if c.claimed else ""
            lines.append(
                f"| {md_cell(c.variant)} | {c.budget} | {md_cell(c.scoring)}{mark} | {c.n} "
                f"| {num(c.baseline)} "
                f"| {num(c.treatment)} | {delta(c.delta)} | {ci(c.ci_low, c.ci_high)} | {pval(c.p_value)} "
                f"| {md_cell(c.test)} |"
            )
        lines.append("")
    return lines


def _summary_rates(report: Report) -> list[str]:
    """The summary's table of outputs cut off by the budget and with no answer (nothing without rows)."""
    lines: list[str] = []
    grid = rates_side_by_side(report)
    header, rows = grid.header, grid.rows
    if rows:
        lines += [
            "### Outputs cut off by the budget, and with no answer",
            "",
            "_Share of each arm's outputs that hit the generation cap, and that held no extractable answer under "
            "each extracting scoring (k/n of the outputs whose status is known; intervals in report.html)._",
            "",
            "| " + " | ".join(md_cell(h) for h in header) + " |",
            "|---:|---|" + "---:|" * (len(header) - 2),
        ]
        lines += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in rows]
        if not grid.has_no_answer:
            lines += ["", "_No no-answer rate: no scoring of this audit extracts an answer (the extraction check)._"]
        lines.append("")
    return lines


def _summary_sequential(report: Report) -> list[str]:
    """The summary's block on a sequential run: where it stopped and why, the batch, seed and looks, and each
    decision with its anytime-valid interval and the fixed-n one beside it (nothing for an ordinary audit)."""
    seq = sequential_view(report)
    if seq is None:
        return []
    level = f"{report.options.level:.0%}"
    at = "at the stop" if seq.mode == "live" else f"at that point ({seq.stopped_at:,} items)"
    lines = [
        "### Sequential audit" if seq.mode == "live" else "### Sequential replay",
        "",
        f"**{md_cell(seq.headline)}**: {md_cell(seq.reason)}.",
        "",
        f"_{md_cell(seq.facts[:1].upper() + seq.facts[1:])}. {md_cell(seq.note)}_",
        "",
        f"| decision {at} | state | estimate | {level} anytime-valid CI ({seq.anytime_method}) "
        f"| fixed-n (not the decision): {level} CI, same items | why |",
        "|---|---|---:|---|---|---|",
    ]
    for d in seq.decisions:
        lines.append(
            f"| {md_cell(d.name)} | {md_cell(d.state)} | {d.estimate} | {d.anytime} | {md_cell(d.fixed)} "
            f"| {md_cell(d.why)} |"
        )
    lines += ["", f"_{seq.anytime_method}: {md_cell(seq.anytime_meaning)}._", ""]
    return lines


def render_summary(report: Report, out: str | Path | None = None) -> str:
    """A Markdown summary: verdict, reason, gate, claimed vs measured, every cell, the truncation and no-answer
    rates, and every flagged finding; ``out`` is the ``--out`` folder as given (for the reproduce command)."""
    title = md_cell(report.title)
    icon = {"supported": "✅", "fragile": "⚠️", "not_reproduced": "❌", "inconclusive": "❔"}[report.verdict]
    lines = [
        f"## {icon} audit: {report.verdict.replace('_', ' ')}",
        "",
        f"**{title}**",
        "",
        md_cell(report.verdict_reason),
        "",
        f"_{VERDICT_EXPLANATION[report.verdict]}_",
        "",
    ]
    gate = report.gate
    state = "passed" if gate.passed else "failed"
    why = "; ".join(gate.reasons)
    lines += [
        f"**CI gate** `--fail-on {md_cell(gate.fail_on)}`: **{state}** (exit {report.exit_code})"
        + (f": {md_cell(why)}" if why else ""),
        "",
    ]
    lines += _summary_sequential(report)
    lines += _summary_claim_vs_measured(report)
    claimed = [c for c in report.cells if c.claimed]
    lines += _summary_cells(report)
    lines += _summary_rates(report)
    failing = set(gate.failing_findings)
    flagged = [(i, f) for i, f in sorted_findings(report) if f.outcome in (Outcome.flag, Outcome.inconclusive)]
    if flagged:
        lines += ["### Findings", ""]
        for i, f in flagged:
            tag = f"**{f.severity}**" if f.outcome == Outcome.flag else "_inconclusive_"
            fails = " — **fails the gate**" if i in failing else ""
            lines.append(f"- {tag} `{f.check}.{f.code}`: {md_cell(f.title)}{fails}")
        lines.append("")
    lines.append(
        f"seed {report.options.seed}, {report.options.resamples} resamples, audit {report.audit_version}"
        + (f"; claimed: {claimed[0].budget} tokens, {md_cell(claimed[0].scoring)}" if claimed else "")
    )
    cmd = reproduce_command(report, out).replace("\n", " ")
    fence = "`" * (max((len(r) for r in re.findall("`+", cmd)), default=0) + 1)  # a path with ` cannot end the span
    pad = " " if len(fence) > 1 else ""
    lines.append(f"Reproduce: {fence}{pad}{cmd}{pad}{fence} (in the claim file's folder)")
    # One last pass over the whole document: no control byte from a title, a log or a server reaches the file
    # raw (audit.textsafe), and no registered secret either.
    from audit.textsafe import for_markdown

    return for_markdown(scrub_all("\n".join(lines) + "\n", report))


def render_junit(report: Report) -> str:
    from audit.reports.junit import render_junit as _junit

    return scrub_all(_junit(report), report)


def write_ci_files(
    report: Report,
    summary_md: str | Path | None = None,
    junit: str | Path | None = None,
    out_dir: str | Path | None = None,
) -> dict[str, Path]:
    """Write the Markdown summary and/or JUnit XML for CI; return {kind: path}. Raises AuditError on I/O errors.
    ``out_dir``: the ``--out`` folder as given, for the reproduce command of the summary."""
    out: dict[str, Path] = {}
    for kind, path, render in (
        ("summary_md", summary_md, lambda r: render_summary(r, out_dir)),
        ("junit", junit, render_junit),
    ):
        if path is None:
            continue
        p = Path(path)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(render(report), encoding="utf-8")
        except OSError as exc:
            raise AuditError(f"cannot write {kind.replace('_', ' ')} file {p}: {exc.strerror}") from None
        out[kind] = p
    return out


__all__ = [
    "write_ci_files",
    "render_html",
    "render_summary",
    "render_junit",
    "num",
    "delta",
    "ci",
    "pval",
    "redact",
    "sequential_view",
]
