"""Robustness of live runs: misbehaving model servers (127.0.0.1 only, bounded requests), hostile prompt templates,
secrets a server echoes back, terminal escapes in server answers, and hostile code under the code_exec scorer.

A server failure is exit 3 with a fix that fits the cause and names real claim fields; a bad template or dataset
is exit 2 naming the template; nothing from a server reaches the terminal raw or the cache with a key in it.
Bounds and helpers: see ``test_robustness.py``.
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import yaml

from conftest import write_jsonl
from servers import CLOSE, RESET, FakeServer, free_port, hang, raw, status, trickle
from test_robustness import bounded, check, cli, located  # noqa: F401 - bounded is an autouse fixture


@pytest.fixture
def serve():
    started: list[FakeServer] = []

    def make(*args, **kwargs) -> FakeServer:
        kwargs.setdefault("max_requests", 40)
        s = FakeServer(*args, **kwargs).start()
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


def live_claim(tmp_path: Path, url: str, *, prompt: str = "Q: {{ question }}\nA:", target: str = "{{ answer }}",
               rows: list | None = None, budget: int = 8, **arm) -> Path:
    write_jsonl(tmp_path / "data.jsonl", rows if rows is not None else
                [{"id": f"q{i}", "question": f"1+{i}", "answer": str(1 + i)} for i in range(4)])
    a = {"endpoint": url, "model": "fake", "max_retries": 0, "timeout_s": 5} | arm
    c = {"claim": {"title": "live robustness", "settings": {"max_tokens": budget}},
         "arms": {"baseline": a, "treatment": a | {"prompt": "Question: {{ question }}\nA:"}},
         "task": {"dataset": "data.jsonl", "prompt": prompt, "target": target},
         "perturbations": {"scorings": ["exact"]}, "options": {"resamples": 1000}}
    p = tmp_path / "claim.yaml"
    p.write_text(yaml.safe_dump(c, sort_keys=False))
    return p


# (id, server script, arm settings, needles)
SERVER_CASES = [
    ("429-forever", dict(default=status(429, retry_after="0")), {"max_retries": 1},
     ["HTTP 429", "rate-limiting", "arms.baseline.max_concurrency", "arms.baseline.max_retries"]),
    ("500-forever", dict(default=status(500, b"kaboom")), {"max_retries": 1},
     ["HTTP 500", "kaboom", "check its log", "arms.baseline.max_retries"]),
    ("503-retry-after", dict(default=status(503, retry_after="0")), {},
     ["HTTP 503", "check its log"]),
    ("malformed-json", dict(default=raw(b"{not json")), {},
     ["malformed JSON", "not with OpenAI-style completions", "arms.baseline.endpoint", "arms.baseline.api"]),
    ("html-answer", dict(default=raw(b"<html><body>gateway</body></html>")), {},
     ["malformed JSON", "not with OpenAI-style completions"]),
    ("no-choices", dict(default=raw(b'{"object": "text_completion"}')), {},
     ["has no choices", "not with OpenAI-style completions"]),
    ("choices-not-list", dict(default=raw(b'{"choices": {"text": "x"}}')), {},
     ["has no choices"]),
    ("text-not-string", dict(default=raw(b'{"choices": [{"text": ["x"]}]}')), {},
     ["has no text"]),
    ("json-list", dict(default=raw(b"[1, 2]")), {}, ["response is list, not a JSON object"]),
    ("401", dict(default=status(401, b"unauthorized")), {},
     ["HTTP 401", "arms.baseline.api_key_env"]),
    ("404", dict(default=status(404, b"no such route")), {},
     ["HTTP 404", "arms.baseline.endpoint", "arms.baseline.model"]),
    ("400", dict(default=status(400, b"context length exceeded")), {},
     ["HTTP 400", "rejected the request", "arms.baseline.model"]),
    ("reset-mid-body", dict(default=RESET), {}, ["connection broke", "re-running resumes"]),
    ("closed-without-answer", dict(default=CLOSE), {}, ["connection broke"]),
    ("hang", dict(default=hang(30)), {"timeout_s": 1},
     ["no complete answer within timeout_s = 1 s", "arms.baseline.timeout_s"]),
    ("trickle-1-byte-per-s", dict(default=trickle(0.5)), {"timeout_s": 1.5},
     ["no complete answer within timeout_s = 1.5 s", "a deadline for the whole request"]),
]


@pytest.mark.parametrize("case", SERVER_CASES, ids=[c[0] for c in SERVER_CASES])
def test_misbehaving_server_exits_3_with_a_fix_for_the_cause(serve, tmp_path, case):
    name, script, arm, needles = case
    srv = serve(**script)
    p = live_claim(tmp_path, srv.url, **arm)
    out = check(cli("verify", p, "--no-cache"), 3, "baseline arm (variant 'default', budget 8)",
                f"{srv.url}/completions", "fix:", *needles)
    assert "--endpoint" not in out and "is the server running" not in out
    assert srv.n_generation_hits <= 8


def test_trickling_server_is_cut_off_by_the_deadline(serve, tmp_path):
    import time

    srv = serve(default=trickle(0.2))
    p = live_claim(tmp_path, srv.url, timeout_s=1)
    t0 = time.monotonic()
    check(cli("verify", p, "--no-cache"), 3, "within timeout_s = 1 s")
    assert time.monotonic() - t0 < 10


def test_connection_refused(tmp_path):
    port = free_port()
    p = live_claim(tmp_path, f"http://127.0.0.1:{port}/v1")
    out = check(cli("verify", p, "--no-cache"), 3, f"127.0.0.1:{port}", "nothing accepts connections there",
                "start the model server", "arms.baseline.endpoint")
    assert "check its log" not in out


def test_server_error_body_cannot_drive_the_terminal(serve, tmp_path):
    srv = serve(default=status(500, b"\x1b]0;pwned\x07\x1b[2J boom"))
    out = check(cli("verify", live_claim(tmp_path, srv.url), "--no-cache"), 3, "boom")
    assert "\x1b" not in out and "\x07" not in out


def test_cursor_is_shown_again_after_a_server_failure(serve, tmp_path, monkeypatch):
    """Progress bars hide the cursor on a terminal; an exit-3 failure mid-run must show it again."""
    import click._termui_impl as termui

    from click.testing import CliRunner

    from audit.cli import main

    monkeypatch.setattr(termui, "isatty", lambda f: True)
    monkeypatch.setattr("audit.cli_live._stderr_is_terminal", lambda: True)  # the bars, not the lines of a CI log
    srv = serve(default=status(500))
    res = CliRunner().invoke(main, ["verify", str(live_claim(tmp_path, srv.url)), "--no-cache"], color=True)
    assert res.exit_code == 3, res.output
    hidden, shown = res.output.rfind("\x1b[?25l"), res.output.rfind("\x1b[?25h")
    assert hidden >= 0 and shown > hidden, repr(res.output)


def test_key_echoed_by_the_server_never_reaches_cache_report_or_terminal(serve, tmp_path, monkeypatch):
    key = "sk-robust-SECRET-0123456789"
    monkeypatch.setenv("AUDIT_ROBUST_KEY", key)
    srv = serve(echo_auth_in_completions=True)
    p = live_claim(tmp_path, srv.url, api_key_env="AUDIT_ROBUST_KEY", budget=200)
    cache = tmp_path / "gen.sqlite"
    res = cli("verify", p, "--cache", cache, "--out", tmp_path / "out", "--fail-on", "none")
    out = check(res, 0)
    assert srv.hits and srv.hits[0].headers.get("Authorization") == f"Bearer {key}"  # it was sent, and echoed
    assert key not in out
    with sqlite3.connect(cache) as db:
        payloads = [r[0] for r in db.execute("SELECT payload FROM generations")]
    assert payloads and all(key not in x for x in payloads)
    assert any("Bearer ***" in json.loads(x)["text"] for x in payloads)
    for f in (tmp_path / "out").iterdir():
        assert key not in f.read_text(encoding="utf-8"), f
    for suffix in ("", "-wal"):
        f = Path(str(cache) + suffix)
        if f.exists():
            assert key.encode() not in f.read_bytes()


def test_key_echoed_in_an_error_body_is_scrubbed(serve, tmp_path, monkeypatch):
    key = "sk-robust-SECRET-error-42"
    monkeypatch.setenv("AUDIT_ROBUST_KEY", key)
    srv = serve(default=status(500, b"bad request"), echo_auth_in_errors=True)
    out = check(cli("verify", live_claim(tmp_path, srv.url, api_key_env="AUDIT_ROBUST_KEY"), "--no-cache"), 3,
                "auth=Bearer ***")
    assert key not in out


def test_missing_key_variable_is_an_input_error(serve, tmp_path, monkeypatch):
    monkeypatch.delenv("AUDIT_ROBUST_NOPE", raising=False)
    srv = serve()
    out = check(cli("verify", live_claim(tmp_path, srv.url, api_key_env="AUDIT_ROBUST_NOPE"), "--no-cache"), 2,
                "environment variable AUDIT_ROBUST_NOPE is not set")
    assert "fix:" in out and srv.n_generation_hits == 0


# ---------------------------------------------------------------------------------------------------------------
# hostile templates and datasets (exit 2 naming the template, before any request)

TEMPLATE_CASES = [
    ("range-overflow", {"prompt": "{{ range(10**9)|list }}"}, ["OverflowError", "Range too big"], "task.prompt"),
    ("repeat-200MB", {"prompt": "{{ 'a' * 200000000 }}"},
     ["'*' repetition would hold 200,000,000", "the cap on a rendered prompt is 1,000,000"], "task.prompt"),
    ("loop-output", {"prompt": "{% for i in range(100000) %}{{ 'abcdefghij' * 100 }}{% endfor %}"},
     ["passes 1,000,000 characters"], "task.prompt"),
    ("center-1e9", {"prompt": "{{ question|center(10**9) }}"}, ["the center filter would hold"], "task.prompt"),
    ("format-width", {"prompt": "{{ '%999999999d' % 1 }}"}, ["a format width or precision of 999999999"],
     "task.prompt"),
    ("str-format-width", {"prompt": "{{ '{:>999999999}'.format(question) }}"}, ["format width"], "task.prompt"),
    ("ljust", {"prompt": "{{ question.ljust(10**9) }}"}, ["str.ljust() would hold"], "task.prompt"),
    ("replace-blowup", {"prompt": "{{ ('a' * 900000)|replace('a', 'a' * 900000) }}"}, ["the replace filter"],
     "task.prompt"),
    ("pow", {"prompt": "{{ 7 ** 10000000 }}"}, ["has more than 100,000 bits"], "task.prompt"),
    ("zero-division", {"prompt": "{{ 1 / 0 }}"}, ["ZeroDivisionError"], "task.prompt"),
    ("undefined-field", {"prompt": "{{ nope }}"}, ["'nope' is undefined", "the row's keys are"], "task.prompt"),
    ("attribute-walk", {"prompt": "{{ question.__class__.__mro__ }}"}, ["cannot render"], "task.prompt"),
    ("lipsum", {"prompt": "{{ lipsum(1000000) }}"}, ["'lipsum' is undefined"], "task.prompt"),
    ("target-error", {"target": "{{ answer|int / 0 }}"}, ["ZeroDivisionError"], "task.target"),
    ("arm-prompt", {"arm_prompt": "{{ range(10**9)|list }}"}, ["OverflowError"], "arms.treatment.prompt"),
]


@pytest.mark.parametrize("case", TEMPLATE_CASES, ids=[c[0] for c in TEMPLATE_CASES])
def test_hostile_template(serve, tmp_path, case):
    name, kw, needles, field = case
    srv = serve()
    p = live_claim(tmp_path, srv.url, **{k: v for k, v in kw.items() if k in ("prompt", "target")})
    if "arm_prompt" in kw:
        c = yaml.safe_load(p.read_text())
        c["arms"]["treatment"]["prompt"] = kw["arm_prompt"]
        p.write_text(yaml.safe_dump(c))
    out = check(cli("verify", p, "--no-cache"), 2, *needles)
    located(out, tmp_path / "data.jsonl", 1, field)
    assert srv.n_generation_hits == 0


def test_endless_template_loop_is_stopped(serve, tmp_path, monkeypatch):
    import audit.prompts

    monkeypatch.setattr(audit.prompts, "MAX_RENDER_S", 1.0)
    srv = serve()
    p = live_claim(tmp_path, srv.url,
                   prompt="{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}")
    out = check(cli("verify", p, "--no-cache"), 2, "rendering took longer than 1 s", "stopped at this row")
    located(out, tmp_path / "data.jsonl", 1, "task.prompt")


DATASET_CASES = [
    ("id-list", [{"id": ["q0"], "question": "1", "answer": "1"}], ["not a JSON array"], 1),
    ("id-null", [{"id": None, "question": "1", "answer": "1"}], ["not a JSON null"], 1),
    ("id-missing", [{"question": "1", "answer": "1"}], ["row has no 'id' field"], 1),
    ("nan", b'{"id": "q0", "question": NaN, "answer": "1"}\n', ["NaN is not valid JSON"], 1),
    ("latin1", b'{"id": "q0", "question": "caf\xe9", "answer": "1"}\n', ["not valid UTF-8"], 1),
    ("empty", b"", ["the dataset has no items"], None),
    ("duplicate-id", [{"id": "q0", "question": "1", "answer": "1"}] * 2, ["repeats line 1"], 2),
]


@pytest.mark.parametrize("case", DATASET_CASES, ids=[c[0] for c in DATASET_CASES])
def test_bad_dataset(serve, tmp_path, case):
    name, rows, needles, line = case
    srv = serve()
    p = live_claim(tmp_path, srv.url)
    data = tmp_path / "data.jsonl"
    if isinstance(rows, bytes):
        data.write_bytes(rows)
    else:
        write_jsonl(data, rows)
    out = check(cli("verify", p, "--no-cache"), 2, str(data), *needles)
    if line is not None:
        assert f"{data}:{line}:" in out
    assert srv.n_generation_hits == 0


# ---------------------------------------------------------------------------------------------------------------
# code_exec: hostile submissions get nothing, are killed, and the audit continues


HOSTILE = {
    # each passes (scores 1) only if it got what it was after
    "read-proc-environ": ("import glob\nseen = ''\nfor p in glob.glob('/proc/*/environ'):\n"
                          "    try:\n        seen += open(p, 'rb').read().decode('latin-1')\n"
                          "    except OSError:\n        pass\nassert 'AUDIT_SANDBOX_CANARY' in seen\n"),
    "read-parent-environ": ("import os\nassert b'AUDIT_SANDBOX_CANARY' in open('/proc/%d/environ' % os.getppid(),"
                            " 'rb').read()\n"),
    "read-outside-file": "assert open({outside!r}).read().startswith('file-secret')\n",
    "open-socket": ("import sys\nfor m in ('socket', '_socket'):\n    sys.modules.pop(m, None)\nimport _socket\n"
                    "s = _socket.socket()\ns.settimeout(1)\ns.connect(('127.0.0.1', {port}))\n"),
    "fork-repeatedly": ("import sys\nsys.modules.pop('posix', None)\nimport posix\nkids = 0\nfor _ in range(50):\n"
                        "    if posix.fork() == 0:\n        import time\n        time.sleep(60)\n    kids += 1\n"
                        "assert kids == 50\n"),
    "sleep-past-limit": "import time\ntime.sleep(60)\n",
}


@pytest.fixture
def bait(tmp_path, monkeypatch):
    """What hostile code would like to reach: a secret in the environment, a file outside its folder, and a port
    listening on 127.0.0.1. Yields (file, port)."""
    import socket

    monkeypatch.setenv("AUDIT_SANDBOX_CANARY", "sk-canary-value")
    outside = tmp_path / "outside.txt"
    outside.write_text("file-secret-value-77")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        yield outside, listener.getsockname()[1]
    finally:
        listener.close()


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs Linux /proc")
def test_hostile_code_gets_nothing_and_the_audit_continues(tmp_path, bait):
    import time

    from audit import code_exec

    outside, port = bait
    ok = "def f():\n    return 1\n"
    rows_b, rows_t = [], []
    for i, (name, body) in enumerate(HOSTILE.items()):
        test = body.format(outside=str(outside), port=port)
        rows_b.append({"id": name, "output": "def f():\n    return 0\n", "target": "assert f() == 1\n"})
        rows_t.append({"id": name, "output": ok, "target": test})
    for arm, rows in (("base", rows_b), ("treat", rows_t)):
        write_jsonl(tmp_path / f"logs/{arm}_16.jsonl", rows)
    c = {"claim": {"title": "hostile code", "settings": {"max_tokens": 16, "scoring": "pass"}},
         "samples": {"format": "jsonl", "baseline": {16: "logs/base_16.jsonl"},
                     "treatment": {16: "logs/treat_16.jsonl"}},
         "scorers": {"pass": {"kind": "code_exec", "enabled": True, "timeout_s": 2, "memory_mb": 256}},
         "options": {"resamples": 1000}}
    p = tmp_path / "claim.yaml"
    p.write_text(yaml.safe_dump(c))
    t0 = time.monotonic()
    res = cli("verify", p, "--json", "--fail-on", "none")
    out = check(res, 0)
    report = json.loads(out)
    (cell,) = [c for c in report["cells"] if c["scoring"] == "pass"]
    assert cell["treatment"] == 0.0 and cell["baseline"] == 0.0, cell  # every hostile program failed
    assert time.monotonic() - t0 < 25
    # nothing the programs started is left running
    leftovers = [d for d in Path("/proc").iterdir() if d.name.isdigit() and _is_guard(d)]
    assert not leftovers
    print("sandbox:", code_exec.sandbox_mode())


def _is_guard(d: Path) -> bool:
    try:
        return b"_audit_guard.py" in (d / "cmdline").read_bytes()
    except OSError:
        return False


@pytest.mark.parametrize("name", list(HOSTILE))
def test_each_hostile_program_is_refused_by_the_sandbox(bait, name):
    from audit.code_exec import Limits, run_program, sandbox_mode

    if sandbox_mode() != "box" and name in ("read-outside-file", "read-proc-environ", "read-parent-environ"):
        pytest.skip("without the box the program can read what the user running audit can read (documented)")
    outside, port = bait
    r = run_program(HOSTILE[name].format(outside=str(outside), port=port), Limits(timeout_s=2.0, memory_mb=256))
    assert not r.passed, (name, r)
    assert r.duration_s < 5
    if name == "sleep-past-limit":
        assert r.status == "timeout"
    assert "sk-canary-value" not in r.stderr and "file-secret-value-77" not in r.stderr
