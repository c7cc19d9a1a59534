"""The Ray executor (--executor ray) and several endpoints per arm, against loopback fake servers.

One local Ray serves the whole module (started by the first run, stopped at the end), as one audit's stages share
it. The fake servers answer deterministically (``echo:<prompt>``, one token per character), so outputs must be equal
item by item whatever the executor, the batching or the endpoint."""

from __future__ import annotations

import os
import threading

import pytest
import yaml

from audit.claim import load_claim
from audit.errors import InputError, ServerError
from audit.generation.cache import GenerationCache
from audit.generation.http import run_generations
from audit.generation.types import Endpoint, GenerationRequest
from audit.live import run_live
from audit.verify import verify
from servers import FakeServer

try:
    import ray  # noqa: F401

    from audit.generation.ray_executor import RayExecutor, shutdown

    HAVE_RAY = True
except ImportError:  # pragma: no cover - make test installs the ray extra
    HAVE_RAY = False


@pytest.fixture(scope="module")
def ray_session():
    if not HAVE_RAY:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("ray is not installed (make test installs the ray extra)")
        pytest.skip("ray is not installed: pip install -e '.[ray]'")
    yield RayExecutor(actors=2, batch_size=4)
    shutdown()


def _claim(tmp_path, url: str, replicas=(), n: int = 24, name: str = "claim.yaml"):
    data = tmp_path / "items.jsonl"
    data.write_text("".join(f'{{"id": "q{i:02d}", "question": "{i} + {i}", "answer": "{2 * i}"}}\n' for i in range(n)))
    arm = {"endpoint": url, "model": "m", "replicas": list(replicas), "max_concurrency": 3, "max_retries": 2}
    c = {
        "claim": {"title": "ray", "settings": {"max_tokens": 12, "scoring": "exact"}},
        "arms": {"baseline": arm, "treatment": arm | {"prompt": "T {{ question }} ="}},
        "task": {"dataset": str(data), "prompt": "B {{ question }} =", "target": "{{ answer }}", "sweep_check": 2},
        "perturbations": {"max_tokens": [12, 20]},
        "options": {"resamples": 1000},
    }
    p = tmp_path / name
    p.write_text(yaml.safe_dump(c))
    return load_claim(p)


def _rows(records):
    t = records.table.sort_values(["arm", "variant", "budget", "item_id", "scoring"])
    return list(zip(t["arm"], t["budget"], t["item_id"], t["text"], t["finish_reason"], t["completion_tokens"]))


def _keys(cache: GenerationCache) -> set[str]:
    return {r[0] for r in cache._conn.execute("SELECT key FROM generations").fetchall()}


def test_ray_gives_the_default_executors_records_and_cache_keys(ray_session, tmp_path):
    with FakeServer(tokenizer=True, max_requests=400) as srv:
        claim = _claim(tmp_path, srv.url)
        c_default, c_ray = GenerationCache(tmp_path / "a.sqlite"), GenerationCache(tmp_path / "b.sqlite")
        default, st_d = run_live(claim, cache=c_default)
        viaray, st_r = run_live(claim, cache=c_ray, executor=ray_session)
        # the fake server is deterministic: the same outputs item by item, the same keys in both caches
        assert _rows(default) == _rows(viaray) and len(_rows(default)) == 2 * 2 * 24
        assert _keys(c_default) == _keys(c_ray) and len(_keys(c_ray)) > 0
        assert st_d["baseline"].requests == st_r["baseline"].requests
        assert set(viaray.table["served_by"]) == {srv.url}
        # a re-run is served from the cache: no request reaches the server
        hits = srv.n_generation_hits
        again, st = run_live(claim, cache=c_ray, executor=ray_session)
        assert srv.n_generation_hits == hits and st["baseline"].requests == 0 and _rows(again) == _rows(viaray)


def _kill_after(srv: FakeServer, n: int) -> threading.Thread:
    def watch() -> None:
        while srv.n_generation_hits < n and not srv._stopping.is_set():
            threading.Event().wait(0.01)
        srv.stop()

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    return t


def test_a_server_killed_mid_run_loses_no_finished_generation(ray_session, tmp_path):
    reqs = [GenerationRequest(item_id=f"q{i}", prompt=f"prompt {i}", max_tokens=8) for i in range(30)]
    cache = GenerationCache(tmp_path / "c.sqlite")
    srv = FakeServer(max_requests=400, delay=0.05).start()
    port = srv.port
    ep = Endpoint(url=srv.url, model="m", max_concurrency=2, max_retries=1, backoff_base_s=0.05)
    _kill_after(srv, 12)
    with pytest.raises(ServerError) as err:
        run_generations(ep, reqs, cache, label="baseline/default/8", executor=ray_session)
    msg = str(err.value)
    finished = len(_keys(cache))
    # every request the server answered before it died is cached; the run failed its rows, not the dataset
    assert finished >= 12 and finished < 30
    assert f"{30 - finished} of 30 generation(s) failed on the Ray executor" in msg and "re-running resumes" in msg
    with FakeServer(max_requests=400, port=port) as again:
        gens = run_generations(ep, reqs, cache, label="baseline/default/8", executor=ray_session)
        assert again.n_generation_hits == 30 - finished  # only the failed ones are generated
    assert [g.text for g in gens] == [f"echo:prompt {i}"[:8] for i in range(30)]


@pytest.mark.parametrize("use_ray", [False, True], ids=["asyncio", "ray"])
def test_two_endpoints_share_the_load_and_survive_one_killed(ray_session, tmp_path, use_ray):
    with FakeServer(max_requests=400, delay=0.03) as a, FakeServer(max_requests=400, delay=0.03) as b:
        claim = _claim(tmp_path, a.url, replicas=[b.url], n=30)
        _kill_after(b, 10)
        out = verify(claim, cache=GenerationCache(tmp_path / "d.sqlite"), executor=ray_session if use_ray else None)
        table = out.records.table
        served = table.drop_duplicates(["arm", "item_id", "budget"])["served_by"].value_counts().to_dict()
        # both endpoints produced outputs, and every item was generated although one endpoint died mid-run
        assert set(served) == {a.url, b.url} and served[b.url] >= 5
        assert table["text"].notna().all() and len(table.drop_duplicates(["arm", "item_id", "budget"])) == 120
        counts = {arm: run["served_by"] for arm, run in out.report.run.items()}
        assert sum(sum(c.values()) for c in counts.values()) == 120
        assert a.n_generation_hits > b.n_generation_hits >= 10
        # max_concurrency 3 per URL: the Ray actors share it (2 actors × ⌈3/2⌉ slots at most)
        assert max(a.max_in_flight, b.max_in_flight) <= (4 if use_ray else 3)


def test_ray_refuses_the_embedded_model(ray_session):
    ep = Endpoint(url="embedded", model="gemma")
    with pytest.raises(InputError, match="served endpoints"):
        run_generations(ep, [GenerationRequest(item_id="a", prompt="x")], None, executor=ray_session)


def test_cli_ray_address_needs_the_ray_executor(tmp_path):
    from click.testing import CliRunner

    from audit.cli import main

    with FakeServer(max_requests=10) as srv:
        claim = _claim(tmp_path, srv.url)
        res = CliRunner().invoke(main, ["verify", str(claim.path), "--no-cache", "--ray-address", "auto"])
    assert res.exit_code == 2 and "--ray-address needs --executor ray" in res.output
    assert srv.n_generation_hits == 0


def test_the_default_path_never_imports_ray(tmp_path):
    """A live audit on the default executor, in a fresh process: Ray is not imported."""
    import subprocess
    import sys

    code = (
        "import sys; sys.path.insert(0, 'tests')\n"
        "from servers import FakeServer\n"
        "from audit.generation.http import run_generations\n"
        "from audit.generation.types import Endpoint, GenerationRequest\n"
        "from audit.cli import main\n"
        "with FakeServer(max_requests=5) as s:\n"
        "    run_generations(Endpoint(url=s.url, model='m'), [GenerationRequest(item_id='a', prompt='x')], None)\n"
        "assert 'ray' not in sys.modules, 'ray was imported'\n"
        "print('ok')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr


@pytest.mark.live
def test_ray_on_a_real_llama_server_equals_the_default(ray_session, llama_server, tmp_path):
    """The live fixture claim on a real llama.cpp server (started with --n_batch 1, so greedy outputs do not depend on
    request order or batching): the Ray executor gives the default executor's outputs item by item, with the same
    cache keys."""
    from test_live import live_claim, texts

    claim = live_claim(tmp_path, llama_server, limit=4)
    c_default, c_ray = GenerationCache(tmp_path / "a.sqlite"), GenerationCache(tmp_path / "b.sqlite")
    default, _ = run_live(claim, cache=c_default)
    viaray, st = run_live(claim, cache=c_ray, executor=ray_session)
    assert texts(default) == texts(viaray) and len(texts(viaray)) == 2 * 2 * 4
    assert _keys(c_default) == _keys(c_ray) and st["baseline"].derived == 4
