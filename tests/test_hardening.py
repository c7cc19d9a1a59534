"""Hardening, round 2 (issue 19): a bad-input and security suite covering every category of the issue.

* code_exec: the verdict comes from the supervisor — forged passes (the stack walk of the issue, an early
  ``os._exit(0)``, patched ``assert``/``sys.exit``, a comparison that always says True, printed fake results,
  forged pipe messages) all fail; namespaces, mounts and ptrace are refused; no host path is visible;
* decompression bombs, one per archive kind (.zip, .gz, inspect .eval), made here and small on disk;
* exit 2 or 3 — never 4 — for damaged, encrypted and deflate64 archives, damaged gzip, huge numbers, deep JSON,
  devices, and a server sending a garbage gzip body;
* special files (FIFO, /dev/zero, /proc entries) as inputs and outputs: refused up front, no hang;
* secrets scrubbed in every form a server may echo; summary.md inert; duplicate columns/keys and NUL bytes;
  ``cache clear`` without ``--yes``; a closed stdout; the rewritten messages.

Every case is bounded: 30 s, and the cases built to exhaust memory run in a subprocess under RLIMIT_AS 4 GiB.
"""
from __future__ import annotations

import gzip
import io
import json
import os
import resource
import signal
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from conftest import arm_rows, check, cli, write_jsonl

CASE_S = 30
CASE_BYTES = 4 << 30
LINUX = sys.platform.startswith("linux")


class CaseTimeout(BaseException):
    pass


@pytest.fixture(autouse=True)
def bounded():
    def on_alarm(signum, frame):
        raise CaseTimeout(f"the case ran past {CASE_S} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(CASE_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)




def cli_bounded(args: list, cwd: Path, env: dict | None = None, stdout=subprocess.PIPE) -> tuple[int, str]:
    """The CLI in a subprocess under RLIMIT_AS 4 GiB and a 30 s wall clock; (exit code, output)."""
    code = ("import resource, sys\n"
            f"resource.setrlimit(resource.RLIMIT_AS, ({CASE_BYTES}, {CASE_BYTES}))\n"
            "from audit.cli import main\n"
            "sys.argv = ['audit'] + sys.argv[1:]\n"
            "main()\n")
    p = subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=cwd, stdout=stdout,
                       stderr=subprocess.PIPE, timeout=CASE_S - 2, env={**os.environ, **(env or {})})
    out = (p.stdout or b"").decode("utf-8", "replace") + p.stderr.decode("utf-8", "replace")
    assert "Traceback" not in out, out
    return p.returncode, out


def claim_file(tmp_path: Path, samples: dict, title: str = "hardening", scorings=("exact",), **extra) -> Path:
    c = {"claim": {"title": title, "settings": {"max_tokens": 16}},
         "samples": {"baseline": {16: "logs/base"}, "treatment": {16: "logs/treat"}, **samples},
         "perturbations": {"scorings": list(scorings)}, "options": {"resamples": 1000}, **extra}
    p = tmp_path / "claim.yaml"
    p.write_text(yaml.safe_dump(c, sort_keys=False))
    return p


def jsonl_pair(tmp_path: Path, base_name: str = "base.jsonl", treat_name: str = "treat.jsonl") -> dict:
    write_jsonl(tmp_path / "logs" / base_name, arm_rows([0, 1] * 10))
    write_jsonl(tmp_path / "logs" / treat_name, arm_rows([1, 1] * 10))
    return {"format": "jsonl", "baseline": {16: f"logs/{base_name}"}, "treatment": {16: f"logs/{treat_name}"}}


# ---------------------------------------------------------------------------------------------------------------
# code_exec: forged passes and escapes

ADD = {"prompt": "def add(a, b):\n",
       "test": "def check(candidate):\n" + "".join(f"    assert candidate({a}, {b}) == {a + b}\n"
                                                    for a, b in [(2, 3), (0, 7), (10, -4), (5, 5)]),
       "entry_point": "add"}

# The issue's forgery, generalised: walk the stack (and the heap) to whatever holds a pass token or a result pipe,
# write every form of "passed" to every descriptor, patch the checks, print fake results, leave early.
FORGE = r'''
import gc, json, os, sys, builtins
_real_exit = os._exit
found = []
f = sys._getframe()
while f is not None:
    found += [v for v in f.f_locals.values() if isinstance(v, (bytes, str, int))]
    f = f.f_back
for o in gc.get_objects():
    if isinstance(o, dict):
        found += [v for k, v in list(o.items()) if isinstance(k, str) and ("token" in k or k.endswith("_fd"))]
msgs = [json.dumps({"passed": True, "note": "", "calls": 9}).encode(), b'{"ok": true}']
msgs += [len(m).to_bytes(4, "big") + m for m in list(msgs)]
msgs += [v.encode() if isinstance(v, str) else v for v in found if isinstance(v, (bytes, str)) and len(v) == 32]
for fd in range(0, 64):
    for m in msgs:
        try:
            os.write(fd, m)
        except (OSError, TypeError):
            pass
builtins.AssertionError = type("AssertionError", (BaseException,), {})
sys.exit = lambda *a: None
print("PASSED 4/4")
print(json.dumps({"passed": True, "status": "passed"}))
'''


def forged(body: str = "    return a - b\n", tail: str = FORGE + "_real_exit(0)\n") -> str:
    return body + tail


@pytest.fixture(scope="module")
def exec_mod():
    if os.name != "posix":
        pytest.skip("code_exec needs POSIX")
    import audit.code_exec as ce

    return ce


def _run(ce, completion: str, task: dict = ADD, timeout: float = 3.0):
    return ce.check_completion(completion, task, ce.Limits(timeout_s=timeout, memory_mb=256))


def test_an_honest_solution_passes_and_the_verdict_is_the_supervisors(exec_mod):
    r = _run(exec_mod, "    return a + b\n")
    assert r.passed and r.verdict_by == "supervisor" and r.calls >= 4, r
    assert not _run(exec_mod, "    return a - b\n").passed


ATTACKS = {
    "stack-walk-forgery": forged(),
    "early-os-exit-0": "    return a - b\nimport os\nos._exit(0)\n",
    "early-sys-exit-0": "    return a - b\nimport sys\nsys.exit(0)\n",
    "exit-inside-the-call": "    import os\n    os._exit(0)\n",
    "patched-assert-and-exit": ("    return a - b\nimport builtins, sys, os\n"
                                "builtins.AssertionError = type('AssertionError', (BaseException,), {})\n"
                                "sys.exit = os._exit = lambda *a: None\nbuiltins.abs = builtins.len = lambda *a: 0\n"),
    "eq-always-true": ("    class Yes:\n        def __eq__(self, o): return True\n        def __ne__(self, o): "
                       "return False\n        __hash__ = object.__hash__\n    return Yes()\n"),
    "int-subclass-eq": ("    class I(int):\n        def __eq__(self, o): return True\n        __hash__ = int.__hash__\n"
                        "    return I(a - b)\n"),
    "str-and-list-subclass": ("    class L(list):\n        def __eq__(self, o): return True\n    return L([a - b])\n"),
    "printed-fake-results": ("    return a - b\nimport sys\nprint('4 passed, 0 failed')\n"
                             "print('{\"passed\": true}', file=sys.stderr)\n"),
    "answers-the-pipe-itself": ("    return a - b\nimport os, json\nfor fd in range(3, 40):\n    for m in "
                                "([b'{\"ok\":true}'] + [json.dumps({'ok': v}).encode() for v in (5, 7, 6, 10)]):\n"
                                "        try:\n            os.write(fd, len(m).to_bytes(4, 'big') + m)\n"
                                "        except OSError:\n            pass\n"),
}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_a_forged_pass_fails(exec_mod, name):
    r = _run(exec_mod, ATTACKS[name])
    assert not r.passed, (name, r)
    assert r.verdict_by == "supervisor"


def test_the_issues_forgery_through_the_cli_scores_both_arms_zero(tmp_path, exec_mod):
    """Both arms return a - b (20 items: the issue's 40 take too long for one bounded case on 2 cores); the
    treatment also forges. Verdict inconclusive or worse, both arms 0."""
    items = [{"prompt": "def add(a, b):\n", "entry_point": "add",
              "test": f"def check(candidate):\n    assert candidate({i}, {i + 1}) == {2 * i + 1}\n"} for i in range(20)]
    base = [{"id": f"q{i}", "output": "    return a - b\n", "target": t} for i, t in enumerate(items)]
    treat = [{"id": f"q{i}", "output": forged(), "target": t} for i, t in enumerate(items)]
    write_jsonl(tmp_path / "logs/base.jsonl", base)
    write_jsonl(tmp_path / "logs/treat.jsonl", treat)
    p = claim_file(tmp_path, {"format": "jsonl", "baseline": {16: "logs/base.jsonl"},
                              "treatment": {16: "logs/treat.jsonl"}}, scorings=["pass"],
                   scorers={"pass": {"kind": "code_exec", "enabled": True, "timeout_s": 2, "memory_mb": 256}})
    p.write_text(p.read_text().replace("title: hardening", "title: hardening\n  metric: pass"))
    res = cli("verify", p, "--json", "--fail-on", "none")
    report = json.loads(check(res, 0))
    (cell,) = [c for c in report["cells"] if c["scoring"] == "pass"]
    assert cell["baseline"] == 0.0 and cell["treatment"] == 0.0, cell
    assert report["verdict"] in ("inconclusive", "not_reproduced"), report["verdict"]


def test_honest_shapes_still_pass(exec_mod):
    """What the split must not break: numpy scalars, generators, helper functions of the prompt, exceptions."""
    np_task = {"prompt": "import numpy as np\ndef f(x):\n", "test": "def check(c):\n    assert c(3) == 9\n",
               "entry_point": "f"}
    assert _run(exec_mod, "    return np.int64(x) * x\n", np_task).passed
    gen_task = {"prompt": "def g(n):\n", "entry_point": "g",
                "test": "def check(c):\n    assert list(c(3)) == [0, 1, 2]\n    assert sorted(c(2)) == [0, 1]\n"}
    assert _run(exec_mod, "    yield from range(n)\n", gen_task).passed
    raise_task = {"prompt": "def h(x):\n", "entry_point": "h",
                  "test": "def check(c):\n    try:\n        c(-1)\n    except ValueError:\n        pass\n"
                          "    else:\n        assert False\n    assert c(2) == 2\n"}
    assert _run(exec_mod, "    if x < 0:\n        raise ValueError(x)\n    return x\n", raise_task).passed
    helper = {"prompt": "def double(x):\n    return 2 * x\n\ndef f(x):\n", "entry_point": "f",
              "test": "def check(c):\n    assert c(4) == double(2) + 4\n"}
    assert _run(exec_mod, "    return 2 * x\n", helper).passed
    # a program that redefines the trusted helper does not change what the tests compute with it
    assert not _run(exec_mod, "    return 0\ndef double(x):\n    return 0\n", helper).passed
    plain = "assert f(2) == 4\nassert f(0) == 0\n"
    assert _run(exec_mod, "def f(x):\n    return x * x\n", plain).passed


def test_an_unsplittable_test_fails_and_says_why(exec_mod):
    task = {"prompt": "def apply(fn, x):\n", "entry_point": "apply",
            "test": "def check(c):\n    assert c(lambda v: v + 1, 1) == 2\n"}
    r = _run(exec_mod, "    return fn(x)\n", task)
    assert not r.passed and r.note.startswith("unsplittable") and "function" in r.note, r
    assert exec_mod.UNSPLITTABLE


@pytest.mark.skipif(not LINUX, reason="namespaces and seccomp are Linux")
def test_escapes_are_refused(exec_mod):
    if exec_mod.sandbox_mode() != "box":
        pytest.skip("the box is not available here")
    prog = ("import sys\nfor m in ('ctypes', '_ctypes'):\n    sys.modules.pop(m, None)\nimport ctypes, os\n"
            "libc = ctypes.CDLL(None, use_errno=True)\nres = {}\n"
            "res['unshare'] = libc.unshare(0x10000000 | 0x20000)\n"
            "res['mount'] = libc.mount(b'none', b'/sandbox', b'tmpfs', 0, None)\n"
            "res['setns'] = libc.setns(0, 0x20000)\n"
            "res['ptrace'] = libc.ptrace(16, 1, 0, 0)\n"
            "res['clone3'] = libc.syscall(435, 0, 0)\n"
            "res['mountinfo'] = os.path.exists('/proc/self/mountinfo')\n"
            "res['cmdline1'] = os.path.exists('/proc/1/cmdline')\n"
            "print('RESULT', res, file=sys.stderr)\n")
    r = exec_mod.run_program(prog, exec_mod.Limits(timeout_s=5))
    assert r.passed, r.stderr
    for call in ("unshare", "mount", "setns", "ptrace", "clone3"):
        assert f"'{call}': -1" in r.stderr, r.stderr
    assert "'mountinfo': False" in r.stderr and "'cmdline1': False" in r.stderr
    assert "seccomp (no namespaces, mounts, ptrace)" in r.isolation


# ---------------------------------------------------------------------------------------------------------------
# decompression bombs, one per archive kind; damaged, encrypted and deflate64 archives

def _zip_bytes(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr(name, data)
    return buf.getvalue()


def _lie_about_size(raw: bytes, declared: int) -> bytes:
    """Set every size field of a one-member zip to ``declared`` (the member really holds more)."""
    b = bytearray(raw)
    i = b.index(b"PK\x03\x04")
    struct.pack_into("<I", b, i + 22, declared)
    j = b.index(b"PK\x01\x02")
    struct.pack_into("<I", b, j + 24, declared)
    return bytes(b)


def _jsonl_blob(n_zero_mb: int) -> bytes:
    return b'{"id": "q0", "output": "1", "target": "1"}\n' + b" " * (n_zero_mb << 20) + b"\n"


BOMB_MB = 48  # small on disk (~50 KiB), over the 16 MiB ratio floor, ~1000-fold


def test_zip_bomb_is_refused_from_its_declared_sizes(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs/base.zip").write_bytes(_zip_bytes("b.jsonl", _jsonl_blob(BOMB_MB)))
    write_jsonl(tmp_path / "logs/treat.jsonl", arm_rows([1]))
    assert (tmp_path / "logs/base.zip").stat().st_size < 200_000
    p = _reading(tmp_path, "base.zip")
    code, out = cli_bounded(["validate", p], tmp_path)
    assert code == 2, out
    assert "base.zip" in out and "'b.jsonl'" in out and "compression-ratio limit of 200" in out


def test_zip_bomb_that_lies_about_its_size_is_stopped_while_decompressing(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs/base.zip").write_bytes(_lie_about_size(_zip_bytes("b.jsonl", _jsonl_blob(BOMB_MB)), 1000))
    write_jsonl(tmp_path / "logs/treat.jsonl", arm_rows([1]))
    p = _reading(tmp_path, "base.zip")
    code, out = cli_bounded(["validate", p], tmp_path)
    assert code == 2, out
    assert "'b.jsonl'" in out and "more than the 1,000 bytes its header declares" in out


def test_zip_over_the_total_size_limit(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs/base.zip").write_bytes(_zip_bytes("b.jsonl", _jsonl_blob(3)))
    write_jsonl(tmp_path / "logs/treat.jsonl", arm_rows([1]))
    p = _reading(tmp_path, "base.zip")
    code, out = cli_bounded(["validate", p], tmp_path, env={"AUDIT_MAX_UNCOMPRESSED_MB": "1"})
    assert code == 2 and "over the limit of 1 MiB" in out and "AUDIT_MAX_UNCOMPRESSED_MB" in out, out


def test_gzip_bomb_is_stopped_at_the_ratio_limit(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs/base.jsonl.gz").write_bytes(gzip.compress(_jsonl_blob(BOMB_MB), 9))
    write_jsonl(tmp_path / "logs/treat.jsonl", arm_rows([1]))
    p = _reading(tmp_path, "base.jsonl.gz")
    code, out = cli_bounded(["validate", p], tmp_path)
    assert code == 2, out
    assert "base.jsonl.gz" in out and "compression-ratio limit" in out


def _eval_log(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize("lie", [False, True], ids=["declared", "lying"])
def test_inspect_eval_bomb_is_refused_naming_the_member(tmp_path, lie):
    pytest.importorskip("inspect_ai")
    raw = _eval_log({"samples/1_epoch_1.json": b"{" + b" " * (BOMB_MB << 20) + b"}"})
    if lie:
        raw = _lie_about_size(raw, 5000)
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs/base.eval").write_bytes(raw)
    (tmp_path / "logs/treat.eval").write_bytes(raw)
    p = claim_file(tmp_path, {"format": "inspect", "baseline": {16: "logs/base.eval"},
                              "treatment": {16: "logs/treat.eval"}})
    code, out = cli_bounded(["validate", p], tmp_path)
    assert code == 2, out
    assert "base.eval" in out and "samples/1_epoch_1.json" in out
    assert ("compression-ratio limit" in out) if not lie else ("its header declares" in out)


def _flag_member(raw: bytes, *, encrypted: bool = False, method: int | None = None) -> bytes:
    b = bytearray(raw)
    for sig, flag_at, method_at in ((b"PK\x03\x04", 6, 8), (b"PK\x01\x02", 8, 10)):
        i = b.index(sig)
        if encrypted:
            struct.pack_into("<H", b, i + flag_at, struct.unpack_from("<H", b, i + flag_at)[0] | 1)
        if method is not None:
            struct.pack_into("<H", b, i + method_at, method)
    return bytes(b)


ZIP_CASES = {
    "cut-short": (lambda z: z[: len(z) // 2], "not a readable zip archive"),
    "encrypted": (lambda z: _flag_member(z, encrypted=True), "is encrypted"),
    "deflate64": (lambda z: _flag_member(z, method=9), "deflate64, which audit cannot read"),
    "damaged-data": (lambda z: z[:40] + bytes(b ^ 0xFF for b in z[40:60]) + z[60:], "cannot decompress"),
    "nested-zip": (lambda z: _zip_bytes("inner.jsonl", _zip_bytes("x.jsonl", b"{}\n")), "is itself a zip archive"),
}


@pytest.mark.parametrize("name", list(ZIP_CASES))
def test_bad_zip_is_exit_2_naming_file_and_member(tmp_path, name):
    make, needle = ZIP_CASES[name]
    good = _zip_bytes("b.jsonl", b"".join(json.dumps(r).encode() + b"\n" for r in arm_rows([1, 0, 1])))
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs/base.zip").write_bytes(make(good))
    write_jsonl(tmp_path / "logs/treat.jsonl", arm_rows([1, 1, 1]))
    p = _reading(tmp_path, "base.zip")
    out = check(cli("validate", p), 2, "base.zip", needle)
    assert "internal error" not in out


@pytest.mark.parametrize("name, data, needle", [
    ("damaged", lambda g: g[:10] + b"\x00garbage" + g[18:], "not valid gzip data"),
    ("cut-short", lambda g: g[: len(g) - 12], "cut short"),
    ("empty", lambda g: b"", "empty"),
    ("nested", lambda g: gzip.compress(g), "is itself gzip data"),
])
def test_bad_gzip_is_exit_2(tmp_path, name, data, needle):
    good = gzip.compress(b"".join(json.dumps(r).encode() + b"\n" for r in arm_rows([1, 0, 1] * 50)))
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs/base.jsonl.gz").write_bytes(data(good))
    write_jsonl(tmp_path / "logs/treat.jsonl", arm_rows([1, 1, 1]))
    p = _reading(tmp_path, "base.jsonl.gz")
    check(cli("validate", p), 2, "base.jsonl.gz", needle)


# ---------------------------------------------------------------------------------------------------------------
# exit 2/3, never 4: numbers, deep JSON, devices, servers

def test_huge_integer_in_a_log_is_named_for_what_it_is(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs/base.jsonl").write_text('{"id": "q0", "output": "1", "target": "1", "scores": {"exact": 1'
                                              + "0" * 5000 + "}}\n")
    write_jsonl(tmp_path / "logs/treat.jsonl", arm_rows([1]))
    p = _reading(tmp_path, "base.jsonl")
    out = check(cli("validate", p), 2, "base.jsonl:1:", "too large")
    assert "got inf" not in out


def test_large_finite_integer_is_not_called_inf():
    from audit.errors import Problem
    from audit.jsonlines import Fields

    problems: list[Problem] = []
    Fields({"s": 10 ** 400}, "f.csv", 3, problems).number("s")
    Fields({"s": "1" + "0" * 5000}, "f.csv", 4, problems).number("s")
    text = "\n".join(p.render() for p in problems)
    assert "integer of 401 digits" in text and "integer of 5,001 digits" in text and "inf" not in text


def test_compare_refuses_deep_json_devices_and_fifos_without_hanging(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    check(cli("compare", deep, deep), 2, str(deep), "nested too deeply")
    dup = tmp_path / "dup.json"
    dup.write_text('{"schema_version": 2, "schema_version": 3}')
    check(cli("compare", dup, dup), 2, "'schema_version' appears twice")
    if LINUX:
        check(cli("compare", "/dev/zero", "/dev/zero"), 2, "/dev/zero", "character device")
        fifo = tmp_path / "fifo.json"
        os.mkfifo(fifo)
        check(cli("compare", fifo, fifo), 2, "named pipe (FIFO)")
        check(cli("compare", "/proc/self/status", "/proc/self/status"), 2, "/proc")


@pytest.mark.skipif(not LINUX, reason="FIFOs and /proc")
def test_special_files_as_outputs_are_refused_up_front(tmp_path):
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    check(cli("schema", "-o", fifo), 2, "named pipe (FIFO)", "--output")
    write_jsonl(tmp_path / "logs/base.jsonl", arm_rows([0, 1] * 10))
    write_jsonl(tmp_path / "logs/treat.jsonl", arm_rows([1, 1] * 10))
    p = claim_file(tmp_path, jsonl_pair(tmp_path))
    check(cli("verify", p, "--summary-md", fifo), 2, "--summary-md", "named pipe (FIFO)")
    check(cli("verify", p, "--junit", "/proc/self/status"), 2, "--junit", "/proc")
    check(cli("verify", p, "--out", "/proc/self/fdinfo"), 2, "--out", "/proc")
    check(cli("schema", "-o", "-"), 0, '"$schema"')


def _reading(tmp_path: Path, base: str) -> Path:
    """A jsonl claim whose baseline log is logs/<base> and whose treatment log is logs/treat.jsonl."""
    return claim_file(tmp_path, {"format": "jsonl", "baseline": {16: f"logs/{base}"},
                                 "treatment": {16: "logs/treat.jsonl"}})


@pytest.mark.skipif(not LINUX, reason="FIFOs and /proc")
def test_special_files_as_logs_do_not_hang(tmp_path):
    (tmp_path / "logs").mkdir()
    os.mkfifo(tmp_path / "logs/base.jsonl")
    write_jsonl(tmp_path / "logs/treat.jsonl", arm_rows([1]))
    p = _reading(tmp_path, "base.jsonl")
    check(cli("validate", p), 2, "base.jsonl")
    (tmp_path / "logs/k.jsonl").symlink_to("/proc/self/status")
    p = _reading(tmp_path, "k.jsonl")
    check(cli("validate", p), 2, "k.jsonl", "/proc", "kernel interface")
    (tmp_path / "logs/z.jsonl.gz").symlink_to("/dev/zero")
    p = _reading(tmp_path, "z.jsonl.gz")
    check(cli("validate", p), 2)


@pytest.mark.skipif(not LINUX, reason="FIFOs")
def test_a_fifo_log_is_named_a_fifo(tmp_path):
    (tmp_path / "logs").mkdir()
    os.mkfifo(tmp_path / "logs/base.jsonl")
    write_jsonl(tmp_path / "logs/treat.jsonl", arm_rows([1]))
    p = _reading(tmp_path, "base.jsonl")
    check(cli("validate", p), 2, "FIFO")


def _lmeval_run(tmp_path: Path, results: str | None) -> Path:
    from conftest import lmeval_lines

    for arm in ("base", "treat"):
        d = tmp_path / "logs" / arm
        write_jsonl(d / "samples_t_2025-01-01T00-00-00.000000.jsonl",
                    lmeval_lines(["1", "0"], {"none": [1.0, 0.0]}, 16))
        if results is not None:
            (d / "results_2025-01-01T00-00-00.000000.json").write_text(results)
    c = {"claim": {"title": "lm", "metric": "exact_match", "settings": {"max_tokens": 16}},
         "samples": {"format": "lm-eval", "baseline": {16: "logs/base/samples_*.jsonl"},
                     "treatment": {16: "logs/treat/samples_*.jsonl"}}, "options": {"resamples": 1000}}
    p = tmp_path / "claim.yaml"
    p.write_text(yaml.safe_dump(c))
    return p


def test_lmeval_results_that_is_a_device_is_exit_2(tmp_path):
    if not LINUX:
        pytest.skip("/dev/zero")
    p = _lmeval_run(tmp_path, None)
    for arm in ("base", "treat"):
        (tmp_path / "logs" / arm / "results_2025-01-01T00-00-00.000000.json").symlink_to("/dev/zero")
    code, out = cli_bounded(["validate", p], tmp_path)
    assert code == 2 and "character device" in out, out


@pytest.mark.parametrize("results", ['{"configs": {"t": {"metric_list": 5}}}',
                                     '{"n-samples": {"t": {"effective": 1' + "0" * 5000 + '}}}'],
                         ids=["metric_list-5", "5000-digit-number"])
def test_lmeval_results_oddities_are_exit_2(tmp_path, results):
    check(cli("validate", _lmeval_run(tmp_path, results)), 2, "results_")


def test_inspect_sample_without_choices_is_not_exit_4(tmp_path):
    pytest.importorskip("inspect_ai")
    import shutil

    from inspect_ai.log import read_eval_log, write_eval_log

    root = Path(__file__).resolve().parents[1] / "fixtures/logs/inspect"
    shutil.copytree(root, tmp_path / "logs")
    (f,) = sorted((tmp_path / "logs/add_verify_32").glob("*.eval"))
    log = read_eval_log(str(f))
    log.samples[0].output.choices = []
    write_eval_log(log, str(f))
    c = yaml.safe_load((root.parents[1] / "claims/inspect_truncation.yaml").read_text())
    c["samples"] = {**c["samples"], "baseline": {32: str(f)}, "treatment": {32: str(f)}}
    c["claim"]["settings"]["max_tokens"] = 32
    p = tmp_path / "claim.yaml"
    p.write_text(yaml.safe_dump(c))
    res = cli("validate", p)
    assert res.exit_code in (0, 2), res.output
    assert "internal error" not in res.output


def test_server_sending_a_garbage_gzip_body_is_exit_3(tmp_path):
    from servers import FakeServer, status
    from test_robustness_live import live_claim

    with FakeServer(default=status(200, b"\x1f\x8bnot really gzip at all", Content_Encoding="gzip")) as srv:
        p = live_claim(tmp_path, srv.url)
        out = check(cli("verify", p, "--no-cache"), 3, "cannot be decoded")
        assert "internal error" not in out


# ---------------------------------------------------------------------------------------------------------------
# secrets, summary.md

KEY = "sk-live-Q7f3K9zP2mX8vL4tR6wY1nB5"


def test_scrub_catches_every_form_a_server_may_echo():
    from audit import textsafe

    textsafe.register_secret(KEY)
    for echo in (KEY, KEY.upper(), KEY.lower(), KEY[:-4], KEY[3:15], f"Authorization: Bearer {KEY}",
                 f"Bearer {KEY[:-4]}****", "authorization: bearer some-other-token-123"):
        out = textsafe.scrub(f"error: {echo} (end)")
        assert "***" in out, (echo, out)
        assert KEY[:-4].lower() not in out.lower() and KEY[3:15].lower() not in out.lower(), out
        assert "other-token" not in out, out
    assert textsafe.scrub("nothing secret here") == "nothing secret here"


def test_echoed_key_is_scrubbed_from_message_cache_report_and_summary(tmp_path, monkeypatch):
    from servers import FakeServer, status
    from test_robustness_live import live_claim

    monkeypatch.setenv("AUDIT_TEST_KEY", KEY)
    body = json.dumps({"error": f"invalid api key {KEY[:-4]}"}).encode()
    with FakeServer(default=status(401, body)) as srv:
        p = live_claim(tmp_path, srv.url, api_key_env="AUDIT_TEST_KEY")
        out = check(cli("verify", p, "--no-cache"), 3, "HTTP 401")
        assert KEY[:-4] not in out and KEY[:12] not in out

    def responder(n, req):
        text = f"The key is {KEY.upper()} and 1"
        return status(200, json.dumps({"choices": [{"index": 0, "text": text, "finish_reason": "stop"}],
                                       "usage": {"completion_tokens": 5}}).encode())

    with FakeServer(responder=responder) as srv:
        p = live_claim(tmp_path, srv.url, api_key_env="AUDIT_TEST_KEY")
        cache = tmp_path / "gen.sqlite"
        res = cli("verify", p, "--cache", cache, "--out", tmp_path / "out", "--summary-md", tmp_path / "s.md",
                  "--fail-on", "none")
        check(res, 0)
    for f in (cache, tmp_path / "out/report.html", tmp_path / "out/report.json", tmp_path / "s.md"):
        raw = f.read_bytes().lower()
        assert KEY.lower().encode() not in raw and KEY[3:15].lower().encode() not in raw, f


def test_summary_md_neutralises_images_links_mentions_and_autolinks(tmp_path):
    title = ("Gain ![beacon](https://evil.example/t.png) [click](javascript:alert(1)) @everyone "
             "<https://evil.example> see www.evil.example [docs](https://example.com/ok)")
    p = claim_file(tmp_path, jsonl_pair(tmp_path), title=title)
    md = tmp_path / "s.md"
    check(cli("verify", p, "--summary-md", md, "--fail-on", "none"), 0)
    text = md.read_text()
    assert "![" not in text.replace("!\\[", "") and "](javascript:" not in text
    assert "@everyone" not in text and "@\u200beveryone" in text
    assert "<https://evil" not in text and "www.evil" not in text
    assert "[docs](https://example.com/ok)" in text  # an http(s) link stays a link
    assert "beacon" in text and "click" in text  # still readable


def test_md_inert_units():
    from audit.textsafe import md_inert

    assert md_inert("plain text 3:1") == "plain text 3:1"
    assert "\\[x\\](data\u200b:" in md_inert("[x](data:text/html,hi)")
    assert md_inert("a@b.c") == "a@b.c"


# ---------------------------------------------------------------------------------------------------------------
# silent acceptance: duplicate columns and keys, NUL bytes; cache clear; closed stdout

def test_duplicate_csv_column_and_nul_bytes_are_errors(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs/base.csv").write_text("id,output,target,output\nq0,1,1,0\n")
    (tmp_path / "logs/treat.csv").write_bytes(b"id,output,target\nq0,1,1\nq1,\x001,1\n")
    p = claim_file(tmp_path, {"format": "csv", "baseline": {16: "logs/base.csv"},
                              "treatment": {16: "logs/treat.csv"}})
    check(cli("validate", p), 2, "base.csv:1:", "column 'output' appears twice", "treat.csv:3:", "NUL bytes")


def test_duplicate_key_in_a_json_record_is_an_error(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs/base.jsonl").write_text('{"id": "q0", "output": "1", "output": "0", "target": "1"}\n')
    (tmp_path / "logs/treat.json").write_text('[{"id": "q0", "output": "1", "target": "1", "target": "2"}]')
    write_jsonl(tmp_path / "logs/t.jsonl", arm_rows([1]))
    p = claim_file(tmp_path, {"format": "jsonl", "baseline": {16: "logs/base.jsonl"},
                              "treatment": {16: "logs/t.jsonl"}})
    check(cli("validate", p), 2, "base.jsonl:1:", "'output' appears twice")
    p = claim_file(tmp_path, {"format": "json", "baseline": {16: "logs/treat.json"},
                              "treatment": {16: "logs/treat.json"}})
    check(cli("validate", p), 2, "treat.json", "record 1", "'target' appears twice")


def test_cache_clear_needs_yes(tmp_path):
    cache = tmp_path / "c.sqlite"
    check(cli("cache", "clear", "--cache", cache), 2, "--yes", "nothing was deleted")
    check(cli("cache", "clear", "--cache", cache, "--yes"), 0, "removed 0")


def test_cache_messages_say_what_is_wrong(tmp_path):
    import sqlite3

    from audit.errors import InputError
    from audit.generation.cache import GenerationCache

    c = GenerationCache(tmp_path / "c.sqlite")
    with pytest.raises(InputError) as exc:
        c._raise(sqlite3.OperationalError("attempt to write a readonly database"), "write")
    assert "read-only" in str(exc.value) and "delete the file" not in str(exc.value)
    if LINUX:
        fifo = tmp_path / "c.fifo"
        os.mkfifo(fifo)
        check(cli("cache", "info", "--cache", fifo), 2, "not a regular file")


def test_closed_stdout_ends_quietly_with_the_verdicts_exit_code(tmp_path):
    p = claim_file(tmp_path, jsonl_pair(tmp_path))
    r, w = os.pipe()
    os.close(r)  # nobody reads: the first write gets EPIPE, as under `| head` once head has exited
    try:
        code, out = cli_bounded(["verify", p, "--json"], tmp_path, stdout=w)
    finally:
        os.close(w)
    ref = cli("verify", p, "--json")
    assert code == ref.exit_code and code in (0, 1), out
    assert "internal error" not in out and "Traceback" not in out


def test_ids_equal_after_normalisation_are_shown_apart():
    from audit.errors import Problem

    text = Problem("item ids differ", file="f", value="e\u0301").render()
    assert "\\u0301" in text and "NFC" in text


def test_csv_integer_too_large_for_a_double_is_named_by_its_digits(tmp_path):
    """A CSV cell of 5,001 digits is "an integer of 5,001 digits", not "got inf"; one of 401 digits is refused as a
    count too (it used to pass the count check and end in an OverflowError, exit 4)."""
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs/base.csv").write_text("id,output,target,completion_tokens,ok\n"
                                            f"q0,1,1,1{'0' * 400},1\nq1,1,1,3,1{'0' * 5000}\n")
    (tmp_path / "logs/treat.csv").write_text("id,output,target,completion_tokens,ok\nq0,1,1,3,1\nq1,1,1,3,1\n")
    p = claim_file(tmp_path, {"format": "csv", "baseline": {16: "logs/base.csv"}, "treatment": {16: "logs/treat.csv"},
                              "fields": {"scores.ok": "ok"}}, scorings=())
    out = check(cli("validate", p), 2, "base.csv", "integer of 401 digits", "integer of 5,001 digits")
    assert "got inf" not in out


def test_unsplittable_tests_are_a_finding_with_the_count_per_arm(tmp_path, exec_mod):
    """Outputs whose tests pass a function to the program cannot be split from it: scored 0, and the report says
    so (scoring.code_exec_unsplittable, counted per arm), instead of a silent 0."""
    add = {"prompt": "def add(a, b):\n", "entry_point": "add",
           "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n"}
    apply = {"prompt": "def apply(fn, x):\n", "entry_point": "apply",
             "test": "def check(c):\n    assert c(lambda v: v + 1, 1) == 2\n"}
    base = [{"id": "q0", "output": "    return a + b\n", "target": add},
            {"id": "q1", "output": "    return fn(x)\n", "target": apply},
            {"id": "q2", "output": "    return a - b\n", "target": add}]
    treat = [{"id": "q0", "output": "    return a + b\n", "target": add},
             {"id": "q1", "output": "    return fn(x)\n", "target": apply},
             {"id": "q2", "output": "    return a + b\n", "target": add}]
    write_jsonl(tmp_path / "logs/base.jsonl", base)
    write_jsonl(tmp_path / "logs/treat.jsonl", treat)
    p = claim_file(tmp_path, {"format": "jsonl", "baseline": {16: "logs/base.jsonl"},
                              "treatment": {16: "logs/treat.jsonl"}}, scorings=["pass"],
                   scorers={"pass": {"kind": "code_exec", "enabled": True, "timeout_s": 2, "memory_mb": 256}})
    p.write_text(p.read_text().replace("title: hardening", "title: hardening\n  metric: pass"))
    report = json.loads(check(cli("verify", p, "--json", "--fail-on", "none"), 0))
    (cell,) = [c for c in report["cells"] if c["scoring"] == "pass"]
    assert (cell["baseline"], cell["treatment"]) == (pytest.approx(1 / 3), pytest.approx(2 / 3)), cell
    (f,) = [f for f in report["findings"] if f["code"] == "code_exec_unsplittable"]
    assert f["check"] == "scoring" and f["outcome"] == "info"
    assert "1 of 3 baseline and 1 of 3 treatment output(s) were scored 0" in f["title"]
    assert "function" in f["detail"] and f["statistic"]["baseline"] == 1 and f["statistic"]["treatment"] == 1


def test_ids_equal_after_unicode_normalisation_are_named_so():
    """Ids that print alike but differ in NFC/NFD (é composed vs e + combining accent): the pairing error and the
    item-sets sentence say so, with an escaped example and the fix; the ids are not merged silently."""
    import unicodedata

    import pandas as pd

    from audit.errors import InputError
    from audit.records import build_records

    def frame(arm, ids):
        return pd.DataFrame({"arm": arm, "item_id": ids, "variant": "default", "budget": 8, "scoring": "exact",
                             "score": [1.0] * len(ids), "text": "1", "target": "1", "source": arm,
                             "line": list(range(1, len(ids) + 1))})

    nfc = [unicodedata.normalize("NFC", f"café-{i}") for i in range(3)]
    nfd = [unicodedata.normalize("NFD", i) for i in nfc]
    with pytest.raises(InputError) as err:
        build_records([frame("baseline", nfc), frame("treatment", nfd)], [])
    (p,) = err.value.problems
    assert "3 of these ids differ only in Unicode normalisation" in p.message
    assert "'caf\\xe9-0'" in p.message and "'cafe\\u0301-0'" in p.message
    assert "NFC" in p.fix
    rec = build_records([frame("baseline", ["a", "b", *nfc]), frame("treatment", ["a", "b", *nfd])], [])
    (s,) = rec.item_sets
    assert "3 of these ids differ only in Unicode normalisation" in s.sentence()
