"""Benchmark: `verify` on big replays (200,000 and 1,000,000 lm-eval sample rows per arm) against a raw JSON parse.

For each size it writes lm-eval logs in the format of `replay_100k.py` (documents × 2 budgets × 2 filters per arm,
0/1 scores) into a temporary folder, then runs two fresh child processes on the same files:

* **raw parse**: `orjson.loads` of every line of every samples file, and nothing else: the floor any reader of
  these files pays;
* **audit**: `load_claim` → `load_records` → `verify` (10,000 bootstrap resamples, the default) → `write_outputs`
  (report.json, report.html, summary.md), timed per stage.

Each child reports its wall time and its own peak resident memory (`ru_maxrss`), so the figures do not include
the generator. The audit's total is compared with the raw parse of the same files (the ratio is what carries over
between machines; the seconds are for this one).

    python benchmarks/replay_scale.py [--rows 200000 1000000] [--resamples 10000] [--keep DIR]

Goals (issue 17): 200,000 rows per arm ≤ 10 s; 1,000,000 rows per arm ≤ 60 s and ≤ 4 GiB peak. The script ends with
one SUMMARY line naming each figure and whether it meets its goal; the exit code is 0 either way (a measurement,
not a gate).

Each audit line also says how busy the machine was when the child started (1-minute load average) and how the logs
were read: by forked workers when at least two cores were idle, else in-process (``audit.importers.
_read_lmeval_in_parallel``). On a machine shared with other work the seconds move with the load, the ratio to the raw
parse less.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

GOALS = {200_000: (10.0, None), 1_000_000: (60.0, 4.0)}  # rows per arm → (seconds, GiB peak)
FILTERS = ("strict-match", "flexible-extract")


def write_run(folder: Path, task: str, budget: int, docs: int, p_correct: float, cut_rate: float, rng,
              prompt: str) -> None:
    """One lm-eval run folder (samples + results), written line by line: the same lines as replay_100k.py."""
    folder.mkdir(parents=True, exist_ok=True)
    correct = rng.random(docs) < p_correct
    cut = rng.random(docs) < cut_rate
    path = folder / f"samples_{task}_2026-01-01T00-00-00.000000.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for f in FILTERS:
            for i in range(docs):
                text = f"Let me verify step by step {i}" if cut[i] else f"{i + 1}"
                score = float(correct[i] and not cut[i]) if f == "strict-match" else float(correct[i])
                fh.write(json.dumps({
                    "doc_id": i, "doc": {"q": i}, "target": str(i + 1),
                    "arguments": {"gen_args_0": {"arg_0": f"{prompt}{i}", "arg_1": {"max_gen_toks": budget}}},
                    "resps": [[text]], "filtered_resps": [text], "filter": f, "metrics": ["exact_match"],
                    "doc_hash": hashlib.md5(str(i).encode()).hexdigest(), "prompt_hash": f"{prompt}{i}",
                    "target_hash": "", "exact_match": score}) + "\n")
    (folder / "results_2026-01-01T00-00-00.000000.json").write_text(json.dumps({
        "configs": {task: {"generation_kwargs": {"max_gen_toks": budget},
                           "filter_list": [{"name": f} for f in FILTERS]}},
        "versions": {task: 1}, "config": {"model": "local-completions"}, "lm_eval_version": "0.4.9"}))


def generate(root: Path, rows: int, resamples: int) -> Path:
    docs = rows // 4
    rng = np.random.default_rng(0)
    for b in (512, 1024):
        write_run(root / f"base_{b}", "base", b, docs, 0.55, 0.3 if b == 512 else 0.02, rng, "B")
        write_run(root / f"treat_{b}", "treat", b, docs, 0.5, 0.05 if b == 512 else 0.01, rng, "T")
    claim = root / "claim.yaml"
    claim.write_text(
        f"claim:\n  title: synthetic {rows:,}-row replay\n  settings: {{max_tokens: 512}}\n"
        "samples:\n  format: lm-eval\n"
        "  baseline: {512: base_512/samples_*.jsonl, 1024: base_1024/samples_*.jsonl}\n"
        "  treatment: {512: treat_512/samples_*.jsonl, 1024: treat_1024/samples_*.jsonl}\n"
        f"perturbations:\n  scorings: [strict-match, flexible-extract]\noptions: {{resamples: {resamples}}}\n")
    return claim


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


def child_raw(root: Path) -> dict:
    import orjson

    t = time.perf_counter()
    lines = 0
    for path in sorted(root.glob("*/samples_*.jsonl")):
        with path.open("rb") as fh:
            for line in fh:
                orjson.loads(line)
                lines += 1
    return {"seconds": time.perf_counter() - t, "lines": lines, "peak_gib": _peak_gib()}


def child_audit(root: Path) -> dict:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    t0 = time.perf_counter()
    from audit.claim import load_claim
    from audit.importers import load_records
    from audit.verify import verify, write_outputs

    t_import = time.perf_counter() - t0
    t = time.perf_counter()
    claim = load_claim(root / "claim.yaml")
    records = load_records(claim)
    t_read = time.perf_counter() - t
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # forked readers, if the reader used any
    workers = children.ru_utime + children.ru_stime > 0
    t = time.perf_counter()
    outcome = verify(claim, records=records, command="audit verify claim.yaml")
    t_checks = time.perf_counter() - t
    t = time.perf_counter()
    write_outputs(outcome, root / "out")
    t_write = time.perf_counter() - t
    boot = [c for c in outcome.report.cells]
    return {"seconds": time.perf_counter() - t0, "import": t_import, "read": t_read, "checks": t_checks,
            "write": t_write, "verdict": outcome.report.verdict, "rows": int(len(records.table)),
            "cells": len(boot), "peak_gib": _peak_gib(), "load": load, "read_workers": workers}


def run_child(kind: str, root: Path) -> dict:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    out = subprocess.run([sys.executable, __file__, "--child", kind, str(root)], capture_output=True, text=True,
                         env=env, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{kind} child failed ({out.returncode}): {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[200_000, 1_000_000], help="sample lines per arm")
    ap.add_argument("--resamples", type=int, default=10_000)
    ap.add_argument("--keep", type=Path, default=None, help="write the logs here (one folder per size), keep them")
    ap.add_argument("--child", nargs=2, metavar=("KIND", "DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        kind, root = args.child
        res = child_raw(Path(root)) if kind == "raw" else child_audit(Path(root))
        print(json.dumps(res))
        return 0
    argv = sys.argv[1:] if argv is None else argv
    print("command: python benchmarks/replay_scale.py " + " ".join(argv), flush=True)
    summary = []
    for rows in args.rows:
        root = (args.keep / f"rows_{rows}") if args.keep else Path(tempfile.mkdtemp(prefix=f"audit-scale-{rows}-"))
        root.mkdir(parents=True, exist_ok=True)
        try:
            t = time.perf_counter()
            if not (root / "claim.yaml").exists():
                generate(root, rows, args.resamples)
            size = sum(p.stat().st_size for p in root.glob("*/samples_*.jsonl"))
            print(f"\n{rows:,} rows per arm ({rows // 4:,} docs × 2 budgets × 2 filters), {size / 2**20:,.0f} MiB of "
                  f"samples; logs written in {time.perf_counter() - t:.1f} s (not part of the audit)", flush=True)
            raw = run_child("raw", root)
            audit = run_child("audit", root)
        finally:
            if not args.keep:
                shutil.rmtree(root, ignore_errors=True)
        ratio = audit["seconds"] / raw["seconds"]
        print(f"raw JSON parse (orjson, {raw['lines']:,} lines): {raw['seconds']:.2f} s, "
              f"peak {raw['peak_gib']:.2f} GiB")
        print(f"audit verify end to end:   {audit['seconds']:.2f} s = {ratio:.1f}× the raw parse, peak "
              f"{audit['peak_gib']:.2f} GiB  (imports {audit['import']:.2f} s, read + validate + pair "
              f"{audit['read']:.2f} s, checks {audit['checks']:.2f} s, report {audit['write']:.2f} s; "
              f"verdict {audit['verdict']}); load average {audit['load']:.1f} at the start, logs read "
              f"{'by forked workers' if audit['read_workers'] else 'in-process'}", flush=True)
        secs, gib = GOALS.get(rows, (None, None))
        met = (secs is None or audit["seconds"] <= secs) and (gib is None or audit["peak_gib"] <= gib)
        goal = " and ".join(x for x in (f"≤ {secs:g} s" if secs else "", f"≤ {gib:g} GiB" if gib else "") if x)
        summary.append(f"{rows:,} rows/arm {audit['seconds']:.1f} s ({ratio:.1f}× raw parse {raw['seconds']:.1f} s), "
                       f"peak {audit['peak_gib']:.2f} GiB" + (f" ({'meets' if met else 'misses'} goal {goal})"
                                                               if goal else ""))
    print("SUMMARY replay_scale: " + "; ".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
