"""Benchmark: replay 100,000 lm-eval sample rows per arm through every check.

Generates lm-eval-format logs (docs × 2 budgets × 2 filters = 100,000 lines per arm) in a temporary folder, then
times `audit verify` end to end in-process (claim → records → checks → report.json/html) and per stage.

    python benchmarks/replay_100k.py [--rows 100000] [--resamples 10000] [--keep DIR]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def write_run(folder: Path, task: str, budget: int, docs: int, p_correct: float, cut_rate: float, rng, prompt: str):
    folder.mkdir(parents=True, exist_ok=True)
    filters = ["strict-match", "flexible-extract"]
    correct = rng.random(docs) < p_correct
    cut = rng.random(docs) < cut_rate
    lines = []
    for f in filters:
        for i in range(docs):
            text = f"Let me verify step by step {i}" if cut[i] else f"{i + 1}"
            score = float(correct[i] and not cut[i]) if f == "strict-match" else float(correct[i])
            lines.append(json.dumps({
                "doc_id": i, "doc": {"q": i}, "target": str(i + 1),
                "arguments": {"gen_args_0": {"arg_0": f"{prompt}{i}", "arg_1": {"max_gen_toks": budget}}},
                "resps": [[text]], "filtered_resps": [text], "filter": f, "metrics": ["exact_match"],
                "doc_hash": hashlib.md5(str(i).encode()).hexdigest(), "prompt_hash": f"{prompt}{i}",
                "target_hash": "", "exact_match": score}))
    (folder / f"samples_{task}_2026-01-01T00-00-00.000000.jsonl").write_text("\n".join(lines) + "\n")
    (folder / "results_2026-01-01T00-00-00.000000.json").write_text(json.dumps({
        "configs": {task: {"generation_kwargs": {"max_gen_toks": budget}, "filter_list": [{"name": f} for f in filters]}},
        "versions": {task: 1}, "config": {"model": "local-completions"}, "lm_eval_version": "0.4.9"}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000, help="sample lines per arm (default 100000)")
    ap.add_argument("--resamples", type=int, default=10_000)
    ap.add_argument("--keep", type=Path, default=None, help="write the logs and report here instead of a temp dir")
    args = ap.parse_args()
    docs = args.rows // 4
    root = args.keep or Path(tempfile.mkdtemp(prefix="audit-bench-"))
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for b in (512, 1024):
        write_run(root / f"base_{b}", "base", b, docs, 0.55, 0.3 if b == 512 else 0.02, rng, "B")
        write_run(root / f"treat_{b}", "treat", b, docs, 0.5, 0.05 if b == 512 else 0.01, rng, "T")
    claim = root / "claim.yaml"
    claim.write_text(
        "claim:\n  title: synthetic 100k replay\n  settings: {max_tokens: 512}\n"
        "samples:\n  format: lm-eval\n"
        "  baseline: {512: base_512/samples_*.jsonl, 1024: base_1024/samples_*.jsonl}\n"
        "  treatment: {512: treat_512/samples_*.jsonl, 1024: treat_1024/samples_*.jsonl}\n"
        f"perturbations:\n  scorings: [strict-match, flexible-extract]\noptions: {{resamples: {args.resamples}}}\n")
    gen = time.perf_counter() - t0

    from audit.claim import load_claim
    from audit.importers import load_records
    from audit.verify import verify, write_outputs

    t = time.perf_counter()
    c = load_claim(claim)
    records = load_records(c)
    t_load = time.perf_counter() - t
    t = time.perf_counter()
    outcome = verify(c, records=records, command=f"audit verify {claim}")
    t_checks = time.perf_counter() - t
    t = time.perf_counter()
    paths = write_outputs(outcome, root / "out")
    t_write = time.perf_counter() - t
    total = t_load + t_checks + t_write
    print(f"rows per arm: {len(records.table) // 2:,} (docs {docs:,} × 2 budgets × 2 filters), resamples {args.resamples}")
    print(f"generate logs (not part of the audit): {gen:.2f} s")
    print(f"read + validate + pair: {t_load:.2f} s")
    print(f"all checks:             {t_checks:.2f} s")
    print(f"write report:           {t_write:.2f} s  (report.html {paths['html'].stat().st_size / 1e6:.1f} MB)")
    print(f"total audit:            {total:.2f} s   verdict: {outcome.report.verdict}")


if __name__ == "__main__":
    main()
