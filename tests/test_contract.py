"""The contract between checks, findings and renderers, checked on the source (CONTRIBUTING.md):

- the check list is pinned by a golden file, so a new check is a deliberate change there;
- every check module declares its own SPEC and is in the registry;
- no finding outcome, severity or impact is written as a string literal outside audit/findings.py;
- no statistic is read by key outside the check that wrote it (checks/) and audit/findings.py;
- the recipe for a new check, followed once: a module with its SPEC, registered, runs in an audit.
"""
from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from conftest import REPO, arm_rows, write_jsonl

GOLDEN = REPO / "tests" / "data" / "golden" / "checks.txt"
SOURCES = [p for folder in ("audit", "checks", "reports") for p in sorted((REPO / folder).rglob("*.py"))]
LITERALS = {"pass", "flag", "inconclusive", "info", "minor", "major", "critical", "none", "fragile",
            "not_reproduced", "reproduced", "untrusted_input"}


def _check_list() -> str:
    from audit.checks import REGISTRY

    lines = []
    for name, spec in REGISTRY.items():
        params = ", ".join(f"{k}={f.default!r}" if not f.is_required() else k
                           for k, f in spec.params.model_fields.items() if f.default_factory is None) or "-"
        factories = ", ".join(k for k, f in spec.params.model_fields.items() if f.default_factory is not None)
        lines.append(f"{name}\tneeds_samples={spec.needs_samples}\tparams: {params}"
                     + (f"; {factories} (defaults built)" if factories else "") + f"\t{spec.description}")
    return "\n".join(lines) + "\n"


def test_the_check_list_is_pinned():
    got = _check_list()
    if os.environ.get("AUDIT_UPDATE_GOLDEN"):
        GOLDEN.write_text(got, encoding="utf-8")
    assert got == GOLDEN.read_text(encoding="utf-8"), (
        "the registry changed; if intended, regenerate with AUDIT_UPDATE_GOLDEN=1 pytest tests/test_contract.py")


def test_every_check_module_declares_its_spec_and_is_registered():
    from audit.checks import MODULES, REGISTRY

    files = {p.stem for p in (REPO / "checks").glob("*.py") if not p.stem.startswith("_")}
    assert {m.__name__.rsplit(".", 1)[1] for m in MODULES} == files
    for m in MODULES:
        assert m.SPEC.name == m.NAME and REGISTRY[m.NAME] is m.SPEC and m.SPEC.run is m.run


def _calls_named(tree: ast.AST, names: set[str]):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
            if name in names:
                yield node


def test_no_outcome_severity_or_impact_as_a_string_literal():
    bad = []
    for path in SOURCES:
        if path == REPO / "audit" / "findings.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for call in _calls_named(tree, {"Finding", "Judgement"}):
            args = call.args[2:3] if isinstance(call.func, ast.Name) and call.func.id == "Finding" else call.args[1:4]
            values = [*args, *(k.value for k in call.keywords if k.arg in ("outcome", "severity", "impact"))]
            bad += [f"{path.relative_to(REPO)}:{v.lineno}" for v in values
                    if isinstance(v, ast.Constant) and isinstance(v.value, str) and v.value in LITERALS]
    assert bad == []


def test_no_statistic_read_by_key_outside_the_checks():
    bad = []
    for path in SOURCES:
        if path.parent == REPO / "checks" or path == REPO / "audit" / "findings.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            target = None
            if isinstance(node, ast.Subscript):
                target = node.value
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
                target = node.func.value
            if isinstance(target, ast.Attribute) and target.attr == "statistic":
                bad.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert bad == []


def test_the_check_recipe_followed_once(tmp_path, monkeypatch):
    """CONTRIBUTING.md, "A check": one module with run, Params and SPEC; registered; it runs and its finding shows."""
    from pydantic import BaseModel, ConfigDict

    from audit import checks
    from audit.checks import CheckSpec, Context
    from audit.claim import load_claim
    from audit.findings import Finding, Outcome, Severity
    from audit.verify import verify

    class LongOutputsParams(BaseModel):
        model_config = ConfigDict(extra="forbid")
        limit: int = 5

    def run(ctx: Context, params: LongOutputsParams) -> list[Finding]:
        p = ctx.samples.paired(ctx.claimed_scoring, ctx.claimed_budget)
        long = int(sum(len(t or "") > params.limit for t in p.frame["text_t"]))
        return [Finding("long_outputs", "counted", Outcome.info, f"{long} treatment output(s) longer than "
                        f"{params.limit} characters", severity=Severity.info, statistic={"long": long})]

    spec = CheckSpec("long_outputs", run, LongOutputsParams, needs_samples=True, description="a recipe test")
    monkeypatch.setitem(checks.REGISTRY, "long_outputs", spec)
    import audit.verify as verify_module

    monkeypatch.setattr(verify_module, "REGISTRY", checks.REGISTRY)
    (tmp_path / "logs").mkdir()
    write_jsonl(tmp_path / "logs/base.jsonl", arm_rows([1, 0, 1, 0]))
    write_jsonl(tmp_path / "logs/treat.jsonl", arm_rows([1, 1, 1, 0], texts=["1", "1 because", "1", "0"]))
    (tmp_path / "claim.yaml").write_text(
        "claim: {title: t, metric: exact, settings: {max_tokens: 16}}\n"
        "samples: {format: jsonl, baseline: {16: logs/base.jsonl}, treatment: {16: logs/treat.jsonl}}\n"
        "options: {resamples: 1000}\n")
    report = verify(load_claim(tmp_path / "claim.yaml")).report
    assert "long_outputs" in report.checks_run
    f = next(f for f in report.findings if f.check == "long_outputs")
    assert f.statistic["long"] == 1 and f.title.startswith("1 treatment output(s) longer than 5")


@pytest.fixture(autouse=True)
def _golden_exists():
    if not GOLDEN.exists() and not os.environ.get("AUDIT_UPDATE_GOLDEN"):
        pytest.fail(f"{GOLDEN} missing: run AUDIT_UPDATE_GOLDEN=1 pytest tests/test_contract.py")


def test_no_function_over_80_lines():
    """CONTRIBUTING.md: no function over 80 lines in audit/, checks/, reports/ (docstring included)."""
    long = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno is not None:
                if node.end_lineno - node.lineno + 1 > 80:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}")
    assert long == []


def test_the_command_line_module_stays_thin():
    """The commands parse options and call the library (DESIGN.md, house style 1): cli.py under 300 lines."""
    assert len((REPO / "audit" / "cli.py").read_text(encoding="utf-8").splitlines()) < 300


def test_every_type_ignore_names_its_code_and_reason():
    """CONTRIBUTING.md, "Lint and types": `# type: ignore[code]  # reason`, never a bare ignore."""
    import re

    bare = [f"{p.relative_to(REPO)}:{i}" for p in SOURCES
            for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
            if "type: ignore" in line and not re.search(r"# type: ignore\[[\w-]+(, [\w-]+)*\]\s+#\s*\S", line)]
    assert bare == []
