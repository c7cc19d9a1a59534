"""``content: null`` / ``text: null`` / empty outputs: one rule for live runs and replayed logs — recorded as no output
with its cause, counted as no answer, read as probable budget exhaustion where the finish reason is absent or
"length"; never a silent 0 and never a server failure when the server said why."""
from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from audit.cli import main
from audit.generation.types import Generation, MalformedResponse, parse_response
from audit.records import build_records
from conftest import write_jsonl
from servers import FakeServer, raw


def chat(content, finish="length") -> dict:
    choice = {"index": 0, "message": {"role": "assistant", "content": content}}
    if finish is not None:
        choice["finish_reason"] = finish
    return {"choices": [choice], "usage": {"prompt_tokens": 3, "completion_tokens": 8}}


def test_parse_response_records_null_content_and_null_text_with_their_cause():
    g = parse_response(chat(None), "chat", 0.1)
    assert (g.text, g.no_output, g.finish_reason) == ("", "null content", "length")
    g = parse_response({"choices": [{"text": None, "finish_reason": "length"}]}, "completions", 0.1)
    assert (g.text, g.no_output) == ("", "null text")
    assert parse_response(chat("12", "stop"), "chat", 0.1).no_output is None
    # no text and no finish reason: the server did not say why, a malformed response (retried, then exit 3)
    with pytest.raises(MalformedResponse, match="no finish_reason"):
        parse_response({"choices": [{"text": None}]}, "completions", 0.1)


def test_the_cause_survives_the_cache(tmp_path):
    from audit.generation.cache import _decode, _encode

    g = Generation(text="", finish_reason="length", prompt_tokens=1, completion_tokens=8, latency_s=0.1,
                   no_output="null content")
    assert _decode(_encode(g)).no_output == "null content"


def test_records_derive_empty_output_and_read_it_as_budget_exhaustion():
    import pandas as pd

    def rows(arm, texts, finish, causes):
        return pd.DataFrame({"arm": arm, "item_id": ["a", "b", "c"], "variant": "default", "budget": 8,
                             "scoring": "exact", "score": [0.0, 0.0, 1.0], "text": texts, "target": "1",
                             "finish_reason": finish, "no_output": causes, "source": arm, "line": [1, 2, 3]})

    rec = build_records([rows("baseline", ["", "  ", "1"], [None, "stop", None], [None, None, None]),
                         rows("treatment", ["", "1", "1"], ["length", None, None], ["null content", None, None])],
                        []).with_truncation()
    p = rec.paired("exact", 8)

    def causes(col):
        return [x if isinstance(x, str) else None for x in p.frame[col]]

    assert causes("no_output_b") == ["empty output", "empty output", None]
    assert causes("no_output_t") == ["null content", None, None]
    _, flags, evidence = rec.truncation("baseline")
    assert list(flags[8][:2]) == [1.0, 0.0]  # no finish reason: budget exhaustion; "stop": the model chose to stop
    assert evidence[8]["no output, no finish reason"] == 1


def _claim(tmp_path, base_url: str, treat_url: str) -> str:
    write_jsonl(tmp_path / "data.jsonl", [{"id": f"q{i}", "question": f"1+{i}", "answer": str(1 + i)}
                                          for i in range(6)])
    arm = {"model": "fake", "api": "chat", "max_retries": 0, "timeout_s": 5}
    c = {"claim": {"title": "null content", "settings": {"max_tokens": 8, "scoring": "answer"}},
         "arms": {"baseline": arm | {"endpoint": base_url}, "treatment": arm | {"endpoint": treat_url}},
         "task": {"dataset": "data.jsonl", "prompt": "Q: {{ question }}\nA:", "target": "{{ answer }}"},
         "scorers": {"answer": {"regex": "(\\d+)"}},
         "options": {"resamples": 1000}}
    (tmp_path / "claim.yaml").write_text(yaml.safe_dump(c))
    return str(tmp_path / "claim.yaml")


def test_live_null_content_is_no_output_not_a_failure(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIT_CACHE_DIR", str(tmp_path / "cache"))
    body = json.dumps(chat(None)).encode()
    with FakeServer(default=raw(body), max_requests=40) as nulls, FakeServer(max_requests=40) as ok:
        res = CliRunner().invoke(main, ["verify", _claim(tmp_path, ok.url, nulls.url), "--out", str(tmp_path / "o")])
    assert res.exit_code in (0, 1), res.output  # never 3: the server said why (finish_reason length)
    rep = json.loads((tmp_path / "o/report.json").read_text())
    (f,) = [f for f in rep["findings"] if f["code"] == "no_output"]
    assert f["statistic"]["no_output_treatment"] == 6 and f["statistic"]["probable_budget_exhaustion"] == 6
    rows = {(r["arm"], r["scoring"]): r for r in rep["rate_tables"]["no_answer"]}
    assert rows[("treatment", "answer")]["count"] == 6
    assert "6 null content, finish_reason length" in rows[("treatment", "answer")]["reason"]
    (cell,) = rep["cells"]
    assert cell["treatment"] == 0.0
