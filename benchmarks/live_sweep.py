"""Benchmark: model tokens a greedy budget sweep costs in one run vs one run per budget (live, embedded model).

With greedy decoding `run_live` generates each arm once at the largest budget and derives every smaller budget by
token truncation, spot-checking `task.sweep_check` items per arm with real runs at each smaller budget
(DESIGN.md, "Cost"). This script runs the demo claim (fixtures/claims/demo.yaml: its dataset, both arms, embedded
Gemma 3 270M) twice, each time into a fresh empty generation cache:

  sweep     run_live on the claim with every budget (one run at the top budget + the spot checks)
  separate  run_live once per budget, on a copy of the claim that has only that budget (every budget generated)

and prints the completion tokens each actually generated (RunStats.completion_tokens, uncached requests only;
the spot-check runs count towards the sweep's cost), their ratio (target <= 0.55), and wall times (information
only: the machine is shared).

    python benchmarks/live_sweep.py [--limit 80] [--budgets 32 64] [--sweep-check N] [--dataset JSONL]
"""
from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DEMO = REPO / "fixtures" / "claims" / "demo.yaml"


def with_budgets(claim, budgets: list[int], limit: int, sweep_check: int | None, dataset: Path | None = None):
    """A copy of the claim restricted to `budgets` (the claimed budget moved into them) and `limit` items."""
    task = {"limit": limit}
    if dataset is not None:
        task["dataset"] = str(dataset.resolve())
    if sweep_check is not None:
        task["sweep_check"] = sweep_check
    claimed = claim.claim.settings.max_tokens
    settings = claim.claim.settings.model_copy(
        update={"max_tokens": claimed if claimed in budgets else budgets[0]})
    return claim.model_copy(update={
        "task": claim.task.model_copy(update=task),
        "perturbations": claim.perturbations.model_copy(update={"max_tokens": list(budgets)}),
        "claim": claim.claim.model_copy(update={"settings": settings}),
    })


CALLS: list[tuple[str, int, int]] = []  # (label, uncached requests, completion tokens) per run_generations call


def _record_calls() -> None:
    """Log every run_generations call run_live makes (observation only: arguments and results pass through)."""
    from audit.generation import http as runner

    inner = runner.run_generations

    def logged(endpoint, requests, cache, progress=None, label="", **kw):
        gens = inner(endpoint, requests, cache, progress, label, **kw)
        CALLS.append((label, sum(not g.cached for g in gens),
                      sum(g.completion_tokens or 0 for g in gens if not g.cached)))
        return gens

    runner.run_generations = logged  # run_live imports it from audit.generation.http at call time


def run(claim, tmp: Path, name: str):
    from audit.generation.cache import GenerationCache
    from audit.live import run_live

    assert claim.budgets() == sorted(claim.perturbations.max_tokens), claim.budgets()
    CALLS.clear()
    with GenerationCache(tmp / f"{name}.sqlite") as cache:  # fresh and empty: nothing is reused
        t0 = time.perf_counter()
        records, stats = run_live(claim, cache=cache)
        wall = time.perf_counter() - t0
    cols = ["arm", "item_id", "budget", "text", "finish_reason", "completion_tokens"]
    rows = records.table[cols].drop_duplicates(["arm", "item_id", "budget"])  # one row per scoring otherwise
    return stats, wall, list(CALLS), rows


def _rel(p: Path) -> Path:
    p = p.resolve()
    return p.relative_to(REPO) if p.is_relative_to(REPO) else p


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=80, help="first N items of the dataset (default 80: the whole demo)")
    ap.add_argument("--budgets", type=int, nargs="+", default=[32, 64], help="budgets of the sweep (default 32 64)")
    ap.add_argument("--sweep-check", type=int, default=None,
                    help="items per arm spot-checked at each smaller budget (default: the claim's, 3)")
    ap.add_argument("--claim", type=Path, default=DEMO, help="a live claim (default fixtures/claims/demo.yaml)")
    ap.add_argument("--dataset", type=Path, default=None,
                    help="items to use instead of the claim's task.dataset (e.g. fixtures/data/add_small.jsonl)")
    args = ap.parse_args()
    budgets = sorted(set(args.budgets))
    if len(budgets) < 2:
        ap.error("a sweep needs at least two budgets")

    from audit.claim import load_claim

    base = load_claim(args.claim)
    if not base.live or base.task.temperature != 0.0:
        ap.error("the claim must be live and greedy (temperature 0)")
    cmd = "python benchmarks/live_sweep.py " + shlex.join(sys.argv[1:])
    print(f"command: {cmd.strip()}")
    sweep_claim = with_budgets(base, budgets, args.limit, args.sweep_check, args.dataset)
    ds = (base.base_dir / sweep_claim.task.dataset).resolve()
    print(f"claim: {_rel(args.claim)}, dataset {_rel(ds)}, "
          f"items {args.limit}, budgets {budgets}, sweep_check {sweep_claim.task.sweep_check} per arm per smaller "
          f"budget, arms {[sweep_claim.arm(a).endpoint for a in ('baseline', 'treatment')]}")

    with tempfile.TemporaryDirectory(prefix="audit-bench-sweep-") as d:
        tmp = Path(d)
        # warm-up (not measured): load the GGUF once so neither timed run pays for it
        from audit.live import _endpoint
        from audit.generation.http import tokenize

        tokenize(_endpoint(sweep_claim, "baseline"), "1 + 1")
        _record_calls()

        sweep, t_sweep, sweep_calls, sweep_rows = run(sweep_claim, tmp, "sweep")
        sep: dict[int, dict] = {}
        sep_rows = []
        t_sep = 0.0
        for b in budgets:
            stats, wall, _, rows = run(with_budgets(base, [b], args.limit, args.sweep_check, args.dataset), tmp, f"separate-{b}")
            sep[b] = stats
            sep_rows.append(rows)
            t_sep += wall

    arms = list(sweep)
    print()
    print(f"{'':28s}" + "".join(f"{a:>12s}" for a in arms) + f"{'total':>12s}")

    def row(label: str, vals: list[int]) -> None:
        print(f"{label:28s}" + "".join(f"{v:>12,}" for v in vals) + f"{sum(vals):>12,}")

    row("sweep: requests", [sweep[a].requests for a in arms])
    row("sweep: derived generations", [sweep[a].derived for a in arms])
    row("sweep: spot-checked", [sweep[a].sweep_checked for a in arms])
    row("sweep: mismatches", [len(sweep[a].sweep_mismatches) for a in arms])
    row("sweep: completion tokens", [sweep[a].completion_tokens for a in arms])
    for b in budgets:
        row(f"separate @{b}: requests", [sep[b][a].requests for a in arms])
        row(f"separate @{b}: tokens", [sep[b][a].completion_tokens for a in arms])
    sep_tok = {a: sum(sep[b][a].completion_tokens for b in budgets) for a in arms}
    row("separate: completion tokens", [sep_tok[a] for a in arms])
    cached = sum(s.cached for s in sweep.values()) + sum(s[a].cached for s in sep.values() for a in arms)
    if cached:
        print(f"WARNING: {cached} generations came from the cache; the counts above are not the full cost")
    for a in arms:
        for m in sweep[a].sweep_mismatches:
            print(f"mismatch {a}: {m}")

    print()
    print("the sweep's model calls (run_generations, in order):")
    for label, n, tok in sweep_calls:
        print(f"  {label:40s} {n:>4} requests {tok:>7,} tokens")
    n_small = len(budgets) - 1
    uncut = {a: args.limit * n_small - sweep[a].derived for a in arms}
    if any(uncut.values()) and not any(sweep[a].sweep_mismatches for a in arms):
        print("  (a '(cuts + check)' call = the spot-check items + the items truncate_to_tokens could not cut: "
              + ", ".join(f"{a} {uncut[a]}" for a in arms) + ")")

    import pandas as pd

    both = sweep_rows.merge(pd.concat(sep_rows), on=["arm", "item_id", "budget"], suffixes=("", "_sep"))
    same = ((both["text"] == both["text_sep"]) & (both["finish_reason"] == both["finish_reason_sep"])
            & (both["completion_tokens"] == both["completion_tokens_sep"]))
    print(f"sweep outputs identical to the separate runs' (text, finish_reason, completion_tokens): "
          f"{int(same.sum())} of {len(both)}")
    for _, r in both[~same].head(5).iterrows():
        print(f"  differs: {r['arm']} {r['item_id']} @{r['budget']}: {r['text']!r} ({r['finish_reason']}, "
              f"{r['completion_tokens']}) vs {r['text_sep']!r} ({r['finish_reason_sep']}, {r['completion_tokens_sep']})")

    top = budgets[-1]
    tok_sweep = sum(s.completion_tokens for s in sweep.values())
    tok_sep = sum(sep_tok.values())
    # what the spot checks cost: the sweep's tokens beyond the top-budget run it shares with `separate`
    tok_top = sum(sep[top][a].completion_tokens for a in arms)
    ratio = tok_sweep / tok_sep
    print()
    print(f"beyond the top-budget run ({tok_top:,} tokens, {tok_top / tok_sep:.3f}x of separate: the floor): "
          f"{tok_sweep - tok_top:,} tokens of spot checks and uncut items")
    k = sweep_claim.task.sweep_check
    if len(budgets) == 2:
        print(f"note: spot-checking {k} of {args.limit} items costs about {k}/{args.limit} of a smaller-budget run, so "
              f"with typical checked items the ratio is about (T_top + {k}/{args.limit}*T_small) / (T_top + T_small) "
              f">= (1 + {k}/{args.limit}) / 2 = {(1 + k / args.limit) / 2:.3f}x (T_small <= T_top)")
    print(f"wall time (information only, shared machine): sweep {t_sweep:.1f} s, separate {t_sep:.1f} s, "
          f"ratio {t_sweep / t_sep:.2f}x")
    verdict = "meets" if ratio <= 0.55 else "MISSES"
    print(f"SUMMARY live_sweep: sweep generated {tok_sweep:,} completion tokens vs {tok_sep:,} for separate runs "
          f"= {ratio:.3f}x ({verdict} target <= 0.55x; {args.limit} items, budgets {budgets}, both arms)")


if __name__ == "__main__":
    main()
