"""verify: claim → records → checks → verdict → report. The one library call behind `audit verify`."""

from __future__ import annotations

import datetime as _dt
import functools
import platform
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from audit import __version__, views
from audit.bounds import RESAMPLES_MAX, RESAMPLES_MIN, SEED_MAX
from audit.checks import REGISTRY
from audit.checks._common import Context
from audit.claim import Claim, Sequential, line_of
from audit.errors import AuditError, InputError, Problem
from audit.findings import (
    VERDICT_EXPLANATION,
    Cell,
    Environment,
    Finding,
    Impact,
    Report,
    RunOptions,
    SequentialRun,
    Severity,
    Source,
    Verdict,
    clean,
)
from audit.findings import Outcome
from audit.gate import Gate, evaluate, exit_code
from audit.records import Records
from audit.plan import DEFAULT_VARIANT


@dataclass(frozen=True)
class AuditResult:
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


def decide(
    findings: list[Finding], not_tested: list[str] | tuple[str, ...] = (), tested: list[str] | tuple[str, ...] = ()
) -> tuple[Verdict, str]:
    """The verdict and the one-sentence reason, from the findings' impacts.

    Untrusted input caps first: with an ``untrusted_input`` finding (a trimmed log, samples that disagree with their
    results file, reported numbers the logs materially fail to reproduce) no verdict but ``inconclusive`` is given,
    whatever the other findings say. A ``supported`` reason says what it rests on: ``tested`` and ``not_tested`` name
    the perturbation kinds (budget, scoring, OOD) that were and were not tried."""

    def first(impact: Impact) -> Finding | None:
        cands = [f for f in findings if f.impact == impact]
        return min(cands, key=lambda f: Severity(f.severity).rank) if cands else None

    # A trimmed or edited log neither supports nor refutes: it caps every verdict at inconclusive.
    if (f := first(Impact.untrusted_input)) is not None:
        n = sum(g.impact == Impact.untrusted_input for g in findings)
        more = f" (and {n - 1} more input finding(s))" if n > 1 else ""
        return Verdict.inconclusive, f"{f.title}{more}; the verdict is inconclusive at best until the inputs agree"
    if (f := first(Impact.not_reproduced)) is not None:
        return Verdict.not_reproduced, f.title
    reproduced = first(Impact.reproduced)
    if reproduced is None:
        f = first(Impact.inconclusive)
        reason = f.title if f else "No check could establish the claimed gain."
        critical = [g for g in findings if g.outcome == Outcome.flag and g.severity == Severity.critical]
        if critical:
            reason += f"; and {len(critical)} critical finding(s), first: {critical[0].title}"
        return Verdict.inconclusive, reason
    if (f := first(Impact.fragile)) is not None:
        return Verdict.fragile, f.title
    return Verdict.supported, reproduced.title + "; " + rests_on(tested, not_tested)


def rests_on(tested, not_tested) -> str:
    """What a ``supported`` verdict rests on, in words: which perturbations were tried and which were not."""
    if not not_tested:
        return f"no perturbation removes it (tested: {', '.join(tested)})" if tested else "no perturbation removes it"
    if not tested:
        return "supported at the claimed setting only; not tested: " + ", ".join(not_tested)
    return f"no tested perturbation removes it (tested: {', '.join(tested)}); not tested: " + ", ".join(not_tested)


def perturbation_coverage(ctx: Context) -> tuple[list[str], list[str]]:
    """(tested, not tested): the perturbation kinds of this audit (a larger budget, another scoring, an OOD prompt
    variant), each untested one with why."""
    rec = ctx.records
    if rec is None:
        why = "(no per-item samples: reported numbers only)"
        return [], [f"budget {why}", f"scoring {why}", f"OOD {why}"]
    kinds = {pt.kind for pt in ctx.perturbations()}
    tested, not_tested = [], []
    budgets = rec.budgets()
    if "budget" in kinds:
        tested.append("budget")
    elif len(budgets) <= 1:
        not_tested.append("budget (one budget in the logs)")
    else:
        not_tested.append(f"budget (no budget above the claimed {ctx.claimed_budget} in the logs)")
    if "scoring" in kinds:
        tested.append("scoring")
    elif len(rec.scorings()) <= 1:
        not_tested.append("scoring (one scoring)")
    else:
        not_tested.append("scoring (every other scoring is degenerate)")
    if "variant" in kinds:
        tested.append("OOD")
    else:
        not_tested.append(
            "OOD (none declared)" if len(rec.variants()) <= 1 else "OOD (no variant at the claimed setting)"
        )
    return tested, not_tested


def run_checks(ctx: Context) -> tuple[list[Finding], list[str]]:
    findings: list[Finding] = []
    ran = []
    for name, spec in REGISTRY.items():
        if spec.needs_samples and ctx.records is None:
            continue
        # Validated once, when the claim was read; a check no claim can configure takes its parameters' defaults.
        params = ctx.claim.checks.of(name) if name in type(ctx.claim.checks).model_fields else spec.params()
        findings.extend(spec.run(ctx, params))
        ran.append(name)
    return findings, ran


def collect(claim: Claim, cache=None, progress=None, executor=None) -> Records | None:
    """The claim's records: replayed logs, a live run on its arms' endpoints, or None (reported numbers only). The
    plan (`audit.plan.build_plan`) is built once here and handed to the reader or the runner."""
    if claim.samples is None and not claim.live:
        return None
    from audit.plan import build_plan

    plan = build_plan(claim)
    if claim.samples is not None:
        from audit.importers import load_records

        return load_records(claim, plan=plan)
    from audit.live import run_live

    records, _ = run_live(claim, cache=cache, progress=progress, plan=plan, executor=executor)
    return records


def _cells(ctx: Context, records: Records | None) -> tuple[list[Cell], bool | None]:
    """The report's cells (variant × budget × scoring), and the claimed cell's binary flag (None without one)."""
    cells: list[Cell] = []
    binary = None
    if records is not None:
        for v in records.variants():
            for b in records.budgets():
                for s in records.scorings():
                    c = ctx.cell(b, s, v)
                    if c is None:
                        continue
                    r = c.row()
                    claimed = b == ctx.claimed_budget and s == ctx.claimed_scoring and v == DEFAULT_VARIANT
                    cells.append(
                        Cell(
                            **{
                                k: r[k]
                                for k in (
                                    "variant",
                                    "budget",
                                    "scoring",
                                    "n",
                                    "baseline",
                                    "treatment",
                                    "delta",
                                    "ci_low",
                                    "ci_high",
                                    "ci_method",
                                    "p_value",
                                    "test",
                                )
                            },
                            claimed=claimed,
                        )
                    )
                    if claimed:
                        binary = c.binary
    return cells, binary


def _report_options(ctx: Context, seed: int, resamples: int, margin: float, margin_source: str) -> RunOptions:
    """The options the report records: the run's, the claimed cell, and the margin."""
    claim = ctx.claim
    opts = claim.options
    return RunOptions(
        seed=seed,
        resamples=resamples,
        level=opts.level,
        alpha=opts.alpha,
        power=opts.power,
        claimed_budget=ctx.claimed_budget,
        claimed_scoring=ctx.claimed_scoring,
        direction=claim.claim.direction,
        margin=_finite(margin),
        margin_source=margin_source,
    )


def verify(
    claim: Claim,
    records: Records | None = None,
    command: str = "",
    seed: int | None = None,
    resamples: int | None = None,
    cache=None,
    progress=None,
    gate: Gate | None = None,
    sequential: bool = False,
    stream: bool = False,
    n_max: int | None = None,
    executor=None,
) -> AuditResult:
    """Audit a claim. ``records`` come from replayed logs or a live run (collected here when not given). ``gate``
    (default: fail on every verdict but supported) decides ``exit_code``; it is recorded in the report.

    ``sequential`` (or ``options.sequential`` in the claim): a live claim is generated batch by batch and stops once
    its verdict is settled (`audit.stopping`); replayed records get the "would have stopped after k of n items" line.
    ``stream``: given ``records`` are treated as a live run would meet them (batch by batch, the verdict at the stop),
    which is how the calibration simulates sequential audits. ``n_max`` overrides ``options.sequential.n_max``.
    ``executor``: where a live run's requests go (`audit.generation.ray_executor.RayExecutor`; None: in-process)."""
    opts = claim.options
    seed = opts.seed if seed is None else seed
    resamples = opts.resamples if resamples is None else resamples
    gate = gate if gate is not None else Gate.parse(None)
    _check_run_options(claim, seed, resamples)
    seq = _sequential_options(claim, sequential or stream, n_max)
    seq_run: SequentialRun | None = None
    if seq is not None and records is None and claim.live:
        records, seq_run = _stream_live(claim, seq, seed, resamples, (cache, progress, executor))
    elif records is None:
        records = collect(claim, cache=cache, progress=progress, executor=executor)
    _check_reported_scale(claim, records)
    _check_score_bounds(claim, records)
    if seq is not None and seq_run is None and records is not None:
        if stream:
            records, seq_run = _stream(claim, seq, seed, resamples, records, "live")
        else:
            seq_run = _stream(claim, seq, seed, resamples, records, "replay")[1]
    if records is not None:  # a per-item fact every check and the report read: derived once, with the claim's markers
        rule = claim.checks.truncation
        records = records.with_truncation(rule.think_open, rule.think_close)
    from audit.importers.probes import load_probes

    live_seq = seq_run is not None and seq_run.mode == "live"
    ctx = _context(claim, records, seed, resamples, load_probes(claim), seed if live_seq else None)
    findings, ran = run_checks(ctx)
    tested, not_tested = perturbation_coverage(ctx)
    verdict, reason = decide(findings, not_tested, tested)
    margin, margin_source = ctx.margin_and_source()
    cells, binary = _cells(ctx, records)
    gate_record = evaluate(findings, verdict, gate)
    report = Report(
        audit_version=__version__,
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        command=command,
        claim_file=str(claim.path) if claim.path else None,
        claim=claim,
        verdict=verdict,
        verdict_reason=reason,
        exit_code=exit_code(gate_record),
        gate=gate_record,
        options=_report_options(ctx, seed, resamples, margin, margin_source),
        environment=Environment(**_environment()),
        cells=cells,
        arms=clean(records.settings) if records is not None else {},
        run=clean(records.run) if records is not None else {},
        sources=[Source(**clean(s.__dict__)) for s in (records.sources if records is not None else ())],
        findings=findings,
        checks_run=ran,
        perturbations_tested=tested,
        perturbations_not_tested=not_tested,
        claim_vs_measured=views.claim_vs_measured(claim, cells, findings, opts.level, binary),
        forest=views.forest(cells, findings),
        rate_tables=views.rate_tables(findings),
        sequential=seq_run,
    )
    return AuditResult(report, findings, records)


def _context(claim: Claim, records: Records | None, seed: int, resamples: int, probe_sets=None, draw_seed=None):
    """The context the checks run in; ``draw_seed`` makes every decision anytime-valid (a sequential audit)."""
    opts = claim.options
    return Context(
        claim=claim,
        records=records,
        seed=seed,
        resamples=resamples,
        level=opts.level,
        alpha=opts.alpha,
        power=opts.power,
        claimed_budget=claim.claimed_budget,
        claimed_scoring=claimed_scoring(claim, records),
        probe_sets=probe_sets,
        draw_seed=draw_seed,
    )


def fixed_n_look(claim: Claim, records: Records, k: int, seed: int, resamples: int):
    """The stop rule's decisions on the first ``k`` drawn items read from *fixed-n* intervals at one look: not
    anytime-valid, so never a stop; the calibration's yardstick for how early any rule that stops on these decisions
    could stop (a streamed audit's intervals at ``k`` are wider). Returns an `audit.stopping.Look`."""
    from audit import stopping

    return stopping.look(lambda r: _context(claim, r, seed, resamples), stopping.prefix(records, k, seed), k)


def _sequential_options(claim: Claim, asked: bool, n_max: int | None = None) -> Sequential | None:
    """The claim's ``options.sequential``, or its defaults when asked for on the command line (``n_max`` replacing
    the claim's); refused with clustered items (the betting tests take items as independent draws)."""
    seq = claim.options.sequential
    if seq is None and asked:
        seq = Sequential()
    if seq is not None and n_max is not None:
        seq = seq.model_copy(update={"n_max": n_max})
    if seq is not None and claim.options.cluster_field is not None:
        raise InputError(
            [
                Problem(
                    "a sequential audit tests items as independent draws; with options.cluster_field the items "
                    "share passages or templates",
                    file=_file(claim),
                    line=line_of(claim, ("options", "sequential")) or line_of(claim, ("options", "cluster_field")),
                    field="options.sequential",
                    fix="remove options.sequential (and --sequential) to run the fixed-n audit with cluster-robust "
                    "intervals",
                )
            ]
        )
    return seq


def _stream(
    claim: Claim, seq: Sequential, seed: int, resamples: int, records: Records, mode: str
) -> tuple[Records, SequentialRun]:
    """Look at ``records`` batch by batch in draw order (`audit.stopping`): the records of the last look, and the
    run's record (``mode`` "replay": the verdict stays on every item; "live": on the items of the last look)."""
    from audit import stopping

    n0 = stopping.default_items(records)
    return _looks(claim, seq, seed, resamples, n0, lambda k: stopping.prefix(records, k, seed), mode, {})


def _stream_live(claim: Claim, seq: Sequential, seed: int, resamples: int, aids: tuple):
    """Generate a live claim batch by batch in draw order and stop once its verdict is settled (`audit.stopping`);
    cached generations are reused, so a stopped audit resumed with a larger ``n_max`` continues where it stopped."""
    from audit.generation.cache import GenerationCache
    from audit.live import plan_variants, run_live
    from audit.plan import build_plan

    cache, progress, executor = aids
    plan = build_plan(claim)
    planned = plan_variants(claim, plan)
    n0 = len(planned[0][0].items)
    cache = cache if cache is not None else GenerationCache(None)
    cost: dict = {"requests": 0}

    def records_at(k: int) -> Records:
        rec, st = run_live(
            claim, cache=cache, progress=progress, plan=plan, upto=k, draw_seed=seed, planned=planned, executor=executor
        )
        cost["requests"] += sum(s.requests for s in st.values())
        cost["generations_used"] = sum(s.requests + s.cached + s.derived for s in st.values())
        return rec

    return _looks(claim, seq, seed, resamples, n0, records_at, "live", cost)


def _looks(claim, seq, seed, resamples, n0, records_at, mode, cost) -> tuple[Records, SequentialRun]:
    from audit import stopping

    looks = []
    rec = None
    for k in stopping.schedule(n0, seq.batch, seq.n_max):
        rec = records_at(k)
        looks.append(stopping.look(lambda r: _context(claim, r, seed, resamples, None, seed), rec, k))
        if looks[-1].settled:
            break
    if rec is None or not looks:
        raise InputError([Problem("a sequential audit needs items; the default variant has none", file=_file(claim))])
    last = looks[-1]
    top = min(n0, seq.n_max) if seq.n_max is not None else n0
    reason = last.reason if last.settled else f"no stop before {top} items ({last.reason})"
    run = SequentialRun(
        mode=mode,
        batch=seq.batch,
        seed=seed,
        items_total=n0,
        n_max=top,
        stopped_at=last.items,
        stopped_early=last.items < n0,
        settled=last.settled,
        reason=reason,
        decisions=last.decisions,
        looks=[stopping.look_record(lk) for lk in looks],
        generations=cost,
    )
    return rec, run


def _finite(x: float) -> float | None:
    import math

    return x if isinstance(x, float) and math.isfinite(x) else None


def _check_run_options(claim: Claim, seed, resamples) -> None:
    problems = []
    if isinstance(resamples, bool) or not isinstance(resamples, int) or not RESAMPLES_MIN <= resamples <= RESAMPLES_MAX:
        problems.append(
            Problem(
                "resamples must be an integer from 1000 to 1,000,000",
                file=_file(claim),
                field="resamples",
                value=resamples,
                fix="at least 1000 keeps the bootstrap's Monte Carlo error small; e.g. 10000",
            )
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        problems.append(
            Problem(
                "seed must be an integer from 0 to 2**63 − 1", file=_file(claim), field="seed", value=seed, fix="e.g. 0"
            )
        )
    if problems:
        raise InputError(problems)


def _file(claim: Claim) -> str | None:
    return str(claim.path) if claim.path else None


def _check_reported_scale(claim: Claim, records: Records | None) -> None:
    """Refuse reported numbers that are clearly on another scale than the scores (a delta of 15 beside rates in
    [0, 1]) instead of comparing them: every comparison with them would be meaningless."""
    rep = claim.claim.reported
    unit = records is None or (len(records.table) and bool(records.table["score"].between(0, 1).all()))
    if not unit:
        if problems := _direction_problems(claim):
            raise InputError(problems)
        return
    problems = []
    for field_name, value in (("delta", rep.delta),):
        if value is not None and not -1.0 <= value <= 1.0:
            problems.append(
                Problem(
                    f"the reported {field_name} {value:g} is not a difference of rates in [0, 1]"
                    + (" (the scores in the logs are)" if records is not None else " (the reported rates are)"),
                    file=_file(claim),
                    line=line_of(claim, ("claim", "reported", field_name)),
                    field=f"claim.reported.{field_name}",
                    value=value,
                    fix=f"give it as a fraction: {value / 100:g}, not {value:g} (percentage points)",
                )
            )
    if rep.ci is not None and any(not -1.0 <= v <= 1.0 for v in rep.ci):
        problems.append(
            Problem(
                "the reported CI is not on the scale of a difference of rates in [0, 1]",
                file=_file(claim),
                line=line_of(claim, ("claim", "reported", "ci")),
                field="claim.reported.ci",
                value=list(rep.ci),
                fix=f"give it as fractions: [{rep.ci[0] / 100:g}, {rep.ci[1] / 100:g}]",
            )
        )
    problems += _direction_problems(claim)
    if problems:
        raise InputError(problems)


def _check_score_bounds(claim: Claim, records: Records | None) -> None:
    """A declared ``options.score_bounds`` must hold every score in the records: the bounded-mean test rests on it."""
    bounds = claim.options.score_bounds
    if bounds is None or records is None or not len(records.table):
        return
    import numpy as np
    import pandas as pd

    score = records.table["score"].to_numpy(dtype=float)
    outside = np.flatnonzero((score < bounds[0]) | (score > bounds[1]))
    if len(outside):
        row = records.table.iloc[int(outside[0])]
        raise InputError(
            [
                Problem(
                    f"{len(outside)} score(s) lie outside options.score_bounds [{bounds[0]:g}, {bounds[1]:g}]; "
                    f"the first: "
                    f"{float(score[outside[0]])!r} (item {row['item_id']!r}, {row['arm']}, scoring {row['scoring']!r}, "
                    f"from {row['source']}"
                    f"{'' if row['line'] is None or pd.isna(row['line']) else ':' + str(int(row['line']))})",
                    file=_file(claim),
                    line=line_of(claim, ("options", "score_bounds")),
                    field="options.score_bounds",
                    value=list(bounds),
                    fix="declare the metric's true range, e.g. [0, 100] for chrF or BLEU, or remove "
                    "score_bounds to take [0, 1] widened to the observed scores",
                )
            ]
        )


def _direction_problems(claim: Claim) -> list[Problem]:
    """A reported delta whose sign contradicts ``direction`` is a claim that says two things at once: refused, like a
    delta on another scale, rather than silently skipped (a measured −0.05 was once "supported" beside a claimed
    +0.30 in the wrong direction)."""
    rep, direction = claim.claim.reported, claim.claim.direction
    value, source = rep.delta_or_difference(), rep.delta_source()
    if value is None or value == 0 or (value > 0) == (direction == "greater"):
        return []
    key = "delta" if rep.delta is not None else ("ci" if source and "CI" in source else "treatment")
    says = "treatment scores lower" if value < 0 else "treatment scores higher"
    return [
        Problem(
            f"{source} is {value:+g}: it says the {says}, but claim.direction is {direction!r}"
            f" ({'treatment should score higher' if direction == 'greater' else 'treatment should score lower'})",
            file=_file(claim),
            line=line_of(claim, ("claim", "reported", key)) or line_of(claim, ("claim", "direction")),
            field=f"claim.reported.{key}",
            value=value,
            fix=(
                f"if the claim is that the treatment scores {'lower' if value < 0 else 'higher'}, set claim.direction: "
                f"{'less' if direction == 'greater' else 'greater'}; if the arms are swapped, swap baseline and "
                "treatment; otherwise correct the sign of the reported numbers"
            ),
        )
    ]


@functools.lru_cache(maxsize=1)
def _environment_cached() -> tuple:
    return tuple(_environment_uncached().items())


def _environment() -> dict:
    return dict(_environment_cached())


def _environment_uncached() -> dict:
    env = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("numpy", "scipy", "statsmodels", "pandas", "pydantic", "lm_eval"):
        try:
            env[pkg] = metadata.version(pkg.replace("_", "-"))
        except metadata.PackageNotFoundError:
            pass
    return env


def write_outputs(outcome: AuditResult, out_dir: str | Path) -> dict[str, Path]:
    """Write report.json, report.html and summary.md into ``out_dir``; return their paths."""
    from audit.reports import render_html, render_summary

    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AuditError(f"cannot create output folder {out}: {exc.strerror}") from None
    paths = {"json": out / "report.json", "html": out / "report.html", "summary": out / "summary.md"}
    paths["json"].write_text(outcome.report.dump_json(), encoding="utf-8")
    # The reproduce command names the --out folder as given (relative to the claim file), never this machine's path.
    paths["html"].write_text(render_html(outcome.report, outcome.records, out=out_dir), encoding="utf-8")
    paths["summary"].write_text(render_summary(outcome.report, out=out_dir), encoding="utf-8")
    return paths


__all__ = ["verify", "write_outputs", "decide", "AuditResult", "VERDICT_EXPLANATION"]
