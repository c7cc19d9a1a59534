"""`make lint`: ruff (lint and format check) and mypy on the three source folders; exits non-zero on any finding.

The import package `audit` is spread over three folders (pyproject's package-dir: `checks/` installs as
`audit.checks`, `reports/` as `audit.reports`). ruff reads files and needs no mapping. mypy resolves modules by
path, so it checks a shadow tree of links built in a temporary folder — `audit/` with `checks` and `reports` linked
inside it — and its messages are mapped back to the real paths. The configuration of both is in pyproject.toml.

    python tools/lint.py            # everything
    python tools/lint.py --fix      # ruff's safe fixes and ruff format first, then the checks
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("audit", "checks", "reports")
MAPPED = {"checks": "audit/checks", "reports": "audit/reports"}


def _bin(name: str) -> str:
    """The tool beside this interpreter (the venv's), else the one on PATH."""
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else name


def _run(cmd: list[str], cwd: Path, rewrite=None) -> int:
    print("$ " + " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    out = (proc.stdout or "") + (proc.stderr or "")
    print(rewrite(out) if rewrite else out, end="" if out.endswith("\n") or not out else "\n", flush=True)
    return proc.returncode


def shadow_tree(into: Path) -> Path:
    """``into``/audit: a link to every entry of audit/, plus audit/checks → checks/ and audit/reports → reports/."""
    pkg = into / "audit"
    pkg.mkdir()
    for entry in (ROOT / "audit").iterdir():
        if entry.name != "__pycache__":
            os.symlink(entry, pkg / entry.name)
    for folder in MAPPED:
        os.symlink(ROOT / folder, pkg / folder)
    return pkg


def _real_paths(text: str) -> str:
    """mypy's shadow paths back to the repository's (audit/checks/x.py → checks/x.py)."""
    for real, shadow in MAPPED.items():
        text = re.sub(rf"(?m)^{re.escape(shadow)}/", f"{real}/", text)
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fix", action="store_true", help="apply ruff's safe fixes and ruff format before checking")
    args = ap.parse_args(argv)
    ruff, mypy = _bin("ruff"), _bin("mypy")
    if args.fix:
        _run([ruff, "check", "--fix", *FOLDERS], ROOT)
        _run([ruff, "format", *FOLDERS], ROOT)
    failed = []
    if _run([ruff, "check", *FOLDERS], ROOT):
        failed.append("ruff check")
    if _run([ruff, "format", "--check", *FOLDERS], ROOT):
        failed.append("ruff format --check")
    with tempfile.TemporaryDirectory(prefix="audit-lint-") as tmp:
        shadow_tree(Path(tmp))
        if _run([mypy, "--config-file", str(ROOT / "pyproject.toml"), "--cache-dir", str(Path(tmp) / ".mypy_cache"),
                 "-p", "audit"], Path(tmp), _real_paths):
            failed.append("mypy")
    print("lint: " + ("failed: " + ", ".join(failed) if failed else "ruff and mypy clean"), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
