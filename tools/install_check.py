"""From a fresh clone to a working `audit` in a new virtual environment elsewhere: the install a user does.

    python tools/install_check.py [--workdir DIR] [--keep] [--head-only] [--json FILE]

Steps, each timed, each a failure with its output when it fails:

1. ``git clone`` this repository into a temporary folder (outside the repository). A working tree with uncommitted
   changes is copied over the clone (tracked changes, new files git does not ignore, deletions), so what is checked
   is what would be committed; ``--head-only`` checks HEAD alone.
2. ``python -m build`` in the clone: an sdist and a wheel (``claimaudit-<version>``).
3. ``twine check --strict`` on both.
4. A new virtual environment in the temporary folder, ``pip install dist/*.whl`` (the base wheel: no extras, so
   no llama-cpp-python build), run from a folder that is not the clone.
5. ``audit --version`` there; ``import audit`` must come from the new environment's site-packages.
6. ``audit verify`` on a replay fixture (``fixtures/claims/truncation.yaml`` with its lm-eval logs, copied out of the
   clone), with ``--out``, ``--junit`` and ``--summary-md``: exit 0 with ``--fail-on none``, every output written.

Needs ``build`` and ``twine`` in the Python that runs it (the ``test`` extra) and pip's index (network, or pip's
cache). Exit 0 when every step passed, 1 otherwise. ``tests/test_packaging.py`` runs it.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLAIM = "fixtures/claims/truncation.yaml"
# The replay fixture and the logs it names (relative paths in the claim resolve against its folder).
FIXTURE_FILES = [CLAIM, "fixtures/logs/add_verify_32", "fixtures/logs/add_verify_64", "fixtures/logs/add_direct_32",
                 "fixtures/logs/add_direct_64"]


class StepFailed(Exception):
    pass


def _run(cmd: list[str], cwd: Path, env: dict | None = None, ok=(0,)) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if proc.returncode not in ok:
        raise StepFailed(f"`{' '.join(cmd)}` (in {cwd}) exited {proc.returncode}:\n{proc.stdout[-4000:]}")
    return proc


def _clean_env() -> dict:
    """The environment for commands in the new venv: nothing of this repository's venv leaks in."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    venv_bin = str(Path(sys.prefix) / "bin")
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    return env


def clone(work: Path, head_only: bool) -> tuple[Path, int]:
    """A clone of the repository, with the working tree's uncommitted changes copied over unless ``head_only``."""
    dest = work / "clone"
    _run(["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(dest)], cwd=work)
    if head_only:
        return dest, 0
    changed = _run(["git", "ls-files", "-z", "--modified", "--others", "--exclude-standard"], cwd=REPO).stdout
    deleted = _run(["git", "ls-files", "-z", "--deleted"], cwd=REPO).stdout
    n = 0
    for rel in filter(None, changed.split("\0")):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
            n += 1
    for rel in filter(None, deleted.split("\0")):
        if (dest / rel).exists():
            (dest / rel).unlink()
            n += 1
    return dest, n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", type=Path, default=None, help="where to clone, build and install (default: a new "
                                                                 "temporary folder, removed afterwards)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument("--head-only", action="store_true", help="check HEAD only, without the uncommitted changes")
    ap.add_argument("--json", type=Path, default=None, help="write the steps and their timings here")
    args = ap.parse_args(argv)

    for mod in ("build", "twine"):
        try:
            __import__(mod)
        except ImportError:
            print(f"error: {mod} is not installed in {sys.executable}; fix: pip install build twine "
                  "(both are in the `test` extra)", file=sys.stderr)
            return 2
    work = args.workdir or Path(tempfile.mkdtemp(prefix="audit-install-check-"))
    work.mkdir(parents=True, exist_ok=True)
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    dist_name = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["name"]
    steps: list[dict] = []
    result = {"workdir": str(work), "distribution": dist_name, "version": version, "steps": steps, "passed": False}

    def step(name: str, fn):
        t0 = time.monotonic()
        print(f"[install-check] {name} ...", flush=True)
        try:
            note = fn()
        except StepFailed as exc:
            steps.append({"step": name, "seconds": round(time.monotonic() - t0, 1), "passed": False,
                          "error": str(exc)})
            raise
        steps.append({"step": name, "seconds": round(time.monotonic() - t0, 1), "passed": True, "note": note})
        print(f"[install-check] {name}: ok ({time.monotonic() - t0:.1f} s){': ' + note if note else ''}", flush=True)
        return note

    env = _clean_env()
    venv = work / "venv"
    run_dir = work / "user"
    state: dict = {}
    try:
        def do_clone():
            state["clone"], n = clone(work, args.head_only)
            return f"{n} uncommitted file(s) of the working tree copied over HEAD" if n else "HEAD"

        def do_build():
            dist = work / "dist"
            _run([sys.executable, "-m", "build", "--outdir", str(dist), str(state["clone"])], cwd=work)
            files = sorted(p.name for p in dist.iterdir())
            expect = {f"{dist_name}-{version}.tar.gz", f"{dist_name}-{version}-py3-none-any.whl"}
            if set(files) != expect:
                raise StepFailed(f"dist/ holds {files}, expected {sorted(expect)}")
            state["wheel"] = dist / f"{dist_name}-{version}-py3-none-any.whl"
            state["dist"] = dist
            return ", ".join(files)

        def do_twine():
            files = [str(p) for p in sorted(state["dist"].iterdir())]
            out = _run([sys.executable, "-m", "twine", "check", "--strict", *files], cwd=work,
                       env={**os.environ, "NO_COLOR": "1"}).stdout
            out = re.sub(r"\x1b\[[0-9;]*m", "", out).replace(str(state["dist"]) + os.sep, "")
            return "; ".join(line.strip() for line in out.splitlines() if "PASSED" in line or "WARN" in line)

        def do_venv():
            base = getattr(sys, "_base_executable", sys.executable)
            _run([base, "-m", "venv", str(venv)], cwd=work, env=env)
            run_dir.mkdir(exist_ok=True)
            # From a folder that is not the clone: nothing can be imported from a source tree.
            _run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(state["wheel"])],
                 cwd=run_dir, env=env)
            return f"pip install {state['wheel'].name} into {venv}"

        def do_version():
            out = _run([str(venv / "bin" / "audit"), "--version"], cwd=run_dir, env=env).stdout.strip()
            if out != f"audit, version {version}":
                raise StepFailed(f"audit --version printed {out!r}, expected 'audit, version {version}'")
            where = _run([str(venv / "bin" / "python"), "-c",
                          "import audit, audit.checks, audit.reports, audit.scoring.metrics as m, pathlib; "
                          "print(audit.__file__); print(len(m.MODULES))"], cwd=run_dir, env=env).stdout.split()
            if not where[0].startswith(str(venv)):
                raise StepFailed(f"import audit came from {where[0]}, not from the new environment {venv}")
            return f"{out}; import audit from {where[0]}"

        def do_verify():
            for rel in FIXTURE_FILES:
                src, dst = state["clone"] / rel, run_dir / rel
                if src.is_dir():
                    shutil.copytree(src, dst, dirs_exist_ok=True)
                else:
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(src, dst)
            proc = _run([str(venv / "bin" / "audit"), "verify", CLAIM, "--out", "audit-out", "--fail-on", "none",
                         "--junit", "audit-out/junit.xml", "--summary-md", "audit-out/summary-ci.md"],
                        cwd=run_dir, env=env)
            missing = [n for n in ("report.json", "report.html", "summary.md", "junit.xml", "summary-ci.md")
                       if not (run_dir / "audit-out" / n).is_file()]
            if missing:
                raise StepFailed(f"audit verify did not write {missing}:\n{proc.stdout[-2000:]}")
            report = json.loads((run_dir / "audit-out" / "report.json").read_text())
            state["verdict"] = report["verdict"]
            return f"audit verify {CLAIM}: {report['verdict']} (exit 0 with --fail-on none); report.html " \
                   f"{(run_dir / 'audit-out' / 'report.html').stat().st_size // 1024} KiB"

        step("clone", do_clone)
        step("build sdist and wheel", do_build)
        step("twine check --strict", do_twine)
        step("fresh venv + pip install the wheel", do_venv)
        step("audit --version", do_version)
        step("audit verify a replay fixture", do_verify)
        result["passed"] = True
        result["verdict"] = state.get("verdict")
    except StepFailed as exc:
        print(f"[install-check] FAILED: {exc}", file=sys.stderr)
    finally:
        if args.json:
            args.json.write_text(json.dumps(result, indent=2))
        if not args.keep and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    total = sum(s["seconds"] for s in steps)
    print(f"[install-check] {'passed' if result['passed'] else 'FAILED'} in {total:.0f} s"
          + (f" (kept: {work})" if args.keep or args.workdir else ""))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
