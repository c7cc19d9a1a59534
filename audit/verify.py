"""verify: claim → records → checks → verdict → report. The one library call behind `audit verify`."""
from __future__ import annotations

import datetime as _dt
import platform
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from audit import __version__
from audit.checks import REGISTRY
from audit.checks._common import Context
from audit.claim import Claim
from audit.errors import AuditError
from audit.findings import VERDICT_EXPLANATION, Finding, Report, clean
from audit.records import Records

SEVERITY_RANK = {"critical": 0, "major": 1, "minor": 2, "info": 3}
VERDICT_EXIT = {"supported": 0, "fragile": 1, "not_reproduced": 1, "inconclusive": 1}


@dataclass(frozen=True)
class Outcome:
    report: Report
    findings: list[Finding]
    records: Records | None


def claimed_scoring(claim: Claim, records: Records | None) -> str | None:
    names = claim.scorings()
    if names:
        return names[0]
    if records is not None and len(records.table):
        return records.scorings()[0]
    return None


def decide(findings: list[Finding]) -> tuple[str, str]:
    """The verdict and the one-sentence reason, from the findings' impacts."""
    def first(impact: str) -> Finding | None:
        cands = [f for f in findings if f.impact == impact]
        return min(cands, key=lambda f: SEVERITY_RANK[f.severity]) if cands else None

    if (f := first("not_reproduced")) is not None:
        return "not_reproduced", f.title
    reproduced = first("reproduced")
    if reproduced is None:
        f = first("inconclusive")
        reason = f.title if f else "No check could establish the claimed gain."
        critical = [g for g in findings if g.outcome == "flag" and g.severity == "critical"]
        if critical:
            reason += f"; and {len(critical)} critical finding(s), first: {critical[0].title}"
        return "inconclusive", reason
    if (f := first("fragile")) is not None:
        return "fragile", f.title
    return "supported", reproduced.title + "; no perturbation removes it"


def run_checks(ctx: Context) -> tuple[list[Finding], list[str]]:
    findings: list[Finding] = []
    ran = []
    for name, spec in REGISTRY.items():
        if spec.needs_samples and ctx.records is None:
            continue
        params = spec.params.model_validate(ctx.claim.checks.get(name) or {})
        findings.extend(spec.run(ctx, params))
        ran.append(name)
    return findings, ran


def collect(claim: Claim, cache=None, progress=None) -> Records | None:
    """The claim's records: replayed logs, a live run on its arms' endpoints, or None (reported numbers only)."""
    if claim.samples is not None:
        from audit.importers import load_records

        return load_records(claim)
    if claim.live:
        from audit.live import run_live

        records, _ = run_live(claim, cache=cache, progress=progress)
        return records
    return None


def verify(claim: Claim, records: Records | None = None, command: str = "", seed: int | None = None,
           resamples: int | None = None, cache=None, progress=None) -> Outcome:
    """Audit a claim. ``records`` come from replayed logs or a live run (collected here when not given)."""
    opts = claim.options
    if records is None:
        records = collect(claim, cache=cache, progress=progress)
    seed = opts.seed if seed is None else seed
    resamples = opts.resamples if resamples is None else resamples
    ctx = Context(claim=claim, records=records, seed=seed, resamples=resamples, level=opts.level, alpha=opts.alpha,
                  power=opts.power, claimed_budget=claim.claimed_budget,
                  claimed_scoring=claimed_scoring(claim, records))
    findings, ran = run_checks(ctx)
    verdict, reason = decide(findings)
    cells = []
    if records is not None:
        for v in records.variants():
            for b in records.budgets():
                for s in records.scorings():
                    c = ctx.cell(b, s, v)
                    if c is None:
                        continue
                    r = c.row()
                    cells.append({k: r[k] for k in ("variant", "budget", "scoring", "n", "baseline", "treatment",
                                                    "delta", "ci_low", "ci_high", "ci_method", "p_value", "test")}
                                 | {"claimed": b == ctx.claimed_budget and s == ctx.claimed_scoring and v == "default"})
    report = Report(
        audit_version=__version__,
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        command=command,
        claim_file=str(claim.path) if claim.path else None,
        claim=clean(claim.model_dump(mode="json", exclude={"path"})),
        verdict=verdict,
        verdict_reason=reason,
        exit_code=VERDICT_EXIT[verdict],
        options={"seed": seed, "resamples": resamples, "level": opts.level, "alpha": opts.alpha, "power": opts.power,
                 "claimed_budget": ctx.claimed_budget, "claimed_scoring": ctx.claimed_scoring,
                 "direction": claim.claim.direction},
        environment=_environment(),
        cells=[clean(c) for c in cells],
        arms=clean(records.settings) if records is not None else {},
        run=clean(records.run) if records is not None else {},
        sources=[clean(s.__dict__) for s in (records.sources if records is not None else ())],
        findings=[f.to_dict() for f in findings],
        checks_run=ran,
    )
    return Outcome(report, findings, records)


def _environment() -> dict:
    env = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("numpy", "scipy", "statsmodels", "pandas", "pydantic", "lm_eval"):
        try:
            env[pkg] = metadata.version(pkg.replace("_", "-"))
        except metadata.PackageNotFoundError:
            pass
    return env


def write_outputs(outcome: Outcome, out_dir: str | Path) -> dict[str, Path]:
    """Write report.json, report.html and summary.md into ``out_dir``; return their paths."""
    from audit.reports import render_html, render_summary

    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AuditError(f"cannot create output folder {out}: {exc.strerror}") from None
    paths = {"json": out / "report.json", "html": out / "report.html", "summary": out / "summary.md"}
    paths["json"].write_text(outcome.report.model_dump_json(indent=2), encoding="utf-8")
    paths["html"].write_text(render_html(outcome.report, outcome.records), encoding="utf-8")
    paths["summary"].write_text(render_summary(outcome.report), encoding="utf-8")
    return paths


__all__ = ["verify", "write_outputs", "decide", "Outcome", "VERDICT_EXPLANATION"]
