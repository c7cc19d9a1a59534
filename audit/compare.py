"""compare: what changed between two audits (report.json files) of the same claim.

Cells are matched by (variant, budget, scoring); findings by their subject (check, code, and the variant, budget,
scoring, arm or setting they are about), in order when several share a subject; sources by (arm, budget, file
name). Two reports audit the same claim when the claim's title and metric agree
(anything else in the claim may change and is listed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from audit.errors import InputError, Problem
from audit.findings import Report

_TOL = 1e-12
_SCHEMA_VERSION = Report.model_fields["schema_version"].default
MAX_REPORT_BYTES = 1 << 30
"""A report.json larger than this (1 GiB) is refused unread."""


def load_report(path: str | Path) -> Report:
    """Read and validate a report.json; InputError naming the file when it is unreadable or not a report."""
    from audit.jsonlines import read_json

    file = str(path)
    # read_json refuses FIFOs, devices and /proc entries before opening them (no hang), and names bad UTF-8, bad
    # JSON (line, column), numbers too large, nesting too deep and keys given twice: every one exit 2.
    try:
        data = read_json(path, "the report file", max_bytes=MAX_REPORT_BYTES)
    except InputError as err:
        raise InputError(
            [
                Problem(
                    p.message,
                    file=p.file,
                    line=p.line,
                    field=p.field,
                    value=p.value,
                    fix=(p.fix + "; " if p.fix else "") + "give the report.json written by `audit verify --out`",
                )
                for p in err.problems
            ]
        ) from None
    if not isinstance(data, dict):
        raise InputError(
            [
                Problem(
                    "not an audit report (a JSON object is expected)",
                    file=file,
                    fix="give the report.json written by `audit verify --out`",
                )
            ]
        )
    version = data.get("schema_version")
    if version != _SCHEMA_VERSION:
        raise InputError(
            [
                Problem(
                    f"unsupported report schema_version {version!r} (this audit reads {_SCHEMA_VERSION})",
                    file=file,
                    field="schema_version",
                    fix="re-run the audit with this version of audit",
                )
            ]
        )
    try:
        return Report.model_validate(data)
    except RecursionError:
        raise InputError(
            [
                Problem(
                    "the report is nested too deeply to be a report.json",
                    file=file,
                    fix="give the report.json written by `audit verify --out`",
                )
            ]
        ) from None
    except ValidationError as err:
        problems = [
            Problem(e["msg"], file=file, field=".".join(str(x) for x in e["loc"]) or None) for e in err.errors()[:10]
        ]
        problems[-1] = Problem(
            problems[-1].message,
            file=file,
            field=problems[-1].field,
            fix="not a report.json of this audit version: re-run `audit verify --out`",
        )
        raise InputError(problems) from None


@dataclass(frozen=True)
class Change:
    key: str
    status: str  # "added" | "removed" | "changed" | "same"
    old: Any = None
    new: Any = None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "status": self.status, "old": self.old, "new": self.new, "notes": list(self.notes)}


@dataclass(frozen=True)
class Comparison:
    old_file: str
    new_file: str
    verdict_old: str
    verdict_new: str
    reason_old: str
    reason_new: str
    claim_changes: tuple[Change, ...]
    cells: tuple[Change, ...]
    findings: tuple[Change, ...]
    options: tuple[Change, ...]
    sources: tuple[Change, ...]
    environment: tuple[Change, ...] = field(default_factory=tuple)

    @property
    def verdict_changed(self) -> bool:
        return self.verdict_old != self.verdict_new

    @property
    def exit_code(self) -> int:
        return 1 if self.verdict_changed else 0

    def to_dict(self) -> dict[str, Any]:
        def changed(xs):
            return [c.to_dict() for c in xs if c.status != "same"]

        return {
            "old": self.old_file,
            "new": self.new_file,
            "verdict": {
                "old": self.verdict_old,
                "new": self.verdict_new,
                "changed": self.verdict_changed,
                "reason_old": self.reason_old,
                "reason_new": self.reason_new,
            },
            "claim": changed(self.claim_changes),
            "cells": changed(self.cells),
            "findings": changed(self.findings),
            "options": changed(self.options),
            "sources": changed(self.sources),
            "environment": changed(self.environment),
            "exit_code": self.exit_code,
        }


def _differs(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
            return False
        return abs(float(a) - float(b)) > _TOL * max(1.0, abs(float(a)), abs(float(b)))
    return a != b


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: obj}


def _dict_changes(old: dict, new: dict) -> tuple[Change, ...]:
    fo, fn = _flatten(old), _flatten(new)
    out = []
    for k in list(dict.fromkeys([*fo, *fn])):
        if k not in fo:
            out.append(Change(k, "added", None, fn[k]))
        elif k not in fn:
            out.append(Change(k, "removed", fo[k], None))
        elif _differs(fo[k], fn[k]):
            out.append(Change(k, "changed", fo[k], fn[k]))
    return tuple(out)


def _cell_key(c) -> str:
    return f"variant={c.variant} budget={c.budget} scoring={c.scoring}"


def _cells(old: Report, new: Report) -> tuple[Change, ...]:
    a = {_cell_key(c): c for c in old.cells}
    b = {_cell_key(c): c for c in new.cells}
    out = []
    for k in list(dict.fromkeys([*a, *b])):
        if k not in b:
            out.append(Change(k, "removed", _cell_view(a[k]), None))
            continue
        if k not in a:
            out.append(Change(k, "added", None, _cell_view(b[k])))
            continue
        ca, cb = a[k], b[k]
        notes = []
        for f in ("delta", "ci_low", "ci_high", "p_value", "n", "baseline", "treatment"):
            if _differs(getattr(ca, f), getattr(cb, f)):
                notes.append(f"{f} {_fmt(getattr(ca, f))} → {_fmt(getattr(cb, f))}")
        for f in ("test", "ci_method", "claimed"):
            if getattr(ca, f) != getattr(cb, f):
                notes.append(f"{f} {getattr(ca, f)} → {getattr(cb, f)}")
        out.append(Change(k, "changed" if notes else "same", _cell_view(ca), _cell_view(cb), tuple(notes)))
    return tuple(out)


def _cell_view(c) -> dict[str, Any]:
    return {
        "delta": c.delta,
        "ci_low": c.ci_low,
        "ci_high": c.ci_high,
        "p_value": c.p_value,
        "n": c.n,
        "claimed": c.claimed,
    }


def _findings(old: Report, new: Report) -> tuple[Change, ...]:
    def grouped(rep: Report) -> dict[str, list]:
        g: dict[str, list] = {}
        for f in rep.findings:
            g.setdefault(f.subject.key(), []).append(f)
        return g

    a, b = grouped(old), grouped(new)
    out = []
    for k in list(dict.fromkeys([*a, *b])):
        fa, fb = a.get(k, []), b.get(k, [])
        for i in range(max(len(fa), len(fb))):
            key = k if max(len(fa), len(fb)) == 1 else f"{k} #{i + 1}"
            x = fa[i] if i < len(fa) else None
            y = fb[i] if i < len(fb) else None
            if y is None:
                out.append(Change(key, "removed", _finding_view(x), None))
            elif x is None:
                out.append(Change(key, "added", None, _finding_view(y)))
            else:
                notes = []
                for attr in ("outcome", "severity", "impact"):
                    if getattr(x, attr) != getattr(y, attr):
                        notes.append(f"{attr} {getattr(x, attr)} → {getattr(y, attr)}")
                ha, hb = _numbers(x), _numbers(y)
                for s in ha:
                    if _differs(ha[s], hb[s]):
                        notes.append(f"{s} {_fmt(ha[s])} → {_fmt(hb[s])}")
                if x.title != y.title and not notes:  # same subject, same numbers, reworded
                    notes.append("title changed")
                out.append(
                    Change(key, "changed" if notes else "same", _finding_view(x), _finding_view(y), tuple(notes))
                )
    return tuple(out)


def _numbers(f) -> dict[str, float | None]:
    """The finding's headline numbers in the order a change lists them: delta, interval, p, rates, change, MDE."""
    h = f.headline.numbers()
    iv = f.interval
    return {
        "delta": h["delta"],
        "ci_low": iv.low if iv is not None else None,
        "ci_high": iv.high if iv is not None else None,
        "p_value": h["p_value"],
        "rate_baseline": h["rate_baseline"],
        "rate_treatment": h["rate_treatment"],
        "change": h["change"],
        "mde": h["mde"],
    }


def _finding_view(f) -> dict[str, Any]:
    return {
        "check": f.check,
        "code": f.code,
        "outcome": f.outcome,
        "severity": f.severity,
        "impact": f.impact,
        "title": f.title,
    }


def _sources(old: Report, new: Report) -> tuple[Change, ...]:
    def keyed(rep: Report) -> dict[str, Any]:
        return {f"{s.arm} budget={s.budget} {Path(s.path).name}": s for s in rep.sources}

    a, b = keyed(old), keyed(new)
    out = []
    for k in list(dict.fromkeys([*a, *b])):
        if k not in b:
            out.append(Change(k, "removed", a[k].sha256, None))
        elif k not in a:
            out.append(Change(k, "added", None, b[k].sha256))
        else:
            notes = []
            if a[k].sha256 != b[k].sha256:
                notes.append(f"sha256 {a[k].sha256[:12]}… → {b[k].sha256[:12]}…")
            if a[k].rows != b[k].rows:
                notes.append(f"rows {a[k].rows} → {b[k].rows}")
            out.append(Change(k, "changed" if notes else "same", a[k].sha256, b[k].sha256, tuple(notes)))
    return tuple(out)


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.4g}"
    return "n/a" if x is None else str(x)


def _options(r: Report) -> dict[str, Any]:
    return {**r.options.model_dump(), "audit_version": r.audit_version, "fail_on": r.gate.fail_on}


def compare(
    old: Report, new: Report, old_file: str = "old", new_file: str = "new", any_claim: bool = False
) -> Comparison:
    """Compare two audits. Raises InputError when they audit different claims (unless ``any_claim``)."""
    ca, cb = old.claim.claim, new.claim.claim
    if not any_claim and (ca.title, ca.metric) != (cb.title, cb.metric):
        raise InputError(
            [
                Problem(
                    f"the reports audit different claims: {ca.title!r} ({ca.metric}) in {old_file} vs "
                    f"{cb.title!r} ({cb.metric}) in {new_file}",
                    file=new_file,
                    field="claim.claim.title",
                    fix="compare two audits of the same claim, or pass --any-claim to compare anyway",
                )
            ]
        )
    return Comparison(
        old_file=old_file,
        new_file=new_file,
        verdict_old=old.verdict,
        verdict_new=new.verdict,
        reason_old=old.verdict_reason,
        reason_new=new.verdict_reason,
        claim_changes=_dict_changes(old.claim_dict(), new.claim_dict()),
        cells=_cells(old, new),
        findings=_findings(old, new),
        options=_dict_changes(_options(old), _options(new)),
        sources=_sources(old, new),
        environment=_dict_changes(dict(old.environment.items()), dict(new.environment.items())),
    )


def render_text(c: Comparison) -> str:
    lines = [f"audit compare: {c.old_file} → {c.new_file}", ""]
    if c.verdict_changed:
        lines += [
            f"verdict CHANGED: {c.verdict_old} → {c.verdict_new}",
            f"  was: {c.reason_old}",
            f"  now: {c.reason_new}",
        ]
    else:
        lines.append(f"verdict unchanged: {c.verdict_new}")
        if c.reason_old != c.reason_new:
            lines += [f"  reason was: {c.reason_old}", f"  reason now: {c.reason_new}"]

    def section(name: str, changes: tuple[Change, ...], show=lambda ch: "") -> None:
        changed = [ch for ch in changes if ch.status != "same"]
        lines.append("")
        same = len(changes) - len(changed)
        lines.append(
            f"{name}: "
            + (f"{len(changed)} change(s)" if changed else "no change")
            + (f" ({same} unchanged)" if same and changed else "")
        )
        for ch in changed:
            sign = {"added": "+", "removed": "-", "changed": "~"}[ch.status]
            extra = "; ".join(ch.notes) if ch.notes else show(ch)
            lines.append(f"  {sign} {ch.key}" + (f": {extra}" if extra else ""))

    def kv(ch: Change) -> str:
        return f"{_fmt(ch.old)} → {_fmt(ch.new)}"

    def finding(ch: Change) -> str:
        f = ch.new or ch.old
        return f"[{f['outcome']}/{f['severity']}] {f['title']}"

    section("claim", c.claim_changes, kv)
    section(
        "cells",
        c.cells,
        lambda ch: "delta {} [{}, {}]".format(*(_fmt((ch.new or ch.old)[k]) for k in ("delta", "ci_low", "ci_high"))),
    )
    section("findings", c.findings, finding)
    section("options", c.options, kv)
    section("sources", c.sources, kv)
    section("environment", c.environment, kv)
    lines.append("")
    lines.append("exit 1: the verdict changed" if c.verdict_changed else "exit 0: same verdict")
    return "\n".join(lines) + "\n"


__all__ = ["load_report", "compare", "render_text", "Comparison", "Change"]
