"""Live audits end to end: a real llama.cpp server over HTTP (completions and chat) and the embedded model."""
from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from audit.generation.cache import GenerationCache
from audit.claim import load_claim
from audit.cli import main
from audit.live import run_live
from audit.verify import verify
from conftest import FIXTURES, require_live

pytestmark = pytest.mark.live


def live_claim(tmp_path, endpoint: str, api: str = "completions", budgets=(4, 12), limit: int = 5, **arm) -> object:
    arm_cfg = {"endpoint": endpoint, "api": api, "model": "gemma-3-270m", "n_batch": 1} | arm
    if endpoint != "embedded":
        arm_cfg.pop("n_batch")
    c = {
        "claim": {"title": "live", "settings": {"max_tokens": budgets[0], "scoring": "first-number"}},
        "arms": {"baseline": arm_cfg,
                 "treatment": arm_cfg | {"prompt": "Q: What is {{ question }}? Check it twice.\nA:"}},
        "task": {"dataset": str(FIXTURES / "data/add_small.jsonl"), "prompt": "Q: What is {{ question }}?\nA:",
                 "target": "{{ answer }}", "stop": ["\n"], "limit": limit, "sweep_check": 2},
        "perturbations": {"max_tokens": list(budgets), "scorings": ["first-number", "last-number"]},
        "options": {"resamples": 1000},
    }
    p = tmp_path / f"claim-{api}-{'embedded' if endpoint == 'embedded' else 'http'}.yaml"
    p.write_text(yaml.safe_dump(c))
    return load_claim(p)


def texts(records):
    t = records.table
    t = t[t["scoring"] == "first-number"].sort_values(["arm", "budget", "item_id"])
    return list(zip(t["arm"], t["budget"], t["item_id"], t["text"]))


@pytest.mark.parametrize("api", ["completions", "chat"])
def test_http_audit_equals_embedded(llama_server, tmp_path, api):
    cache = GenerationCache(tmp_path / "cache.sqlite")
    http, stats = run_live(live_claim(tmp_path, llama_server, api), cache=cache)
    emb, _ = run_live(live_claim(tmp_path, "embedded", api), cache=cache)
    assert texts(http) == texts(emb)
    assert len(texts(http)) == 2 * 2 * 5
    # one run per arm at the largest budget, the smaller one derived and spot-checked against real runs
    assert stats["baseline"].derived == 5 and stats["baseline"].sweep_checked == 2
    assert stats["baseline"].sweep_mismatches == []
    assert http.settings["baseline"][4]["budget_source"].startswith("derived from the 12-token run")


def test_cached_rerun_costs_no_model_calls(llama_server, tmp_path):
    claim = live_claim(tmp_path, llama_server)
    cache = GenerationCache(tmp_path / "cache.sqlite")
    first = verify(claim, cache=cache)
    again = verify(claim, cache=cache)
    assert sum(r["requests"] for r in first.report.run.values()) > 0
    assert all(r["requests"] == 0 for r in again.report.run.values())
    assert [c.model_dump() for c in first.report.cells] == [c.model_dump() for c in again.report.cells]


def test_dead_server_exits_3_with_fix(tmp_path):
    require_live()
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    claim = live_claim(tmp_path, f"http://127.0.0.1:{port}/v1")
    res = CliRunner().invoke(main, ["verify", str(claim.path), "--no-cache"])
    assert res.exit_code == 3, res.output
    assert f"127.0.0.1:{port}" in res.output and "fix:" in res.output


def test_api_key_never_reaches_the_report(llama_server, tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIT_TEST_KEY", "sk-very-secret-123")
    claim = live_claim(tmp_path, llama_server, api_key_env="AUDIT_TEST_KEY")
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["verify", str(claim.path), "--out", str(out),
                                    "--cache", str(tmp_path / "c.sqlite")])
    assert res.exit_code in (0, 1), res.output
    for f in out.iterdir():
        assert "sk-very-secret-123" not in f.read_text()
    assert "sk-very-secret-123" not in (tmp_path / "c.sqlite").read_bytes().decode("latin-1")
    report = json.loads((out / "report.json").read_text())
    assert report["arms"]["baseline"]["4"]["endpoint"] == llama_server
