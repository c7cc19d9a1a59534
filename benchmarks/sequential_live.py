"""Benchmark: a live audit run fixed-n vs sequential (stop when settled) on the embedded model.

Two claims, each audited twice into a fresh empty generation cache (so every generation is paid for):

  fixed       `audit.verify.verify` on every item (the default)
  sequential  the same claim with `options.sequential` (batches of --batch items in the seeded draw order), which
              stops once the claimed gain and every perturbation are settled by anytime-valid tests

The claims: the demo (fixtures/claims/demo.yaml, 80 single-digit additions, embedded Gemma 3 270M, budgets 24 and
64, reported delta 0.25) and a larger one with the same prompts on --large-n additions (a + b, a in 1..n/8, b in
2..9; written to a temporary file; no reported numbers). Prints, per claim, both verdicts, the items and the model calls (uncached generation requests) each made,
their ratio (goal: sequential ≤ 0.5 of fixed, same verdict), and wall times as a ratio (information only: the
machine is shared). Writes the numbers as JSON with --json.

    python benchmarks/sequential_live.py [--batch 10] [--claims demo large] [--large-n 320] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DEMO = REPO / "fixtures" / "claims" / "demo.yaml"


def large_dataset(path: Path, n: int = 320) -> Path:
    """n additions a + b (a in 1..n/8, b in 2..9; n a multiple of 8), shuffled with a fixed seed."""
    rows = [(a, b) for a in range(1, n // 8 + 1) for b in range(2, 10)]
    random.Random(0).shuffle(rows)
    with path.open("w", encoding="utf-8") as f:
        for i, (a, b) in enumerate(rows):
            f.write(json.dumps({"id": f"add-{i:03d}", "question": f"{a} + {b}", "answer": str(a + b)}) + "\n")
    return path


def claim_variant(claim, dataset: Path | None, sequential, title: str):
    from audit.claim import Sequential

    task = claim.task if dataset is None else claim.task.model_copy(update={"dataset": str(dataset.resolve())})
    info = claim.claim.model_copy(update={"title": title})
    if dataset is not None:  # the demo's reported numbers belong to its 80 items
        info = info.model_copy(update={"reported": info.reported.model_copy(update={"delta": None, "n": None,
                                                                                    "baseline": None,
                                                                                    "treatment": None})})
    opts = claim.options.model_copy(update={"sequential": Sequential(batch=sequential) if sequential else None})
    return claim.model_copy(update={"task": task, "options": opts, "claim": info})


def run(claim) -> dict:
    from audit.generation.cache import GenerationCache
    from audit.verify import verify

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        cache = GenerationCache(Path(d) / "cache.sqlite")
        outcome = verify(claim, cache=cache)
        cache.close()
    wall = time.perf_counter() - t0
    rep = outcome.report
    requests = sum(int(r.get("requests", 0)) for r in rep.run.values())
    seq = rep.sequential
    if seq is not None:
        requests = int(seq.generations.get("requests", requests))
    return {
        "verdict": rep.verdict.value,
        "reason": rep.verdict_reason,
        "items": seq.stopped_at if seq is not None else max((c.n for c in rep.cells), default=0),
        "items_total": seq.items_total if seq is not None else None,
        "stop_reason": seq.reason if seq is not None else None,
        "requests": requests,
        "wall_s": round(wall, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=10, help="items per look of the sequential runs")
    ap.add_argument("--claims", nargs="+", choices=("demo", "large"), default=["demo", "large"])
    ap.add_argument("--large-n", type=int, default=320, help="items of the larger claim (a multiple of 8)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    from audit.claim import load_claim

    base = load_claim(DEMO)
    results = {}
    with tempfile.TemporaryDirectory() as d:
        for name in args.claims:
            dataset = large_dataset(Path(d) / "add_large.jsonl", args.large_n) if name == "large" else None
            title = base.claim.title if name == "demo" else f"Direct answering vs verification, {args.large_n} additions"
            fixed = run(claim_variant(base, dataset, None, title))
            seq = run(claim_variant(base, dataset, args.batch, title))
            results[name] = {"fixed": fixed, "sequential": seq,
                             "requests_ratio": seq["requests"] / fixed["requests"] if fixed["requests"] else None,
                             "wall_ratio": seq["wall_s"] / fixed["wall_s"] if fixed["wall_s"] else None,
                             "same_verdict": fixed["verdict"] == seq["verdict"]}
            r = results[name]
            print(f"{name}: fixed {fixed['verdict']} on {fixed['items']} items, {fixed['requests']} model calls, "
                  f"{fixed['wall_s']} s | sequential {seq['verdict']} after {seq['items']} of {seq['items_total']} "
                  f"items ({seq['stop_reason']}), {seq['requests']} model calls, {seq['wall_s']} s | calls ratio "
                  f"{r['requests_ratio']:.2f}, wall ratio {r['wall_ratio']:.2f}, same verdict: {r['same_verdict']}",
                  flush=True)
    if args.json:
        args.json.write_text(json.dumps({"batch": args.batch, "results": results}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
