"""Claim file validation: every problem at once, with line, field, value and a fix."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from audit.claim import json_schema, load_claim
from audit.cli import main
from audit.errors import InputError
from conftest import arm_rows, write_jsonl

GOOD = """\
claim:
  title: "Verification prompting improves add-small accuracy"
  metric: exact_match
  reported:
    baseline: 0.15
    treatment: 0.30
    delta: 0.15
    n: 40
    p_value: 0.04
    test: fisher
  settings: {max_tokens: 16}
samples:
  format: jsonl
  baseline:  {16: runs/base_16/*.jsonl, 64: runs/base_64/*.jsonl}
  treatment: {16: runs/treat_16/*.jsonl, 64: runs/treat_64/*.jsonl}
perturbations:
  scorings: [exact, last-number]
"""


@pytest.fixture
def runs(tmp_path):
    for arm in ("base", "treat"):
        for b in (16, 64):
            write_jsonl(tmp_path / f"runs/{arm}_{b}/samples.jsonl", arm_rows([1, 0, 1]))
    return tmp_path


def problems_of(path) -> list:
    with pytest.raises(InputError) as exc:
        load_claim(path)
    return exc.value.problems


def test_issue_example_loads_and_resolves_relative_paths(runs):
    p = runs / "claim.yaml"
    p.write_text(GOOD)
    c = load_claim(p)
    assert c.claimed_budget == 16
    assert c.claim.reported.counts("baseline").passes == 6
    assert c.scorings() == ["exact", "last-number"]
    assert c.base_dir == runs.resolve()


@pytest.mark.parametrize("alias", ["n_predict", "max_gen_toks", "max_tokens"])
def test_budget_aliases(runs, alias):
    p = runs / "claim.yaml"
    p.write_text(GOOD.replace("max_tokens", alias))
    assert load_claim(p).claim.settings.max_tokens == 16


def test_yaml_syntax_error_names_line(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("claim:\n  title: x\n  reported: {baseline: 0.1\n  metric: y\n")
    (prob,) = problems_of(p)
    assert prob.file == str(p)
    assert prob.line in (3, 4, 5)
    assert "YAML syntax error" in prob.message
    assert prob.fix


def test_unknown_key_did_you_mean_with_line(runs):
    p = runs / "claim.yaml"
    p.write_text(GOOD.replace("  metric: exact_match", "  metrc: exact_match"))
    (prob,) = problems_of(p)
    assert prob.line == 3
    assert prob.field == "claim.metrc"
    assert "did you mean 'metric'" in prob.fix


def test_all_problems_reported_at_once(runs):
    text = (GOOD.replace("  metric: exact_match", "  metrc: exact_match")
            .replace("treatment: 0.30", "treatment: 30")
            .replace("p_value: 0.04", "p_value: 1.5")
            .replace("format: jsonl", "format: xml"))
    p = runs / "claim.yaml"
    p.write_text(text)
    probs = problems_of(p)
    fields = {pr.field for pr in probs}
    assert {"claim.metrc", "claim.reported.treatment", "claim.reported.p_value", "samples.format"} <= fields
    by_field = {pr.field: pr for pr in probs}
    assert by_field["claim.reported.treatment"].line == 6
    assert by_field["claim.reported.p_value"].value == 1.5
    assert by_field["samples.format"].line == 13


def test_missing_files_named(runs):
    p = runs / "claim.yaml"
    p.write_text(GOOD.replace("runs/base_64/*.jsonl", "runs/nope_64/*.jsonl"))
    (prob,) = problems_of(p)
    assert prob.field == "samples.baseline.64"
    assert prob.line == 14
    assert "no file matches" in prob.message


def test_claimed_budget_without_logs(runs):
    p = runs / "claim.yaml"
    p.write_text(GOOD.replace("max_tokens: 16", "max_tokens: 32"))
    (prob,) = problems_of(p)
    assert prob.field == "claim.settings.max_tokens"
    assert "32" in prob.message


def test_budgets_must_match_between_arms(runs):
    p = runs / "claim.yaml"
    p.write_text(GOOD.replace("treatment: {16: runs/treat_16/*.jsonl, 64: runs/treat_64/*.jsonl}",
                              "treatment: {16: runs/treat_16/*.jsonl}"))
    probs = problems_of(p)
    assert any("budgets" in pr.message for pr in probs)


def test_counts_only_claim_is_valid(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("claim:\n  title: t\n  reported:\n    baseline: {passes: 4, n: 89}\n    treatment: {passes: 6, n: 89}\n")
    c = load_claim(p)
    assert c.samples is None
    assert c.claim.reported.counts("treatment").passes == 6


def test_passes_above_n_rejected(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("claim:\n  title: t\n  reported:\n    baseline: {passes: 90, n: 89}\n    treatment: 0.1\n")
    probs = problems_of(p)
    assert any("exceeds n" in pr.message for pr in probs)


def test_empty_claim_needs_something_to_audit(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("claim:\n  title: t\n")
    (prob,) = problems_of(p)
    assert "nothing to audit" in prob.message


def test_unknown_check_name(runs):
    p = runs / "claim.yaml"
    p.write_text(GOOD + "checks:\n  truncaton: {}\n")
    (prob,) = problems_of(p)
    assert prob.field == "checks.truncaton"
    assert "did you mean 'truncation'" in prob.fix


def test_bad_check_parameter(runs):
    p = runs / "claim.yaml"
    p.write_text(GOOD + "checks:\n  truncation: {high_rat: 0.2}\n")
    (prob,) = problems_of(p)
    assert prob.field == "checks.truncation.high_rat"
    assert "high_rate" in prob.fix


def test_missing_claim_file(tmp_path):
    (prob,) = problems_of(tmp_path / "nope.yaml")
    assert "not found" in prob.message


def test_validate_cli_exit_2_and_message(runs):
    p = runs / "claim.yaml"
    p.write_text(GOOD.replace("  metric: exact_match", "  metrc: exact_match"))
    res = CliRunner().invoke(main, ["validate", str(p)])
    assert res.exit_code == 2
    assert f"{p}:3: claim.metrc: unknown key" in res.output
    assert "did you mean 'metric'" in res.output


def test_validate_cli_ok(runs):
    p = runs / "claim.yaml"
    p.write_text(GOOD)
    res = CliRunner().invoke(main, ["validate", str(p)])
    assert res.exit_code == 0, res.output
    assert "valid" in res.output


def test_schema_is_json_and_forbids_extra_keys():
    res = CliRunner().invoke(main, ["schema"])
    assert res.exit_code == 0
    schema = json.loads(res.output)
    assert schema == json_schema()
    assert schema["additionalProperties"] is False
    assert "path" not in schema["properties"]
    assert set(schema["required"]) == {"claim"}
