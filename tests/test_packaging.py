"""Installable in anyone's repository: the distribution, and the CI recipes run in a scratch repository.

* ``tools/install_check.py``: a fresh clone (with the working tree's uncommitted changes), ``python -m build``,
  ``twine check --strict``, a new venv elsewhere, ``pip install dist/*.whl`` (the base wheel: no llama build),
  ``audit --version`` and ``audit verify`` on a replay fixture there.
* ``tools/ci_recipes.py``: the GitHub Action (action.yml, through the README's workflow, ci/examples/) and the GitLab
  job (ci/gitlab-audit.yml, through ci/examples/gitlab-ci.yml) executed step by step in a scratch git repository that
  is a different Python project, with the venv of the install check as the job's Python (claimaudit uninstalled
  first, so each recipe's own install step installs it).

Marked ``install``: about 2 minutes with pip's cache warm (the fresh install downloads audit's dependencies);
skipped when PyPI cannot be reached or with AUDIT_OFFLINE=1. ``make install-check`` runs this file alone.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from conftest import FIXTURES, REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def _online() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    if os.environ.get("AUDIT_OFFLINE") == "1":
        pytest.skip("AUDIT_OFFLINE=1: the install check needs pip's index")
    if not _online():
        pytest.skip("pypi.org cannot be reached: the install check needs pip's index (set AUDIT_OFFLINE=1 to skip)")
    pytest.importorskip("build", reason="pip install build twine (the test extra)")
    pytest.importorskip("twine", reason="pip install build twine (the test extra)")
    work = tmp_path_factory.mktemp("install-check")
    proc = subprocess.run([sys.executable, str(REPO / "tools/install_check.py"), "--workdir", str(work), "--json",
                           str(work / "result.json")], cwd=REPO, capture_output=True, text=True, timeout=900)
    result = json.loads((work / "result.json").read_text()) if (work / "result.json").exists() else {}
    return {"proc": proc, "result": result, "work": work, "clone": work / "clone", "venv": work / "venv",
            "wheel": next((work / "dist").glob("*.whl"), None) if (work / "dist").exists() else None}


@pytest.mark.install
def test_wheel_builds_passes_twine_and_runs_in_a_fresh_venv(installed):
    proc, result = installed["proc"], installed["result"]
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert [s["step"] for s in result["steps"]] == [
        "clone", "build sdist and wheel", "twine check --strict", "fresh venv + pip install the wheel",
        "audit --version", "audit verify a replay fixture"]
    assert all(s["passed"] for s in result["steps"]) and result["distribution"] == "claimaudit"
    assert result["verdict"] == json.loads((installed["work"] / "user/audit-out/report.json").read_text())["verdict"]

    # The wheel: the `audit` import package only (checks/ and reports/ as audit.checks and audit.reports), with the
    # templates and every shipped metric module; nothing generic in site-packages.
    names = zipfile.ZipFile(installed["wheel"]).namelist()
    assert {n.split("/")[0] for n in names} == {"audit", f"claimaudit-{result['version']}.dist-info"}
    for src, dest in (("checks", "audit/checks"), ("reports", "audit/reports")):
        assert {f"{dest}/{p.name}" for p in (REPO / src).glob("*.py")} <= set(names)
    for t in (REPO / "reports/templates").iterdir():
        assert f"audit/reports/templates/{t.name}" in names
    for module in (REPO / "audit/scoring/metrics").iterdir():
        if module.is_dir() and not module.name.startswith("__"):
            assert f"audit/scoring/metrics/{module.name}/{module.name}.py" in names, module.name
    meta = zipfile.ZipFile(installed["wheel"]).read(f"claimaudit-{result['version']}.dist-info/METADATA").decode()
    assert "Name: claimaudit" in meta and "Provides-Extra: live" in meta
    assert 'Requires-Dist: llama-cpp-python[server]>=0.3; extra == "live"' in meta  # optional, never by default
    entry = zipfile.ZipFile(installed["wheel"]).read(f"claimaudit-{result['version']}.dist-info/entry_points.txt")
    assert b"audit = audit.cli:main" in entry
    venv_python = installed["venv"] / "bin/python"
    assert subprocess.run([str(venv_python), "-c", "import llama_cpp"], capture_output=True).returncode != 0


def scratch_repo(root: Path) -> Path:
    """A user's repository: a different Python project, a claim and its logs, committed. Not audit's."""
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "userproject"\nversion = "1.0"\n')
    (root / "claims").mkdir()
    shutil.copy(FIXTURES / "claims/truncation.yaml", root / "claims/headline.yaml")  # names ../logs/add_*/...
    for run in ("add_verify_32", "add_verify_64", "add_direct_32", "add_direct_64"):
        shutil.copytree(FIXTURES / "logs" / run, root / "logs" / run)
    env = {**os.environ, "GIT_AUTHOR_NAME": "u", "GIT_AUTHOR_EMAIL": "u@example.org", "GIT_COMMITTER_NAME": "u",
           "GIT_COMMITTER_EMAIL": "u@example.org"}
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "a claim"]):
        subprocess.run(cmd, cwd=root, check=True, env=env, capture_output=True)
    return root


def run_recipe(installed, system: str, file: Path, repo: Path, *extra: str) -> tuple[dict, str]:
    out = repo.parent / f"{system}-result.json"
    proc = subprocess.run([sys.executable, str(REPO / "tools/ci_recipes.py"), system, str(file), "--workspace",
                           str(repo), "--audit", str(installed["clone"]), "--python-env", str(installed["venv"]),
                           "--json", str(out), *extra], capture_output=True, text=True, timeout=600)
    assert out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out.read_text()), proc.stdout


@pytest.mark.install
def test_github_action_runs_in_a_scratch_repository(installed, tmp_path):
    if installed["proc"].returncode != 0:
        pytest.skip("the install check failed (see the test above)")
    repo = scratch_repo(tmp_path / "user")
    workflow = repo / ".github/workflows/audit.yml"
    workflow.parent.mkdir(parents=True)
    example = (REPO / "ci/examples/github-workflow.yml").read_text()
    workflow.write_text(example)

    # The README's workflow as it is: the truncation fixture is inconclusive, which the default gate fails.
    result, log = run_recipe(installed, "github", workflow, repo)
    job = result["jobs"]["audit"]
    assert job["status"] == "failure" and job["exit_code"] == 1, log
    assert job["failed_step"] == "OWNER/audit@v0.1.0 › gate"
    assert job["steps"]["audit"]["outputs"] == {"verdict": "inconclusive", "exit-code": "1",
                                               "report": "audit-out/report.html"}
    assert f"pip install claimaudit @ file://{installed['clone']}" in log  # the action's own source, not the repo
    assert "[stub] actions/setup-python@v5: would install Python 3.11" in log
    assert "::error title=audit gate failed::verdict inconclusive fails --fail-on" in log
    assert job["summary"].startswith("## ❔ audit: inconclusive")  # summary.md became the job summary
    assert "### Outputs cut off by the budget, and with no answer" in job["summary"]
    assert sorted(job["artifacts"]["audit-report"]) == ["junit.xml", "report.html", "report.json", "summary.md"]
    # `pip install .` of the user's repository never happened.
    pip_show = subprocess.run([str(installed["venv"] / "bin/python"), "-m", "pip", "show", "userproject"],
                              capture_output=True, text=True)
    assert pip_show.returncode != 0

    # The gate set to report only: the same audit passes the job. (The `install:` input from here on: the built
    # wheel, as a user would name a version or a git URL; quicker than building the source again.)
    with_wheel = example.replace("          claim:", f"          install: {installed['wheel']}\n          claim:")
    workflow.write_text(with_wheel.replace("fail-on: fragile,not_reproduced,inconclusive", "fail-on: none"))
    result, log = run_recipe(installed, "github", workflow, repo)
    job = result["jobs"]["audit"]
    assert job["status"] == "success" and job["steps"]["audit"]["outputs"]["exit-code"] == "0", log
    assert f"pip install {installed['wheel']}" in log
    assert "audit: verdict inconclusive, gate --fail-on none passed" in log

    # A claim file that does not exist: a broken job (exit 2), not a verdict; the summary says so.
    workflow.write_text(with_wheel.replace("claims/headline.yaml", "claims/missing.yaml"))
    shutil.rmtree(repo / "audit-out")
    result, log = run_recipe(installed, "github", workflow, repo)
    job = result["jobs"]["audit"]
    assert job["status"] == "failure" and job["exit_code"] == 2, log
    assert job["steps"]["audit"]["outputs"]["verdict"] == "none"
    assert "audit did not write a report (exit 2)" in job["summary"]
    assert "::error title=audit could not run::audit verify exited 2" in log


@pytest.mark.install
def test_gitlab_job_runs_in_a_scratch_repository(installed, tmp_path):
    if installed["proc"].returncode != 0:
        pytest.skip("the install check failed (see the test above)")
    repo = scratch_repo(tmp_path / "user")
    (repo / ".gitlab-ci.yml").write_text((REPO / "ci/examples/gitlab-ci.yml").read_text())
    # AUDIT_INSTALL as a project CI/CD variable: the built wheel stands for the version on PyPI or a git URL.
    install = f"--variable=AUDIT_INSTALL={installed['wheel']}"
    result, log = run_recipe(installed, "gitlab", repo / ".gitlab-ci.yml", repo, install)
    job = result["jobs"]["audit-claim"]
    assert job["status"] == "failed" and job["exit_code"] == 1, log
    assert "[stub] include remote https://raw.githubusercontent.com/OWNER/audit/v0.1.0/ci/gitlab-audit.yml" in log
    assert "$ audit verify \"$AUDIT_CLAIM\" --out audit-out" in log and "audit, version 0.1.0" in log
    assert job["variables"]["AUDIT_CLAIM"] == "claims/headline.yaml"  # the user's job overrides the template's
    assert job["expose_as"] == "audit report"
    assert sorted(job["artifacts"]) == ["audit-out/junit.xml", "audit-out/report.html", "audit-out/report.json",
                                        "audit-out/summary.md"]
    assert job["junit"]["failed_cases"] == ["verdict"] and job["junit"]["skipped"] >= 3

    result, log = run_recipe(installed, "gitlab", repo / ".gitlab-ci.yml", repo, install,
                             "--variable=AUDIT_FAIL_ON=none")
    assert result["jobs"]["audit-claim"]["status"] == "success", log


@pytest.mark.parametrize("name", ["github-workflow.yml", "gitlab-ci.yml"])
def test_readme_shows_the_tested_recipes(name):
    """The README's CI examples are the files the tests above run, verbatim; nothing installs `.`."""
    text = (REPO / "ci/examples" / name).read_text()
    assert f"```yaml\n{text}```" in README
    for line in README.splitlines():
        assert not line.strip().lstrip("- ").startswith(("pip install .", "run: pip install .")), line
    for step in yaml.safe_load((REPO / "action.yml").read_text())["runs"]["steps"]:
        run = step.get("run", "")
        assert "pip install ." not in run and "pip install -e ." not in run
