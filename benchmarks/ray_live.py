"""Benchmark: one live audit on the default (asyncio) executor vs the Ray executor, same server, same claim.

Starts a real `python -m llama_cpp.server` on the embedded Gemma 3 270M GGUF (127.0.0.1, `--n_batch 1` so greedy
outputs do not depend on request order; killed at exit), points both arms of the demo claim (fixtures/claims/
demo.yaml, its first --limit items, budgets 24 and 64) at it, and audits it twice into fresh empty caches:

  default  audit.verify.verify(claim, cache=...)                        (in-process asyncio client)
  ray      audit.verify.verify(claim, cache=..., executor=RayExecutor())  (local Ray started for the run)

Prints both wall times and their ratio, Ray's start-up (ray.init of a fresh local instance, timed on its own before
the audit, then kept for it), the outputs that differ between the runs (greedy decoding on one server: expected 0
with --n_batch 1, see README "Greedy is not always reproducible"), both verdicts, and the executor's size in lines.

    python benchmarks/ray_live.py [--limit 40] [--actors 2] [--concurrency 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

DEMO = REPO / "fixtures" / "claims" / "demo.yaml"


def served_claim(url: str, limit: int, concurrency: int):
    from audit.claim import load_claim

    from live_throughput import MODEL

    claim = load_claim(DEMO)
    arms = {
        name: arm.model_copy(update={"endpoint": url, "model": MODEL, "max_concurrency": concurrency, "n_batch": None})
        for name, arm in (claim.arms or {}).items()
    }
    return claim.model_copy(update={"arms": arms, "task": claim.task.model_copy(update={"limit": limit})})


def audit(claim, executor) -> tuple[object, float]:
    from audit.generation.cache import GenerationCache
    from audit.verify import verify

    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        out = verify(claim, cache=GenerationCache(Path(d) / "c.sqlite"), executor=executor)
        return out, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=40, help="items of the demo dataset (default 40)")
    ap.add_argument("--actors", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=2, help="max_concurrency of the endpoint")
    ap.add_argument("--lifetime", type=float, default=1800.0, help="kill the server after this many seconds")
    args = ap.parse_args()
    from live_throughput import Server

    srv = Server(argparse.Namespace(n_threads=None, n_batch=1, lifetime=args.lifetime))
    srv.wait_ready(120)
    claim = served_claim(srv.url, args.limit, args.concurrency)
    import ray

    from audit.generation.ray_executor import RayExecutor, shutdown

    default, t_default = audit(claim, None)
    t0 = time.perf_counter()
    ray.init(address="local", include_dashboard=False, log_to_driver=False, configure_logging=False)
    t_init = time.perf_counter() - t0
    viaray, t_ray = audit(claim, RayExecutor(actors=args.actors))
    shutdown()
    ray.shutdown()
    srv.stop()

    def texts(out):
        t = out.records.table.drop_duplicates(["arm", "variant", "budget", "item_id"])
        return dict(zip(zip(t["arm"], t["variant"], t["budget"], t["item_id"]), t["text"]))

    a, b = texts(default), texts(viaray)
    differ = sum(a[k] != b.get(k) for k in a)
    size = sum(1 for line in (REPO / "audit/generation/ray_executor.py").read_text().splitlines() if line.strip())
    print(f"default executor: {t_default:.1f} s, verdict {default.report.verdict.value}")
    print(f"ray executor:     {t_ray:.1f} s (+ ray.init {t_init:.1f} s before it), verdict {viaray.report.verdict.value}")
    print(f"wall ratio ray/default: {t_ray / t_default:.2f} (with start-up: {(t_ray + t_init) / t_default:.2f})")
    print(f"outputs that differ: {differ} of {len(a)}; executor size: {size} non-blank lines")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
