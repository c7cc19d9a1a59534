"""Run audit's CI recipes in a scratch repository as GitHub Actions and GitLab CI would, without either service.

    python tools/ci_recipes.py github WORKFLOW.yml --workspace DIR --audit CHECKOUT [--python-env DIR] [--json F]
    python tools/ci_recipes.py gitlab .gitlab-ci.yml --workspace DIR --audit CHECKOUT [--variable K=V]...
                                      [--python-env DIR] [--json F]

``--workspace`` is the user's repository (a scratch git repository, not audit's own); ``--audit`` a checkout of
this repository, standing for what the workflow names: the action ``uses: <owner>/audit@<ref>`` (its action.yml and
the source the action installs) and the GitLab template ``include: remote: .../ci/gitlab-audit.yml``.

GitHub: every step of every job of the workflow runs in order. A ``run:`` step runs under
``bash --noprofile --norc -eo pipefail`` in the workspace with ``${{ ... }}`` expressions substituted (inputs,
github, steps, env, always()/success()/failure(), ==, !=, &&, ||, !) and the runner's files in place
(``GITHUB_OUTPUT``, ``GITHUB_ENV``, ``GITHUB_PATH``, ``GITHUB_STEP_SUMMARY``, ``GITHUB_WORKSPACE``,
``GITHUB_ACTION_PATH``, ``RUNNER_TEMP``); ``if:`` decides whether a step runs, as on GitHub (a failed step skips
the rest unless ``always()``). A composite action (``runs.using: composite``) runs its own steps with its
``inputs``. Steps that ``uses:`` another action are stubbed with a line saying what they would do and what is done
here: ``actions/checkout`` (the workspace is the repository), ``actions/setup-python`` (a virtual environment of
this machine's Python put first on PATH), ``actions/upload-artifact`` (the files are copied to
``RUNNER_TEMP/artifacts/<name>/`` and listed).

GitLab: ``include:`` (local files, and the remote template mapped to the checkout), ``extends:`` (deep merge),
``variables:`` (global, job, then ``--variable`` as project CI/CD variables, which take precedence) and the job's
``before_script`` + ``script`` in one ``bash -eo pipefail`` shell, each command echoed; ``after_script`` always;
``artifacts`` collected by ``when:`` and their ``reports: junit`` file parsed as GitLab's test summary would;
``image:`` is stubbed like setup-python.

``--python-env DIR`` reuses (or creates) one virtual environment as the "set up Python" of every job, after
``pip uninstall claimaudit`` (as a runner's tool cache holds a Python, never audit): the recipe's own install step
must install audit, but the dependencies need not be downloaded again. Without it each job gets a new one.

Exit code: 0 when every job succeeded, 1 when one failed (the summary says which step and its exit code).
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import yaml


def say(msg: str) -> None:
    print(msg, flush=True)


# ---------------------------------------------------------------------------------------------------------------
# The environment a job starts from: the host's, without this repository's virtual environment


def base_env(workspace: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME") and not k.startswith(("GITHUB_", "CI_", "RUNNER_"))}
    own = {str(Path(sys.prefix) / "bin"), str(Path(sys.executable).parent)}
    if os.environ.get("VIRTUAL_ENV"):
        own.add(str(Path(os.environ["VIRTUAL_ENV"]) / "bin"))
    # A folder holding an `audit` command is not on a fresh runner: the recipe must install it.
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if p and p not in own and not (Path(p) / "audit").exists())
    env["CI"] = "true"
    env["HOME"] = os.environ.get("HOME", str(workspace))
    return env


def provide_python(python_env: Path | None, temp: Path, would: str) -> Path:
    """A Python for a job (the stand-in for setup-python or a python image): returns its bin folder."""
    host = getattr(sys, "_base_executable", sys.executable)
    target = python_env or (temp / "python")
    if not (target / "bin" / "python").exists():
        subprocess.run([host, "-m", "venv", str(target)], check=True)
        how = f"a new virtual environment {target} of this machine's Python"
    else:
        subprocess.run([str(target / "bin" / "python"), "-m", "pip", "uninstall", "--yes", "--quiet", "claimaudit"],
                       check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        how = (f"the virtual environment {target} (this machine's Python; claimaudit uninstalled, so the recipe's "
               "install step installs it; dependencies already there)")
    host_v = subprocess.run([str(target / "bin" / "python"), "-c", "import sys; print(sys.version.split()[0])"],
                            capture_output=True, text=True).stdout.strip()
    say(f"    [stub] {would}; here: {how}, Python {host_v}, first on PATH")
    return target / "bin"


# ---------------------------------------------------------------------------------------------------------------
# GitHub expressions: ${{ ... }} with contexts, literals, comparisons, && || ! and status functions

_TOKEN = re.compile(r"\s*(?:(?P<num>\d+(?:\.\d+)?)|(?P<str>'(?:[^']|'')*')|(?P<op>==|!=|&&|\|\||!|\(|\)|,)"
                    r"|(?P<id>[A-Za-z_][\w.\-*]*))")


class Expr:
    def __init__(self, text: str, ctx: dict, status: dict):
        self.toks: list[tuple[str, str]] = []
        pos = 0
        text = text.strip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise ValueError(f"cannot parse expression {text!r} at {text[pos:]!r}")
            kind = m.lastgroup
            self.toks.append((kind, m.group(kind)))
            pos = m.end()
            while pos < len(text) and text[pos].isspace():
                pos += 1
        self.i = 0
        self.ctx = ctx
        self.status = status

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value):
            raise ValueError(f"expected {value!r}, got {tok!r}")
        self.i += 1
        return tok

    def value(self) -> Any:
        v = self.or_()
        if self.peek() is not None:
            raise ValueError(f"unexpected {self.peek()!r}")
        return v

    def or_(self):
        v = self.and_()
        while self.peek() == ("op", "||"):
            self.take()
            w = self.and_()
            v = v if truthy(v) else w
        return v

    def and_(self):
        v = self.not_()
        while self.peek() == ("op", "&&"):
            self.take()
            w = self.not_()
            v = w if truthy(v) else v
        return v

    def not_(self):
        if self.peek() == ("op", "!"):
            self.take()
            return not truthy(self.not_())
        return self.cmp()

    def cmp(self):
        v = self.primary()
        tok = self.peek()
        if tok in (("op", "=="), ("op", "!=")):
            self.take()
            w = self.primary()
            eq = str(v).lower() == str(w).lower() if not isinstance(v, bool) and not isinstance(w, bool) else v == w
            return eq if tok[1] == "==" else not eq
        return v

    def primary(self):
        kind, text = self.take()
        if kind == "num":
            return float(text)
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if text == "(":
            v = self.or_()
            self.take(")")
            return v
        if kind == "id":
            if text in ("true", "false"):
                return text == "true"
            if text == "null":
                return None
            if self.peek() == ("op", "("):  # a function
                self.take("(")
                args = []
                while self.peek() != ("op", ")"):
                    args.append(self.or_())
                    if self.peek() == ("op", ","):
                        self.take()
                self.take(")")
                return call(text, args, self.status)
            v: Any = self.ctx
            for part in text.split("."):
                v = v.get(part) if isinstance(v, dict) else None
            return v
        raise ValueError(f"unexpected {text!r}")


def truthy(v: Any) -> bool:
    return bool(v) and v not in ("", 0, 0.0)


def call(name: str, args: list, status: dict):
    if name == "always":
        return True
    if name == "success":
        return not status["failed"]
    if name == "failure":
        return status["failed"]
    if name == "cancelled":
        return False
    if name == "contains":
        return str(args[1]).lower() in str(args[0]).lower()
    if name == "format":
        return re.sub(r"\{(\d+)\}", lambda m: str(args[int(m.group(1)) + 1]), str(args[0]))
    raise ValueError(f"expression function {name}() is not supported here")


def substitute(text: Any, ctx: dict, status: dict) -> Any:
    if not isinstance(text, str):
        return text
    return re.sub(r"\$\{\{(.*?)\}\}", lambda m: _str(Expr(m.group(1), ctx, status).value()), text)


def _str(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def condition(cond: Any, ctx: dict, status: dict) -> bool:
    if cond is None:
        return not status["failed"]
    if isinstance(cond, bool):
        return cond and not status["failed"]
    text = str(cond).strip()
    if text.startswith("${{") and text.endswith("}}"):
        text = text[3:-2]
    value = truthy(Expr(text, ctx, status).value())
    if not re.search(r"\b(always|success|failure|cancelled)\s*\(", text):
        value = value and not status["failed"]  # GitHub's implied success() &&
    return value


# ---------------------------------------------------------------------------------------------------------------
# GitHub Actions


class GitHubRunner:
    def __init__(self, workspace: Path, audit: Path, python_env: Path | None):
        self.workspace = workspace.resolve()
        self.audit = audit.resolve()
        self.python_env = python_env
        self.temp = Path(tempfile.mkdtemp(prefix="runner-temp-"))
        self.env = base_env(self.workspace)
        self.path_prefix: list[str] = []
        self.summary = self.temp / "step_summary.md"
        self.summary.write_text("")
        self.artifacts: dict[str, list[str]] = {}
        self.log: list[dict] = []
        self.inner_failed_step: str | None = None

    def github_ctx(self, action_path: Path | None = None) -> dict:
        return {"workspace": str(self.workspace), "event_name": "pull_request", "action_path": str(action_path or ""),
                "repository": "user/scratch", "ref": "refs/pull/1/merge", "sha": self._sha(),
                "token": "stub-token", "event": {"pull_request": {"number": 1}}}

    def _sha(self) -> str:
        p = subprocess.run(["git", "rev-parse", "HEAD"], cwd=self.workspace, capture_output=True, text=True)
        return p.stdout.strip()

    def run_workflow(self, path: Path) -> dict:
        wf = yaml.safe_load(path.read_text())
        result = {"jobs": {}}
        for job_name, job in (wf.get("jobs") or {}).items():
            say(f"[github] job {job_name} (runs-on {job.get('runs-on')}: this machine)")
            status = {"failed": False, "exit_code": 0, "failed_step": None}
            ctx = {"github": self.github_ctx(), "env": {**(wf.get("env") or {}), **(job.get("env") or {})},
                   "steps": {}, "inputs": {}}
            for i, step in enumerate(job.get("steps") or []):
                self.step(step, ctx, status, action_path=None, where=f"{job_name} step {i + 1}")
            result["jobs"][job_name] = {"status": "failure" if status["failed"] else "success",
                                        "exit_code": status["exit_code"], "failed_step": status["failed_step"],
                                        "steps": ctx["steps"], "summary": self.summary.read_text(),
                                        "artifacts": self.artifacts, "log": self.log}
            say(f"[github] job {job_name}: {'failure' if status['failed'] else 'success'}"
                + (f" (step {status['failed_step']!r} exited {status['exit_code']})" if status["failed"] else ""))
        return result

    def step(self, step: dict, ctx: dict, status: dict, action_path: Path | None, where: str) -> None:
        name = step.get("name") or step.get("uses") or ((step.get("run") or "").strip().splitlines() or ["?"])[0][:60]
        if not condition(step.get("if"), ctx, status):
            say(f"  - {name}: skipped (if: {step.get('if', 'success()')})")
            self.log.append({"step": name, "skipped": True})
            return
        say(f"  - {name}")
        env = {k: substitute(v, ctx, status) for k, v in (step.get("env") or {}).items()}
        outputs: dict = {}
        code = 0
        if "uses" in step:
            with_ = {k: substitute(v, ctx, status) for k, v in (step.get("with") or {}).items()}
            self.inner_failed_step = None
            code, outputs = self.uses(step["uses"], with_, ctx, status)
            if code and self.inner_failed_step:
                name = f"{name} › {self.inner_failed_step}"
        elif "run" in step:
            script = substitute(step["run"], ctx, status)
            code, outputs = self.run(script, {**{k: _str(v) for k, v in ctx["env"].items()}, **env},
                                     step.get("working-directory"), action_path, step.get("shell", "bash"))
        if step.get("id"):
            ctx["steps"][step["id"]] = {"outputs": outputs, "outcome": "failure" if code else "success"}
        self.log.append({"step": name, "exit_code": code})
        if code and not step.get("continue-on-error"):
            say(f"    exited {code}")
            if not status["failed"]:
                status.update(failed=True, exit_code=code, failed_step=name)

    def run(self, script: str, env: dict, workdir: str | None, action_path: Path | None, shell: str):
        if shell != "bash":
            raise SystemExit(f"shell {shell!r} is not supported here (the recipes use bash)")
        files = {k: self.temp / f"{k.lower()}_{len(self.log)}" for k in ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH")}
        for f in files.values():
            f.write_text("")
        script_file = self.temp / f"step_{len(self.log)}.sh"
        script_file.write_text(script)
        full = {**self.env, **env, **{k: str(v) for k, v in files.items()},
                "GITHUB_STEP_SUMMARY": str(self.summary), "GITHUB_WORKSPACE": str(self.workspace),
                "RUNNER_TEMP": str(self.temp), "GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request"}
        if action_path is not None:
            full["GITHUB_ACTION_PATH"] = str(action_path)
        full["PATH"] = os.pathsep.join([*self.path_prefix, self.env["PATH"]])
        cwd = self.workspace / workdir if workdir else self.workspace
        proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script_file)], cwd=cwd,
                              env=full, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for line in proc.stdout.splitlines():
            say(f"    | {line}")
        outputs = parse_github_file(files["GITHUB_OUTPUT"].read_text())
        self.env.update(parse_github_file(files["GITHUB_ENV"].read_text()))
        self.path_prefix[:0] = [p for p in files["GITHUB_PATH"].read_text().splitlines() if p.strip()]
        return proc.returncode, outputs

    def uses(self, ref: str, with_: dict, ctx: dict, status: dict):
        action = ref.split("@")[0]
        if action == "actions/checkout":
            say(f"    [stub] {ref}: would check out the repository; here: the workspace {self.workspace} is the "
                f"scratch repository (HEAD {self._sha()[:12]})")
            return 0, {}
        if action == "actions/setup-python":
            bin_dir = provide_python(self.python_env, self.temp, f"{ref}: would install Python "
                                     f"{with_.get('python-version', '3.x')} and put it first on PATH")
            self.path_prefix.insert(0, str(bin_dir))
            return 0, {"python-version": with_.get("python-version", "")}
        if action == "actions/upload-artifact":
            return self.upload(ref, with_)
        if action.endswith("/audit") or action == "." or action == "./":
            return self.composite(ref, self.audit, with_, status)
        raise SystemExit(f"{ref}: no stub for this action here")

    def upload(self, ref: str, with_: dict):
        name = with_.get("name") or "artifact"
        dest = self.temp / "artifacts" / name
        files = []
        for pattern in str(with_.get("path", "")).splitlines():
            src = self.workspace / pattern.strip()
            if src.is_dir():
                shutil.copytree(src, dest, dirs_exist_ok=True)
                files += [str(p.relative_to(dest)) for p in sorted(dest.rglob("*")) if p.is_file()]
            elif src.is_file():
                dest.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest / src.name)
                files.append(src.name)
        self.artifacts[name] = files
        if not files:
            missing = with_.get("if-no-files-found", "warn")
            say(f"    [stub] {ref}: no files at {with_.get('path')!r} (if-no-files-found: {missing})")
            return (1 if missing == "error" else 0), {}
        say(f"    [stub] {ref}: would upload artifact {name!r}; here: copied to {dest}: {', '.join(files)}")
        return 0, {"artifact-id": "0"}

    def composite(self, ref: str, path: Path, with_: dict, outer_status: dict):
        spec = yaml.safe_load((path / "action.yml").read_text())
        if (spec.get("runs") or {}).get("using") != "composite":
            raise SystemExit(f"{ref}: not a composite action")
        inputs = {}
        for k, d in (spec.get("inputs") or {}).items():
            if k in with_:
                inputs[k] = _str(with_[k])
            elif d.get("required") and "default" not in d:
                say(f"    {ref}: required input {k!r} missing")
                return 1, {}
            else:
                inputs[k] = _str(d.get("default", ""))
        unknown = set(with_) - set(spec.get("inputs") or {})
        if unknown:
            say(f"    warning: {ref} has no input(s) {sorted(unknown)} (GitHub warns and ignores them)")
        say(f"    composite action {ref} → {path}/action.yml ({len(spec['runs']['steps'])} steps)")
        status = {"failed": outer_status["failed"], "exit_code": 0, "failed_step": None}
        ctx = {"inputs": inputs, "github": self.github_ctx(path), "steps": {}, "env": {}}
        for i, step in enumerate(spec["runs"]["steps"]):
            self.step(step, ctx, status, action_path=path, where=f"{ref} step {i + 1}")
        outputs = {k: substitute(v.get("value", ""), ctx, status) for k, v in (spec.get("outputs") or {}).items()}
        say(f"    outputs: {outputs}")
        self.inner_failed_step = status["failed_step"]
        return (status["exit_code"] if status["failed"] else 0), outputs


def parse_github_file(text: str) -> dict[str, str]:
    """KEY=value lines and KEY<<DELIM ... DELIM blocks (GITHUB_OUTPUT, GITHUB_ENV)."""
    out: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, delim = line.split("<<", 1)
            block = []
            i += 1
            while i < len(lines) and lines[i] != delim:
                block.append(lines[i])
                i += 1
            out[key] = "\n".join(block)
        elif "=" in line:
            key, value = line.split("=", 1)
            out[key] = value
        i += 1
    return out


# ---------------------------------------------------------------------------------------------------------------
# GitLab CI

_RESERVED = {"include", "stages", "variables", "default", "workflow", "image", "services", "before_script",
             "after_script", "cache"}


def deep_merge(base: Any, over: Any) -> Any:
    """GitLab's merge for include and extends: hashes merge key by key, anything else is replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = copy.deepcopy(base)
        for k, v in over.items():
            out[k] = deep_merge(out[k], v) if k in out else copy.deepcopy(v)
        return out
    return copy.deepcopy(over)


def expand(text: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: variables.get(m.group(1), ""), str(text))


class GitLabRunner:
    def __init__(self, workspace: Path, audit: Path, python_env: Path | None, overrides: dict[str, str]):
        self.workspace = workspace.resolve()
        self.audit = audit.resolve()
        self.python_env = python_env
        self.overrides = overrides
        self.temp = Path(tempfile.mkdtemp(prefix="gitlab-runner-"))

    def load(self, path: Path) -> dict:
        config = yaml.safe_load(path.read_text()) or {}
        includes = config.pop("include", None) or []
        merged: dict = {}
        for inc in includes if isinstance(includes, list) else [includes]:
            if isinstance(inc, str):
                inc = {"remote": inc} if "://" in inc else {"local": inc}
            if "local" in inc:
                src = self.workspace / inc["local"].lstrip("/")
                say(f"[gitlab] include local {inc['local']}")
            elif "remote" in inc and inc["remote"].endswith("/ci/gitlab-audit.yml"):
                src = self.audit / "ci" / "gitlab-audit.yml"
                say(f"[gitlab] [stub] include remote {inc['remote']}: would be fetched over HTTPS; here: {src}")
            else:
                raise SystemExit(f"include {inc} is not supported here")
            merged = deep_merge(merged, yaml.safe_load(src.read_text()) or {})
        return deep_merge(merged, config)

    def resolve(self, config: dict, name: str, seen: tuple = ()) -> dict:
        job = config[name]
        parents = job.get("extends") or []
        if isinstance(parents, str):
            parents = [parents]
        out: dict = {}
        for p in parents:
            if p in seen:
                raise SystemExit(f"extends loop at {p}")
            out = deep_merge(out, self.resolve(config, p, (*seen, name)))
        out = deep_merge(out, {k: v for k, v in job.items() if k != "extends"})
        return out

    def run_pipeline(self, path: Path) -> dict:
        config = self.load(path)
        jobs = [k for k in config if not k.startswith(".") and k not in _RESERVED]
        result = {"jobs": {}}
        for name in jobs:
            result["jobs"][name] = self.run_job(config, name)
        return result

    def run_job(self, config: dict, name: str) -> dict:
        job = self.resolve(config, name)
        default = config.get("default") or {}
        image = job.get("image") or default.get("image") or config.get("image")
        say(f"[gitlab] job {name}" + (f" (image {image})" if image else ""))
        variables = {"CI": "true", "GITLAB_CI": "true", "CI_PROJECT_DIR": str(self.workspace), "CI_JOB_NAME": name,
                     "CI_MERGE_REQUEST_IID": "1"}
        for src in (config.get("variables") or {}, job.get("variables") or {}):
            for k, v in src.items():
                variables[k] = str(v.get("value", "") if isinstance(v, dict) else v)
        for k, v in self.overrides.items():
            say(f"    project CI/CD variable {k}={v} (overrides the YAML)")
            variables[k] = v
        env = {**base_env(self.workspace), **variables}
        bin_dir = provide_python(self.python_env, self.temp, f"image {image}: would run the job in a container of it")
        env["PATH"] = os.pathsep.join([str(bin_dir), env["PATH"]])
        before = job.get("before_script", default.get("before_script", config.get("before_script"))) or []
        script = job.get("script") or []
        code = self.shell([*before, *script], env)
        after = job.get("after_script", default.get("after_script", config.get("after_script"))) or []
        if after:
            self.shell(after, env)
        status = "success" if code == 0 else "failed"
        art = job.get("artifacts") or {}
        when = art.get("when", "on_success")
        collected, junit = [], None
        if when == "always" or (when == "on_success") == (code == 0):
            collected, junit = self.collect(art, variables)
        say(f"[gitlab] job {name}: {status}" + (f" (exit {code})" if code else ""))
        return {"status": status, "exit_code": code, "artifacts": collected, "junit": junit,
                "expose_as": art.get("expose_as"), "variables": variables}

    def shell(self, commands: list[str], env: dict) -> int:
        lines = ["set -eo pipefail"]
        for cmd in commands:
            lines.append(f"printf '%s\\n' {shlex_quote('$ ' + cmd)}")
            lines.append(cmd)
        script = self.temp / f"script_{len(list(self.temp.iterdir()))}.sh"
        script.write_text("\n".join(lines) + "\n")
        proc = subprocess.run(["bash", "--noprofile", "--norc", str(script)], cwd=self.workspace, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for line in proc.stdout.splitlines():
            say(f"    | {line}")
        return proc.returncode

    def collect(self, art: dict, variables: dict) -> tuple[list[str], dict | None]:
        dest = self.temp / "artifacts"
        files: list[str] = []
        for p in art.get("paths") or []:
            src = self.workspace / expand(p, variables)
            if src.is_dir():
                shutil.copytree(src, dest / src.relative_to(self.workspace), dirs_exist_ok=True)
            elif src.is_file():
                (dest / src.relative_to(self.workspace)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest / src.relative_to(self.workspace))
            else:
                say(f"    WARNING: {p}: no matching files")
        files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()) if dest.exists() else []
        say(f"    [stub] artifacts: would upload {len(files)} file(s) (expose_as: {art.get('expose_as')!r}); here: "
            f"{dest}: {', '.join(files)}")
        junit = None
        report = (art.get("reports") or {}).get("junit")
        if report:
            path = self.workspace / expand(report, variables)
            if not path.is_file():
                say(f"    WARNING: reports:junit {report}: no such file")
                junit = {"file": str(report), "error": "missing"}
            else:
                root = ET.parse(path).getroot()
                cases = list(root.iter("testcase"))
                junit = {"file": str(report), "tests": len(cases),
                         "failed": sum(c.find("failure") is not None for c in cases),
                         "skipped": sum(c.find("skipped") is not None for c in cases),
                         "failed_cases": [c.get("name") for c in cases if c.find("failure") is not None]}
                say(f"    [stub] reports:junit {report}: the merge request's test summary would show "
                    f"{junit['tests']} tests, {junit['failed']} failed, {junit['skipped']} skipped")
        return files, junit


def shlex_quote(s: str) -> str:
    import shlex

    return shlex.quote(s)


# ---------------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("system", choices=["github", "gitlab"])
    ap.add_argument("file", type=Path, help="the workflow (.github/workflows/*.yml) or .gitlab-ci.yml")
    ap.add_argument("--workspace", type=Path, required=True, help="the user's repository (a scratch git repository)")
    ap.add_argument("--audit", type=Path, required=True, help="a checkout of audit (the action and the template)")
    ap.add_argument("--python-env", type=Path, default=None, help="reuse this virtual environment as the job's Python")
    ap.add_argument("--variable", action="append", default=[], metavar="K=V", help="GitLab project CI/CD variable")
    ap.add_argument("--json", type=Path, default=None, help="write the jobs' results here")
    ap.add_argument("--keep", action="store_true", help="keep the runner's temporary folder (artifacts, scripts)")
    args = ap.parse_args(argv)
    if (args.workspace.resolve() / ".git").exists() and args.workspace.resolve() == args.audit.resolve():
        print("error: the workspace must be a user's repository, not audit's own checkout", file=sys.stderr)
        return 2
    if args.system == "github":
        runner: Any = GitHubRunner(args.workspace, args.audit, args.python_env)
    else:
        overrides = dict(v.split("=", 1) for v in args.variable)
        runner = GitLabRunner(args.workspace, args.audit, args.python_env, overrides)
    try:
        result = runner.run_workflow(args.file) if args.system == "github" else runner.run_pipeline(args.file)
    finally:
        if not args.keep:
            shutil.rmtree(runner.temp, ignore_errors=True)
    result["runner_temp"] = str(runner.temp) + ("" if args.keep else " (removed; --keep keeps it)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    failed = [n for n, j in result["jobs"].items() if j["status"] not in ("success",)]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
