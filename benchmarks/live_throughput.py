"""Benchmark: completion tokens/s through audit's runner vs driving the same llama.cpp server directly.

Starts a real `python -m llama_cpp.server` on the embedded Gemma 3 270M GGUF (127.0.0.1, a free port, killed at
exit and after --lifetime seconds at the latest), then sends the same N greedy completions requests (distinct
prompts, same order, same concurrency) in passes of two kinds:

  direct  httpx.AsyncClient + asyncio.Semaphore, nothing else: the server's own throughput at that concurrency
  audit   audit.generation.http.run_generations(Endpoint(url, max_concurrency=C), requests, cache=None)

Passes alternate (direct, audit, audit, direct, ... for --repeats) so drift on the shared machine hits both.
Throughput = sum of usage.completion_tokens / wall time of the pass. Prints the ratio audit/direct (target >= 0.9)
and, per pass, the client process's CPU time (what the client itself spends per request).

Same prompts in the same order on purpose: llama-cpp-python's server reuses the KV cache of the prefix shared
with the previous request, so a different order would change the server's work between passes.

    python benchmarks/live_throughput.py [--n 24] [--max-tokens 32] [--concurrency 2] [--repeats 2]
"""
from __future__ import annotations

import argparse
import asyncio
import atexit
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

MODEL = "gemma-3-270m"
# Few-shot additions as in fixtures/claims/demo.yaml, without stop sequences: every request runs to max_tokens.
TEMPLATE = ("Q: 3 + 4 = ?\nA: The answer is 7.\n\nQ: 12 + 25 = ?\nA: The answer is 37.\n\n"
            "Q: 28 + 16 = ?\nA: The answer is 44.\n\nQ: {a} + {b} = ?\nA:")


def prompts(n: int) -> list[str]:
    return [TEMPLATE.format(a=10 + i, b=3 + (7 * i) % 90) for i in range(n)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    # Linux: the server gets SIGKILL if this script dies, even by SIGKILL (no orphaned server)
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:  # not glibc Linux: the atexit hook and the lifetime watchdog still stop the server
        return
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Server:
    """A llama_cpp.server child process with a bounded lifetime."""

    def __init__(self, args) -> None:
        from audit.generation import model_file as embedded

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.cmd = [sys.executable, "-m", "llama_cpp.server", "--model", embedded.default_model_path(),
                    "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", "1024", "--model_alias", MODEL]
        if args.n_threads is not None:
            self.cmd += ["--n_threads", str(args.n_threads)]
        if args.n_batch is not None:
            self.cmd += ["--n_batch", str(args.n_batch)]
        # preexec_fn is safe here: no other thread exists yet (the watchdog starts after the fork)
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     preexec_fn=_die_with_parent)  # noqa: PLW1509
        atexit.register(self.stop)
        self.watchdog = threading.Timer(args.lifetime, self._expire)
        self.watchdog.daemon = True
        self.watchdog.start()

    def _expire(self) -> None:
        print(f"server lifetime exceeded: killing pid {self.proc.pid}", file=sys.stderr)
        self.proc.kill()

    def wait_ready(self, timeout: float) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"llama_cpp.server exited with {self.proc.returncode}: {shlex.join(self.cmd)}")
            try:
                if httpx.get(self.url + "/models", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"llama_cpp.server did not come up within {timeout:.0f} s")
            time.sleep(0.25)

    def stop(self) -> None:
        self.watchdog.cancel()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def body(prompt: str, max_tokens: int) -> dict:
    """What audit.generation.types.build_payload sends for a greedy completions request (asserted equal in main)."""
    return {"model": MODEL, "max_tokens": max_tokens, "temperature": 0.0, "top_p": 1.0, "stream": False,
            "seed": 0, "prompt": prompt}


async def direct_pass(url: str, bodies: list[dict], concurrency: int) -> tuple[list[int], list[str]]:
    import httpx

    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=300) as client:

        async def one(b: dict) -> tuple[int, str]:
            async with sem:
                r = await client.post(url + "/completions", json=b)
            r.raise_for_status()
            data = r.json()
            return data["usage"]["completion_tokens"], data["choices"][0]["text"]

        out = await asyncio.gather(*(one(b) for b in bodies))
    return [t for t, _ in out], [x for _, x in out]


def audit_pass(url: str, ps: list[str], max_tokens: int, concurrency: int) -> tuple[list[int], list[str]]:
    from audit.generation.types import Endpoint, GenerationRequest
    from audit.generation.http import run_generations

    ep = Endpoint(url=url, model=MODEL, max_concurrency=concurrency, timeout_s=300)
    reqs = [GenerationRequest(item_id=f"p{i}", prompt=p, max_tokens=max_tokens, temperature=0.0, seed=0)
            for i, p in enumerate(ps)]
    gens = run_generations(ep, reqs, None)
    return [g.completion_tokens or 0 for g in gens], [g.text for g in gens]


def timed(fn):
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=24, help="requests per pass (default 24)")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2, help="pairs of passes, order alternating (default 2)")
    ap.add_argument("--n-threads", type=int, default=None, help="server --n_threads (default: the server's)")
    ap.add_argument("--n-batch", type=int, default=None, help="server --n_batch (default: the server's)")
    ap.add_argument("--lifetime", type=float, default=900, help="kill the server after this many seconds")
    args = ap.parse_args()
    print(f"command: {('python benchmarks/live_throughput.py ' + shlex.join(sys.argv[1:])).strip()}")

    from audit.generation.types import Endpoint, GenerationRequest, build_payload

    ps = prompts(args.n)
    bodies = [body(p, args.max_tokens) for p in ps]
    probe = build_payload(Endpoint(url="http://x/v1", model=MODEL),
                          GenerationRequest(item_id="x", prompt=ps[0], max_tokens=args.max_tokens, seed=0))
    assert probe == bodies[0], (probe, bodies[0])  # both passes ask the server for exactly the same work

    t = time.perf_counter()
    server = Server(args)
    server.wait_ready(180)
    print(f"server: {shlex.join(server.cmd[1:])}  (up in {time.perf_counter() - t:.1f} s)")
    print(f"requests per pass {args.n}, max_tokens {args.max_tokens}, greedy, no stop, concurrency {args.concurrency}, "
          f"{os.cpu_count()} CPUs (shared)")
    try:
        asyncio.run(direct_pass(server.url, bodies[:8], args.concurrency))  # warm-up, not measured
        results: dict[str, list[tuple[int, float, float]]] = {"direct": [], "audit": []}
        texts: dict[str, list[list[str]]] = {"direct": [], "audit": []}
        order = []
        for r in range(args.repeats):
            order += ["direct", "audit"] if r % 2 == 0 else ["audit", "direct"]
        print()
        print(f"{'pass':>4} {'kind':>7} {'tokens':>7} {'wall s':>7} {'tok/s':>7} {'client CPU s':>13}")
        for i, kind in enumerate(order, 1):
            if kind == "direct":
                (toks, txt), wall, cpu = timed(lambda: asyncio.run(direct_pass(server.url, bodies, args.concurrency)))
            else:
                (toks, txt), wall, cpu = timed(lambda: audit_pass(server.url, ps, args.max_tokens, args.concurrency))
            results[kind].append((sum(toks), wall, cpu))
            texts[kind].append(txt)
            print(f"{i:>4} {kind:>7} {sum(toks):>7} {wall:>7.2f} {sum(toks) / wall:>7.1f} {cpu:>13.2f}")
    finally:
        server.stop()

    rate = {k: sum(t for t, _, _ in v) / sum(w for _, w, _ in v) for k, v in results.items()}
    cpu_per_req = {k: sum(c for _, _, c in v) / (len(v) * args.n) * 1000 for k, v in results.items()}
    all_texts = [t for v in texts.values() for t in v]
    same = sum(all(t[i] == all_texts[0][i] for t in all_texts) for i in range(args.n))
    print()
    print(f"direct: {rate['direct']:.1f} tok/s, client CPU {cpu_per_req['direct']:.1f} ms/request")
    print(f"audit:  {rate['audit']:.1f} tok/s, client CPU {cpu_per_req['audit']:.1f} ms/request")
    print(f"requests whose text was identical in every pass: {same} of {args.n} (the server reuses the previous "
          "request's KV prefix, which can flip near-tied greedy picks; token counts are what is compared)")
    ratio = rate["audit"] / rate["direct"]
    verdict = "meets" if ratio >= 0.9 else "MISSES"
    print(f"SUMMARY live_throughput: audit runner {rate['audit']:.1f} tok/s vs direct httpx {rate['direct']:.1f} tok/s "
          f"= {ratio:.3f}x ({verdict} target >= 0.9x; {args.n} requests x {len(order) // 2} passes each, "
          f"max_tokens {args.max_tokens}, concurrency {args.concurrency})")


if __name__ == "__main__":
    main()
