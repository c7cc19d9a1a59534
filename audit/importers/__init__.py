"""Importers: turn replayed sample logs into :class:`audit.records.Records`.

:func:`load_records` reads every file a claim names, reports every problem at once (file, line, fix) and validates
that the runs can be paired: the same items in both arms, the same prompt within an arm across budgets, and logs
that were generated at the budget they are filed under.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from audit.claim import Claim, Samples, claimed_scoring_problem, explain_no_match, resolve_paths
from audit.errors import InputError, Problem
from audit.importers.jsonl import read_jsonl
from audit.importers.lmeval import (
    find_results,
    published_numbers,
    read_results,
    read_samples,
    sample_numbers,
    sha256_of,
    task_of,
)
from audit.plan import Plan, build_plan
from audit.records import ARMS, DEFAULT_VARIANT, Records, LogSource, build_records
from audit.scoring import SCORERS, resolve
from audit.scoring.resolve import logged_spec


def load_records(claim: Claim, plan: Plan | None = None) -> Records:
    """Read the claim's sample logs into Records, or raise :class:`InputError` with every problem found. ``plan``:
    the claim's plan when the caller has built it (`audit.verify.collect`), else built here."""
    samples = _check_replayable(claim)
    fmt = samples.format
    plan = plan if plan is not None else build_plan(claim)
    requested = list(plan.scorings)
    frames, sources, settings, where = _read_runs(claim, samples, plan)
    table = pd.concat(frames, ignore_index=True)
    trap = claimed_scoring_problem(claim, lambda name: _logs_carry(table, fmt, name))
    if trap is not None:
        raise InputError([trap])
    if samples.target_regex:
        probs = apply_target_regex(table, samples.target_regex, str(claim.path))
        if probs:
            raise InputError(probs)
    scoring_notes: dict = {}
    table, probs = apply_scorings(table, requested, fmt, str(claim.path), claim.scorers, scoring_notes)
    if probs:  # a scoring that could not be applied leaves no table to check further
        raise InputError(probs)
    per_sample: pd.DataFrame | None = None
    reductions: dict[str, Any] = {}
    if samples.reduce is not None:
        from audit.importers.reduce import reduce_samples

        table, per_sample, reductions, probs = reduce_samples(table, {arm: samples.reduction(arm) for arm in ARMS})
        if probs:
            raise InputError([dataclasses.replace(p, file=str(claim.path)) for p in probs])
    problems = list(_hash_problems(table))
    if claim.options.cluster_field and table["cluster"].isna().any():
        r = table[table["cluster"].isna()].iloc[0]
        problems.append(
            Problem(
                f"options.cluster_field {claim.options.cluster_field!r} is missing on "
                f"{int(table['cluster'].isna().sum())} row(s)",
                file=str(r["source"]),
                line=int(r["line"]),
                fix="give every item its cluster (lm-eval: a key of doc; jsonl: a top-level key)",
            )
        )
    if problems:
        raise InputError(problems)
    return build_records(
        [table], sources, settings, where, per_sample=per_sample, reductions=reductions, scoring_notes=scoring_notes
    )


def _check_replayable(claim: Claim) -> Samples:
    """The claim's samples section; refuse a claim with no per-sample logs to replay (no samples:, or a
    results-only claim)."""
    if claim.samples is None:
        raise InputError(
            [
                Problem(
                    "the claim has no samples: section",
                    file=str(claim.path),
                    fix="add samples: with per-arm logs, or audit the reported numbers only",
                )
            ]
        )
    if claim.samples.format == "lm-eval-results":  # load_claim reads results files into reported counts, clears samples
        raise InputError(
            [
                Problem(
                    "a results-only claim (samples.format: lm-eval-results) has no per-sample logs to replay",
                    file=str(claim.path),
                    field="samples.format",
                    fix="load the claim with audit.claim.load_claim (check_files=True), which reads "
                    "the results files into claim.reported",
                )
            ]
        )
    return claim.samples


def _read_runs(
    claim: Claim, samples: Samples, plan: Plan
) -> tuple[list[pd.DataFrame], list[LogSource], dict[str, dict], dict]:
    """Every run's logs read by the format's importer: (frames, sources, settings, where each cell was read from),
    or InputError."""
    importer = IMPORTERS[samples.format]
    problems: list[Problem] = []
    frames: list[pd.DataFrame] = []
    sources: list[LogSource] = []
    settings: dict[str, dict] = {a: {} for a in ARMS}
    where: dict[tuple, str] = {}
    matched = {run: resolve_paths(claim, run.logs or "") for run in plan.runs}  # each glob once
    prefetched = (
        importer.prefetch(claim, {run: importer.select(files) for run, files in matched.items()})
        if importer.prefetch is not None
        else {}
    )
    for run in plan.runs:
        variant, arm, budget, pattern, field_path = run.variant, run.arm, run.budget, run.logs, run.field or ""
        files = importer.select(matched[run])
        if not files:
            problems.append(_no_files_problem(claim, pattern, field_path, importer, matched[run]))
            continue
        where[(arm, variant, budget)] = ", ".join(str(f) for f in files)
        got = prefetched.get(run)
        df, probs, st = got if got is not None else importer.read(claim, files, arm, budget, variant)
        problems.extend(probs)
        problems.extend(_file_problems(df, files, probs, pattern, field_path, str(claim.path)))
        if variant == DEFAULT_VARIANT:
            settings[arm][budget] = st
        if df is not None and len(df):
            frames.append(df)
            for f in files:
                sources.append(LogSource(arm, budget, str(f), sha256_of(f), int((df["source"] == str(f)).sum())))
    if problems:
        raise InputError(problems)
    if not frames:  # pragma: no cover - every empty file is reported above
        raise InputError(
            [
                Problem(
                    "the sample logs hold no records",
                    file=str(claim.path),
                    field="samples",
                    fix="point samples: at the runs' sample logs",
                )
            ]
        )
    return frames, sources, settings, where


def _logs_carry(table: pd.DataFrame, fmt: str, name: str) -> bool:
    """Whether the logs read carry a scoring called ``name`` (a generic export's scores.<name>, an inspect scorer)."""
    if _rows_per_scoring(fmt):
        return bool((table["scoring"] == name).any())
    return any(name in s for s in table["scores"])


def _rows_per_scoring(fmt: str) -> bool:
    importer = IMPORTERS.get(fmt)
    return importer is not None and importer.rows_per_scoring


def _no_files_problem(claim: Claim, pattern, field_path: str, importer: Importer, matched: list[Path]) -> Problem:
    """Why a run's pattern gave no file to read: nothing matched, or only files of another kind."""
    msg, fix = explain_no_match(claim, pattern)
    if matched and importer.no_match is not None:
        msg, fix = importer.no_match(str(pattern))
    return Problem(msg, file=str(claim.path), field=field_path, fix=fix)


def apply_target_regex(table: pd.DataFrame, regex: str, claim_file: str) -> list[Problem]:
    """Replace each target by the answer inside it (``samples.target_regex``): the last match's first group, else
    the whole match. Every target it does not match is a problem (one message, the first line named)."""
    import re

    pattern = re.compile(regex)

    def answer(t):
        if not isinstance(t, str):
            return t
        ms = list(pattern.finditer(t))
        if not ms:
            return _NO_MATCH
        m = ms[-1]
        return m.group(1) if pattern.groups else m.group(0)

    new = [answer(t) for t in table["target"]]
    bad = [i for i, v in enumerate(new) if v is _NO_MATCH]
    if bad:
        r = table.iloc[bad[0]]
        shown = str(r["target"])
        shown = shown if len(shown) <= 120 else "…" + shown[-120:]
        return [
            Problem(
                f"samples.target_regex {regex!r} matches none of {len(bad)} target(s) (this one: {shown!r})",
                file=str(r["source"]),
                line=_line(r["line"]),
                field="samples.target_regex",
                fix="write a regex that matches the final answer of every target (its first group is the "
                "answer), e.g. '####\\s*(.+?)\\s*$'",
            )
        ]
    table["target"] = new
    return []


_NO_MATCH = object()


def _file_problems(
    df: pd.DataFrame | None, files: list[Path], probs: list[Problem], pattern, field_path: str, claim_file: str
) -> list[Problem]:
    """A file that gave no sample line at all, and a pattern whose files repeat each other's items (a glob that
    matches two runs, e.g. runs/base_*/ over base_16 and base_64)."""
    out: list[Problem] = []
    counts = df["source"].value_counts() if df is not None and len(df) else pd.Series(dtype=int)
    bad_files = {p.file for p in probs}
    for f in files:
        if counts.get(str(f), 0) == 0 and str(f) not in bad_files:
            out.append(
                Problem(
                    "the log has no sample lines (the file is empty or blank)",
                    file=str(f),
                    fix=f"point {field_path} at the run's sample log, or re-run the evaluation with per-sample logging",
                )
            )
    if df is not None and len(df) and len(files) > 1:
        keys = ["item_id", "scoring"] if "scoring" in df.columns else ["item_id"]
        per_item = df.groupby(keys, sort=False)["source"].nunique()
        shared = per_item[per_item > 1]
        if len(shared):
            key = shared.index[0]
            item = key[0] if isinstance(key, tuple) else key
            holders = sorted(df.loc[df["item_id"] == item, "source"].unique())
            out.append(
                Problem(
                    f"{pattern!r} matches {len(files)} files that hold the same items (item {item!r} is in "
                    f"{holders[0]} and {holders[1]}; {len(shared)} item(s) repeat): the pattern probably matches "
                    "more than one run",
                    file=claim_file,
                    field=field_path,
                    fix="narrow the glob to one run's folder (one budget, one arm), e.g. runs/base_16/*.jsonl",
                )
            )
    return out


PARALLEL_MIN_BYTES = 32 << 20
"""Replayed lm-eval logs larger than this in all are read by up to one process per core (Linux: forked workers)."""


def _read_lmeval_in_parallel(claim: Claim, files_by_run: dict) -> dict:
    """Large replays: each run's lm-eval samples read in a forked worker process (the per-line JSON work is CPU
    bound). Returns {run: (frame, problems, settings)} — exactly what :func:`_read_lmeval` returns — or {} when the
    logs are small, the machine has one core, fewer than two cores are idle (:func:`_idle_cores`; a worker on a busy
    core only adds its start and the transfer of its table), fork is unavailable, or a worker fails (the caller then
    reads in-process, so any error is reported as it would be anyway). ``AUDIT_READ_WORKERS=N`` caps the workers at N
    whatever the load (1: none)."""
    import multiprocessing
    import os
    import threading
    from concurrent.futures import ProcessPoolExecutor

    # Forking a process that runs other Python threads can copy a lock mid-use: only a single-threaded caller
    # forks. AUDIT_READ_WORKERS=1 turns the workers off.
    if threading.active_count() > 1 or os.environ.get("AUDIT_READ_WORKERS", "").strip() in ("0", "1"):
        return {}

    jobs = [(run, files) for run, files in files_by_run.items() if files]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        size = sum(f.stat().st_size for _, files in jobs for f in files)
    except OSError:
        return {}
    workers = os.environ.get("AUDIT_READ_WORKERS", "").strip()
    cores = min(cores, int(workers)) if workers.isdigit() else cores
    if len(jobs) < 2 or cores < 2 or size < PARALLEL_MIN_BYTES or "fork" not in multiprocessing.get_all_start_methods():
        return {}
    if not workers.isdigit():
        idle = _idle_cores()
        if idle is not None:
            cores = min(cores, int(idle + 0.5))
            if cores < 2:
                return {}
    try:
        with ProcessPoolExecutor(
            max_workers=min(cores, len(jobs)), mp_context=multiprocessing.get_context("fork")
        ) as pool:
            futures = {
                run: pool.submit(_read_lmeval, claim, files, run.arm, run.budget, run.variant) for run, files in jobs
            }
            return {run: fut.result() for run, fut in futures.items()}
    except Exception:  # noqa: BLE001 - a worker that died or could not pickle: read in-process instead
        return {}


def _idle_cores(interval: float = 0.05) -> float | None:
    """How many CPUs were idle during the next ``interval`` seconds (Linux: the idle and iowait time of /proc/stat);
    None where that cannot be read. On a machine other work keeps busy, forked readers only share its cores (and with
    the scheduler's per-session groups, the cores of this session's share)."""
    import time

    def sample() -> tuple[int, int, int]:
        with open("/proc/stat", "rb") as fh:
            lines = fh.read().splitlines()
        total = [int(x) for x in lines[0].split()[1:9]]  # user nice system idle iowait irq softirq steal
        cpus = sum(1 for line in lines[1:] if line.startswith(b"cpu"))
        return total[3] + total[4], sum(total), cpus

    try:
        idle0, total0, cpus = sample()
        time.sleep(interval)
        idle1, total1, _ = sample()
    except (OSError, ValueError, IndexError):
        return None
    if total1 <= total0 or cpus < 1:
        return None
    return (idle1 - idle0) / (total1 - total0) * cpus


def _read_lmeval(
    claim: Claim, files: list[Path], arm: str, budget: int | None, variant: str = DEFAULT_VARIANT
) -> Frame:
    problems: list[Problem] = []
    tasks = sorted({task_of(f) for f in files})
    if len(tasks) > 1:
        return (
            None,
            [
                Problem(
                    f"the pattern for {arm} at budget {budget} matches samples of several tasks: {tasks}",
                    file=str(claim.path),
                    field=f"samples.{arm}.{budget}",
                    fix="narrow the glob to one task, e.g. samples_<task>_*.jsonl",
                )
            ],
            {},
        )
    task = tasks[0]
    try:
        results_path = find_results(files[0])
    except InputError as exc:  # several runs in one folder and none of them this one's: named, with the others
        return None, list(exc.problems), {}
    # Without a results file the task name is derived from the file name: a guess the settings check must not compare.
    st: dict = {"task": task, "format": "lm-eval", **({} if results_path else {"guessed": ["task"]})}
    filter_order = None
    if results_path is not None:
        st.update(read_results(results_path, task))
        filter_order = st.get("filter_list") or None
    frames = []
    for f in files:
        df, probs = read_samples(f, arm, budget, claim.claim.metric, filter_order, variant, claim.options.cluster_field)
        problems.extend(probs)
        frames.append(df)
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    # A log filed under budget B must have been generated at B; otherwise every budget comparison is wrong.
    declared = {v for v in df.get("line_max_gen_toks", pd.Series(dtype=object)).dropna().unique()}
    gk = st.get("generation_kwargs") or {}
    if not declared and isinstance(gk, dict) and gk.get("max_gen_toks") is not None:
        declared = {gk["max_gen_toks"]}
    declared_ints = {int(v) for v in declared if str(v).lstrip("-").isdigit()}
    if declared_ints and declared_ints != {budget}:
        problems.append(
            Problem(
                f"logs filed under budget {budget} were generated with max_gen_toks={sorted(declared_ints)}",
                file=str(files[0]),
                field=f"samples.{arm}.{budget}",
                fix="file each log under the budget it was generated with (the key in samples.<arm> is max_gen_toks)",
            )
        )
    if declared_ints:
        st["max_gen_toks"] = sorted(declared_ints)[0]
    # What each file says, for the log_integrity check (samples vs their results file); "files" is bookkeeping the
    # settings check does not compare between arms.
    st["files"] = {str(f): sample_numbers(df, f, claim.claim.metric) for f in files if len(df)}
    if results_path is not None:
        st["files"][str(results_path)] = published_numbers(results_path, task)
    return df.drop(columns=["line_max_gen_toks"], errors="ignore"), problems, st


def _read_inspect(
    claim: Claim, files: list[Path], arm: str, budget: int | None, variant: str = DEFAULT_VARIANT
) -> Frame:
    from audit.importers.inspect import read_inspect

    samples = _check_replayable(claim)
    frames: list[pd.DataFrame] = []
    problems: list[Problem] = []
    st: dict[str, Any] = {}
    for f in files:
        df, probs, s = read_inspect(
            f, arm, budget, variant, samples.epoch, claim.options.cluster_field, all_epochs=samples.reduce is not None
        )
        frames.append(df)
        problems.extend(probs)
        st = st or s
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return df, problems, {**st, "files": [str(f) for f in files]}


def _read_generic(
    files: list[Path],
    arm: str,
    budget: int | None,
    variant: str = DEFAULT_VARIANT,
    cluster_field: str | None = None,
    fmt: str = "jsonl",
    fields: dict | None = None,
    several: bool = False,
) -> Frame:
    from audit.importers.tabular import read_tabular

    frames, problems = [], []
    for f in files:
        if fmt == "jsonl" and not fields and not several and f.suffix.lower() not in (".gz", ".zip"):
            df, probs = read_jsonl(f, arm, budget, variant, cluster_field)
        else:
            df, probs = read_tabular(f, fmt, fields or {}, arm, budget, variant, cluster_field, several=several)
        frames.append(df)
        problems.extend(probs)
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return df, problems, {"format": fmt, "files": [str(f) for f in files]}


Frame = tuple[pd.DataFrame | None, list[Problem], dict[str, Any]]
"""What an importer returns for one run: its rows (the columns of `audit.records.COLUMNS`; None when the run cannot
be read at all), the problems found (each naming its file and line) and the run's settings as the logs state them."""


@dataclass(frozen=True)
class Importer:
    """One log format (``samples.format``): how its files are picked and read. Adding a format is adding one of
    these to `IMPORTERS` (CONTRIBUTING.md, "A log format").

    ``read(claim, files, arm, budget, variant)`` reads one run's files. ``select`` keeps the matched files this
    format reads (default: all). ``rows_per_scoring``: the logs hold one row per item × scoring (lm-eval filters,
    inspect scorers); otherwise one row per item with its logged scores in a ``scores`` dict. ``no_match(pattern)``
    says why matched files are not this format's (message, fix). ``prefetch(claim, {run: files})`` may read every
    run up front (lm-eval: forked readers on big replays) and return {run: frame} for those it read."""

    name: str
    read: Callable[[Claim, list[Path], str, int | None, str], Frame]
    select: Callable[[list[Path]], list[Path]] = list
    rows_per_scoring: bool = False
    no_match: Callable[[str], tuple[str, str]] | None = None
    prefetch: Callable[[Claim, dict], dict] | None = None


IMPORTERS: dict[str, Importer] = {}
"""``samples.format`` → its importer (lm-eval-results is not here: load_claim reads results files as reported
numbers)."""


def register(importer: Importer) -> Importer:
    """Add a log format (a name taken is an error)."""
    if importer.name in IMPORTERS:
        raise ValueError(f"a log format is already named {importer.name!r}")
    IMPORTERS[importer.name] = importer
    return importer


def _jsonl_samples(files: list[Path]) -> list[Path]:
    return [f for f in files if f.suffix == ".jsonl"]


def _inspect_logs(files: list[Path]) -> list[Path]:
    from audit.importers.inspect import SUFFIXES, require_inspect

    require_inspect()
    return [f for f in files if f.suffix.lower() in SUFFIXES]


def _generic(fmt: str) -> Importer:
    """The importer of a generic export (jsonl, json, csv, parquet): one row per item, fields mapped by the claim."""

    def read(claim: Claim, files: list[Path], arm: str, budget: int | None, variant: str) -> Frame:
        samples = _check_replayable(claim)
        return _read_generic(
            files,
            arm,
            budget,
            variant,
            claim.options.cluster_field,
            fmt=fmt,
            fields=samples.fields,
            several=samples.reduce is not None,
        )

    return Importer(fmt, read)


register(
    Importer(
        "lm-eval",
        _read_lmeval,
        select=_jsonl_samples,
        rows_per_scoring=True,
        prefetch=_read_lmeval_in_parallel,
        no_match=lambda pattern: (
            f"{pattern!r} matches no .jsonl file (lm-eval writes samples_<task>_<date>.jsonl)",
            "point the pattern at the samples_*.jsonl files, or set samples.format: jsonl",
        ),
    )
)
register(
    Importer(
        "inspect",
        _read_inspect,
        select=_inspect_logs,
        rows_per_scoring=True,
        no_match=lambda pattern: (
            f"{pattern!r} matches no .eval or .json file (inspect writes <date>_<task>_<id>.eval)",
            "point the pattern at the run's inspect log",
        ),
    )
)
for _fmt in ("jsonl", "json", "csv", "parquet"):
    register(_generic(_fmt))


def apply_scorings(
    table: pd.DataFrame,
    requested: list[str],
    fmt: str,
    claim_file: str,
    defined: dict | None = None,
    notes: dict | None = None,
):
    """Keep one row per requested scoring: from the logs when they carry it, else re-scored by a built-in scorer.
    ``notes`` (a dict, filled in place) receives what a scorer noted while re-scoring (:func:`_rescored`)."""
    if not _rows_per_scoring(fmt):  # lm-eval and inspect logs hold one row per item × scoring already
        return _score_generic(table, requested, claim_file, defined, notes)
    return _score_scoring_rows(table, requested, claim_file, defined, notes)


def _score_generic(
    table: pd.DataFrame, requested: list[str], claim_file: str, defined: dict | None, notes: dict | None
) -> tuple[pd.DataFrame, list[Problem]]:
    """:func:`apply_scorings` for generic exports (one row per item, its logged scores in ``scores``)."""
    problems: list[Problem] = []
    logged = sorted({k for s in table["scores"] for k in s})
    names = requested or logged or ["exact"]
    parts = []
    for name in names:
        part = _generic_part(table.copy(), name, logged, claim_file, defined, notes, problems)
        if part is None:
            continue
        part["scoring"] = name
        parts.append(part)
    table = pd.concat(parts, ignore_index=True) if parts else table.iloc[:0]
    return table.drop(columns=["scores", "target_kind"], errors="ignore"), problems


def _generic_part(
    part: pd.DataFrame,
    name: str,
    logged: list[str],
    claim_file: str,
    defined: dict | None,
    notes: dict | None,
    problems: list[Problem],
) -> pd.DataFrame | None:
    """One scoring of a generic export, its ``score`` column set (None, problems added, when it cannot be)."""
    if name in logged:
        vals = part["scores"].map(lambda s: s.get(name))
        missing = part[vals.isna()]
        if len(missing):
            r = missing.iloc[0]
            problems.append(
                Problem(
                    f"scoring {name!r} is missing on {len(missing)} line(s)",
                    file=r["source"],
                    line=int(r["line"]),
                    fix=f"give scores.{name} on every line",
                )
            )
        part["score"] = pd.to_numeric(vals, errors="coerce")
    elif logged_spec(name, defined) is not None:
        probs = _score_logged(part, name, logged_spec(name, defined))
        if probs:
            problems.extend(probs)
            return None
    elif resolve(name, defined) is not None:
        if part["target"].isna().any():
            missing = part[part["target"].isna()]
            r = missing.iloc[0]
            problems.append(
                Problem(
                    f"scoring {name!r} compares the output with a target, and {len(missing)} line(s) have none "
                    "(no 'target' key, or null)",
                    file=str(r["source"]),
                    line=_line(r["line"]),
                    field="target",
                    fix=f"add target to every line, or give scores.{name} on every line so no re-scoring is needed",
                )
            )
            return None
        if (
            "target_kind" in part.columns
            and not _takes_objects(name, defined)
            and (part["target_kind"] == "object").any()
        ):
            r = part[part["target_kind"] == "object"].iloc[0]
            problems.append(
                Problem(
                    f"scoring {name!r} compares text, but the target on this line is a JSON object",
                    file=str(r["source"]),
                    line=_line(r["line"]),
                    field="target",
                    fix="give the reference answer as a string; object targets ({prompt, test, entry_point}) "
                    "are for code_exec scorers only",
                )
            )
            return None
        fn = resolve(name, defined)
        part["score"] = _rescored(part, fn, name, notes)
        _set_extraction(part, name, defined)
    else:
        problems.append(_unknown_scoring(name, logged + list(defined or {}), claim_file))
        return None
    return part


def _score_scoring_rows(
    table: pd.DataFrame, requested: list[str], claim_file: str, defined: dict | None, notes: dict | None
) -> tuple[pd.DataFrame, list[Problem]]:
    """:func:`apply_scorings` for lm-eval and inspect logs (one row per item × logged scoring already)."""
    problems: list[Problem] = []
    scoring = table["scoring"]
    # The scorings in first-seen order; unique() keeps that order and does not walk the column value by value.
    logged = list(dict.fromkeys(scoring)) if scoring.isna().any() else scoring.unique().tolist()
    names = requested or logged
    if logged and all(name in logged for name in names):  # all in the logs: pick their rows in one take
        rows = [np.flatnonzero((scoring == name).to_numpy(dtype=bool, na_value=False)) for name in names]
        return _take_rows(table, np.concatenate(rows)), problems
    parts = []
    base = table[scoring == logged[0]]
    for name in names:
        if name in logged:
            parts.append(table[scoring == name])
        elif logged_spec(name, defined) is not None:
            part = base.copy()
            probs = _score_logged(part, name, logged_spec(name, defined))
            if probs:
                problems.extend(probs)
                continue
            part["scoring"] = name
            parts.append(part)
        elif resolve(name, defined) is not None:
            part = _rescored_rows(base, name, defined, notes, problems)
            if part is not None:
                parts.append(part)
        else:
            problems.append(_unknown_scoring(name, logged + list(defined or {}), claim_file))
    return pd.concat(parts, ignore_index=True) if parts else table.iloc[:0], problems


def _rescored_rows(
    base: pd.DataFrame, name: str, defined: dict | None, notes: dict | None, problems: list[Problem]
) -> pd.DataFrame | None:
    """The first logged scoring's rows re-scored by ``name`` (None, a problem added, if a line lacks text or target)."""
    fn = resolve(name, defined)
    part = base.copy()
    lacking = part[part["target"].isna() | part["text"].isna()]
    if len(lacking):
        r = lacking.iloc[0]
        what = "target" if r["target"] is None or pd.isna(r["target"]) else "resps"
        problems.append(
            Problem(
                f"scoring {name!r} re-scores the logged outputs, but {len(lacking)} line(s) lack a text "
                f"{'target' if what == 'target' else 'response'} ('{what}' missing, null or not a string)",
                file=str(r["source"]),
                line=_line(r["line"]),
                field=what,
                fix="re-score only logs that carry the generated text and a string target, or use a scoring "
                "the logs already hold",
            )
        )
        return None
    part["score"] = _rescored(part, fn, name, notes)
    part["scoring"] = name
    _set_extraction(part, name, defined)
    return part


def _take_rows(table: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """``table.take(rows).reset_index(drop=True)``. Logs write each filter's lines together, so ``rows`` is a few
    long runs of consecutive rows: those are sliced (no copy) and concatenated, and each text column's pieces then
    copied once into one array (a block copy, where a take gathers string by string; one array, as the take gives,
    so that later filters do not walk many pieces)."""
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    if len(rows) == 0 or len(breaks) >= _MAX_SLICES:  # interleaved filters: one take
        return table.take(rows).reset_index(drop=True)
    starts, ends = np.concatenate([[0], breaks]), np.concatenate([breaks, [len(rows)]])
    out = pd.concat([table.iloc[rows[a] : rows[b - 1] + 1] for a, b in zip(starts, ends)], ignore_index=True)
    for c in out.columns:
        if isinstance(out[c].dtype, pd.StringDtype) and out[c].dtype.storage == "pyarrow":
            import pyarrow as pa

            pieces = pa.array(out[c].array)
            if isinstance(pieces, pa.ChunkedArray) and pieces.num_chunks > 1:
                out[c] = pd.array(pieces.combine_chunks(), dtype=out[c].dtype)
    return out


_MAX_SLICES = 256
"""More runs of consecutive rows than this (the filters' lines interleaved): one take instead of slices."""


def _rescored(part: pd.DataFrame, fn, name: str, notes: dict | None) -> list[float]:
    """``fn`` over the part's outputs and targets. A code_exec scorer leaves a note per call (``fn.last_note``):
    outputs whose tests could not be split from the program (scored 0 whatever they compute) are counted into
    ``notes[name]["unsplittable"]`` per arm × variant × budget, with the reasons, for the scoring check to report."""
    if not hasattr(fn, "last_note"):
        return [fn(o, t) for o, t in zip(part["text"], part["target"])]
    from collections import Counter

    scores: list[float] = []
    found: dict[tuple, Counter] = {}
    cells = list(zip(part["arm"], part["variant"], part["budget"]))
    for cell, o, t in zip(cells, part["text"], part["target"]):
        scores.append(fn(o, t))
        note = fn.last_note or ""
        if note.startswith("unsplittable"):
            found.setdefault(cell, Counter())[note.split(":", 1)[-1].strip()[:120]] += 1
    if found and notes is not None:
        size = Counter(cells)
        notes.setdefault(name, {})["unsplittable"] = [
            {
                "arm": arm,
                "variant": variant,
                "budget": _int_or(budget),
                "outputs": sum(c.values()),
                "of": size[(arm, variant, budget)],
                "reasons": dict(c.most_common(5)),
            }
            for (arm, variant, budget), c in sorted(found.items(), key=lambda kv: tuple(map(str, kv[0])))
        ]
    return scores


def _int_or(x):
    try:
        return int(x)
    except (TypeError, ValueError):
        return x


def _set_extraction(part: pd.DataFrame, name: str, defined: dict | None) -> None:
    """The answer a re-scoring extracted (``extracted``) and whether there was one (``answered``: 1/0), for the
    scorers that extract (claim-defined regex, ``kind: extract`` and ``kind: answer`` scorers); None / NaN for the
    others, which compare the whole output."""
    from audit.scoring.resolve import extractor_of

    extract = extractor_of(name, defined)
    if extract is None:
        part["extracted"] = None
        part["answered"] = float("nan")
        return
    got = [extract(o) for o in part["text"]]
    part["extracted"] = got
    part["answered"] = [0.0 if g is None else 1.0 for g in got]


def _score_logged(part: pd.DataFrame, name: str, spec) -> list[Problem]:
    """Score ``part`` in place by a ``kind: logged`` scorer: the logged prediction (``extracted``) compared with the
    target, or a logged score mapped from its range onto [0, 1]. Returns the problems that prevent it."""
    if spec.field == "extracted":
        return _score_logged_extracted(part, name, spec)
    return _score_logged_value(part, name, spec)


def _score_logged_extracted(part: pd.DataFrame, name: str, spec) -> list[Problem]:
    """Score ``part`` in place by comparing the logged prediction (``extracted``) with the target."""
    from audit.importers.jsonl import NO_ANSWER
    from audit.scoring.answers import compare

    if "extracted" not in part.columns or part["extracted"].isna().all():
        r = part.iloc[0] if len(part) else None
        return [
            Problem(
                f"scoring {name!r} compares the logged prediction (extracted) with the target, but the "
                "logs carry no extracted answer",
                file=str(r["source"]) if r is not None else None,
                field=f"scorers.{name}.field",
                fix="map samples.fields.extracted to the record key that holds the authors' prediction "
                "(e.g. extracted: pred)",
            )
        ]
    lacking = part[part["target"].isna()]
    if len(lacking):
        r = lacking.iloc[0]
        return [
            Problem(
                f"scoring {name!r} compares the logged prediction with the target, and {len(lacking)} "
                "line(s) have no target",
                file=str(r["source"]),
                line=_line(r["line"]),
                field="target",
                fix="map samples.fields.target to the gold answer",
            )
        ]

    def pred(x):
        if x is None or (isinstance(x, float) and np.isnan(x)):
            return None
        x = str(x)
        return None if x.strip() in NO_ANSWER else x

    preds = [pred(x) for x in part["extracted"]]
    part["score"] = [compare(spec.compare, a, t) for a, t in zip(preds, part["target"])]
    part["answered"] = [0.0 if a is None else 1.0 for a in preds]
    return []


def _score_logged_value(part: pd.DataFrame, name: str, spec) -> list[Problem]:
    """Score ``part`` in place by a logged score mapped from its range onto [0, 1]."""
    key = spec.score_name
    vals = (
        part["scores"].map(lambda s: s.get(key) if isinstance(s, dict) else None)
        if "scores" in part.columns
        else pd.Series([None] * len(part), index=part.index)
    )
    vals = pd.to_numeric(vals, errors="coerce")
    missing = part[vals.isna()]
    if len(missing):
        r = missing.iloc[0]
        return [
            Problem(
                f"scoring {name!r} reads the logged score {key!r}, which is missing on {len(missing)} line(s)",
                file=str(r["source"]),
                line=_line(r["line"]),
                field=f"scores.{key}",
                fix=f"map samples.fields.scores.{key} to the record key that holds it",
            )
        ]
    if spec.range is not None:
        lo, hi = spec.range
        outside = part[(vals < lo) | (vals > hi)]
        if len(outside):
            r = outside.iloc[0]
            return [
                Problem(
                    f"scoring {name!r}: {len(outside)} logged {key!r} value(s) lie outside the range "
                    f"[{lo:g}, {hi:g}] (e.g. {vals[outside.index[0]]:g})",
                    file=str(r["source"]),
                    line=_line(r["line"]),
                    field=f"scorers.{name}.range",
                    fix="give the score's true range",
                )
            ]
        vals = (vals - lo) / (hi - lo)
    part["score"] = vals.astype(float)
    part["answered"] = float("nan")
    return []


def _line(x) -> int | None:
    try:
        return None if x is None or pd.isna(x) else int(x)
    except (TypeError, ValueError):
        return None


def _takes_objects(name: str, defined: dict | None) -> bool:
    """Whether the scorer ``name`` reads an object target (code_exec: {prompt, test, entry_point})."""
    spec = (defined or {}).get(name)
    kind = spec.get("kind") if isinstance(spec, dict) else getattr(spec, "kind", None)
    return kind == "code_exec"


def _unknown_scoring(name: str, logged: list[str], claim_file: str) -> Problem:
    import difflib

    options = list(logged) + list(SCORERS)
    close = difflib.get_close_matches(name, options, n=1)
    return Problem(
        f"scoring {name!r} is neither in the logs nor a built-in scorer",
        file=claim_file,
        field="perturbations.scorings",
        value=name,
        fix=(f"did you mean {close[0]!r}? " if close else "")
        + f"in the logs: {logged or 'none'}; built-in: {list(SCORERS)}",
    )


def _hash_problems(table: pd.DataFrame) -> list[Problem]:
    """Refuse to pair runs that did not see the same prompt (within an arm) or the same document (across arms)."""
    problems: list[Problem] = []
    if table.empty:
        return problems
    first = table["scoring"].iloc[0]
    # Only the columns read below are taken: copying the texts of every row is most of the cost of this check.
    t = table.loc[
        (table["scoring"] == first) & (table["variant"] == DEFAULT_VARIANT),
        ["arm", "item_id", "budget", "prompt_hash", "doc_hash", "source"],
    ]
    if _hashes_agree(t):
        return problems
    for arm in ARMS:
        sub = t[(t["arm"] == arm) & t["prompt_hash"].notna()]
        if sub.empty:
            continue
        n_hashes = sub.groupby("item_id")["prompt_hash"].nunique()
        bad = n_hashes[n_hashes > 1]
        if len(bad):
            item = bad.index[0]
            rows = sub[sub["item_id"] == item]
            problems.append(
                Problem(
                    f"{arm}: the prompt of item {item!r} differs between budgets "
                    f"{sorted(rows['budget'].unique().tolist())} "
                    f"({len(bad)} item(s) affected): these runs did not use the same prompt",
                    file=", ".join(sorted(set(rows["source"]))),
                    fix="a budget sweep must change only the budget; re-run the budgets with the same task config",
                )
            )
    docs = t[t["doc_hash"].notna()]
    if not docs.empty:
        per = docs.groupby(["item_id"])["doc_hash"].nunique()
        bad = per[per > 1]
        if len(bad):
            item = bad.index[0]
            rows = docs[docs["item_id"] == item]
            problems.append(
                Problem(
                    f"item {item!r} is a different document in different logs ({len(bad)} item(s) affected): the arms "
                    "were not run on the same data",
                    file=", ".join(sorted(set(rows["source"]))),
                    fix="run both arms on the same dataset in the same order (doc_id is the pairing key)",
                )
            )
    return problems


def _hashes_agree(t: pd.DataFrame) -> bool:
    """Whether no item has two prompt hashes within an arm, nor two document hashes: the common case, decided on
    factorized codes in one pass (no groupby per arm); when it is not, _hash_problems finds and names the items."""
    if t["item_id"].isna().any():
        return False
    item, items_seen = pd.factorize(t["item_id"])

    def one_hash_per_item(rows: np.ndarray, hashes: np.ndarray) -> bool:
        h, items = hashes[rows], item[rows]
        last = np.empty(len(items_seen), dtype=h.dtype)
        last[items] = h  # the last hash written for each item: every line of the item must carry it
        return bool((last[items] == h).all())

    prompt = pd.factorize(t["prompt_hash"])[0]  # -1: no hash
    for arm in ARMS:
        rows = (t["arm"] == arm).to_numpy(dtype=bool, na_value=False) & (prompt >= 0)
        if rows.any() and not one_hash_per_item(rows, prompt):
            return False
    doc = pd.factorize(t["doc_hash"])[0]
    return not (doc >= 0).any() or one_hash_per_item(doc >= 0, doc)
