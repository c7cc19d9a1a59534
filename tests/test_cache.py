"""Generation cache: keys, round trips, durability, info/clear, and clear errors for a bad file."""
from __future__ import annotations

import math
import sqlite3
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.generation.cache import GenerationCache, default_cache_path, key_for
from audit.errors import InputError, ServerError
from audit.generation.types import Endpoint, Generation, GenerationRequest

EP = Endpoint("http://127.0.0.1:8000/v1", "m")


def gen(text="hello", **kw) -> Generation:
    base = dict(text=text, finish_reason="stop", prompt_tokens=4, completion_tokens=2, latency_s=0.25)
    base.update(kw)
    return Generation(**base)


@pytest.fixture
def cache(tmp_path):
    c = GenerationCache(tmp_path / "c.sqlite")
    yield c
    c.close()


def test_round_trip_marks_cached_and_keeps_every_field(cache):
    g = gen("héllo ✓", finish_reason=None, prompt_tokens=None, tokens=("h", "éllo ✓"), token_logprobs=(-0.5, math.nan),
            reasoning_text="<think>", truncated_from=None)
    cache.put("k", g, model="m", url="u")
    got = cache.get("k")
    assert got.cached is True
    assert (got.text, got.finish_reason, got.prompt_tokens, got.completion_tokens, got.tokens) == \
        (g.text, None, None, 2, ("h", "éllo ✓"))
    assert got.token_logprobs[0] == -0.5 and math.isnan(got.token_logprobs[1])
    assert got.reasoning_text == "<think>" and got.latency_s == 0.25
    assert cache.get("missing") is None


def test_entries_survive_reopening(tmp_path):
    path = tmp_path / "c.sqlite"
    c = GenerationCache(path)
    c.put("a", gen("one"))
    del c  # no close(): every put is already committed
    c2 = GenerationCache(path)
    assert c2.get("a").text == "one"
    c2.close()


def test_key_is_deterministic_and_ignores_what_does_not_change_the_output():
    r = GenerationRequest("item-1", "prompt", stop=("b", "a"))
    assert key_for(EP, r) == key_for(EP, r)
    assert len(key_for(EP, r)) == 64
    # item id, replica set/order, concurrency, timeouts, API-key variable: not part of the key
    same = [
        (EP, GenerationRequest("item-2", "prompt", stop=("a", "b", "a"))),
        (Endpoint("http://127.0.0.1:8000/v1/", "m", replicas=("http://r1/v1",), max_concurrency=16,
                  timeout_s=5, api_key_env="KEY"), r),
    ]
    for e, rr in same:
        assert key_for(e, rr) == key_for(EP, r)


@pytest.mark.parametrize("change", [
    {"max_tokens": 512}, {"temperature": 0.7}, {"top_p": 0.9}, {"stop": ("\n",)}, {"seed": 1},
    {"logprobs": 1}, {"prompt": "prompt "},
])
def test_any_sampling_change_changes_the_key(change):
    base = dict(item_id="i", prompt="prompt")
    assert key_for(EP, GenerationRequest(**base)) != key_for(EP, GenerationRequest(**{**base, **change}))


def test_endpoint_identity_changes_the_key():
    r = GenerationRequest("i", "p")
    keys = {key_for(e, r) for e in [EP, Endpoint(EP.url, "other"), Endpoint(EP.url, "m", api="chat"),
                                    Endpoint("http://127.0.0.1:8001/v1", "m")]}
    assert len(keys) == 4
    chat = Endpoint(EP.url, "m", api="chat")
    assert key_for(chat, GenerationRequest("i", "p", system_prompt="s")) != key_for(chat, r)


@settings(max_examples=60, deadline=None)
@given(
    a=st.tuples(st.text(max_size=8), st.integers(1, 4096), st.floats(0, 2), st.sampled_from([None, 0, 7])),
    b=st.tuples(st.text(max_size=8), st.integers(1, 4096), st.floats(0, 2), st.sampled_from([None, 0, 7])),
)
def test_keys_collide_exactly_when_the_requests_agree(a, b):
    ra = GenerationRequest("x", a[0], max_tokens=a[1], temperature=a[2], seed=a[3])
    rb = GenerationRequest("y", b[0], max_tokens=b[1], temperature=b[2], seed=b[3])
    assert (key_for(EP, ra) == key_for(EP, rb)) == ((ra.prompt, ra.params()) == (rb.prompt, rb.params()))


def test_info_and_clear(cache):
    cache.put("a", gen(), model="m1", url="u")
    cache.put("b", gen(), model="m1", url="u")
    cache.put("c", gen(), model="m2", url="u")
    cache.put("c", gen("again"), model="m2", url="u")  # overwrite, not a second row
    info = cache.info()
    assert info["entries"] == 3 and info["models"] == {"m1": 2, "m2": 1}
    assert info["size_bytes"] > 0 and info["path"] == str(cache.path)
    assert cache.clear() == 3
    assert cache.info()["entries"] == 0 and cache.get("a") is None


def test_default_location_honours_audit_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("AUDIT_CACHE_DIR", str(tmp_path / "x"))
    assert default_cache_path() == tmp_path / "x" / "generations.sqlite"
    c = GenerationCache()
    assert c.path == tmp_path / "x" / "generations.sqlite" and c.path.exists()
    c.close()
    monkeypatch.delenv("AUDIT_CACHE_DIR")
    assert default_cache_path().parts[-3:] == (".cache", "audit", "generations.sqlite")


def test_wal_mode(cache):
    assert cache._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_many_threads_writing_at_once(cache):
    def work(t):
        for i in range(25):
            cache.put(f"{t}-{i}", gen(f"{t}-{i}"))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cache) == 200 and cache.get("7-24").text == "7-24"


def test_corrupt_file_is_a_clear_input_error(tmp_path):
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not a database, just junk " * 100)
    with pytest.raises(InputError) as err:
        GenerationCache(bad)
    text = str(err.value)
    assert str(bad) in text and "not a usable SQLite database" in text and "AUDIT_CACHE_DIR" in text


def test_locked_database_is_a_clear_server_error(tmp_path):
    path = tmp_path / "locked.sqlite"
    c = GenerationCache(path, busy_timeout_s=0.1)
    other = sqlite3.connect(str(path), isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(ServerError, match="locked by another process"):
            c.put("k", gen())
    finally:
        other.execute("ROLLBACK")
        other.close()
    c.put("k", gen())
    assert c.get("k") is not None
    c.close()


def test_unreadable_row_is_a_miss_not_a_crash(cache):
    cache.put("k", gen())
    cache._conn.execute("UPDATE generations SET payload = '{broken' WHERE key = 'k'")
    assert cache.get("k") is None
