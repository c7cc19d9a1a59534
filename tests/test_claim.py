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
  settings: {max_tokens: 16, scoring: exact}
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


# A perturbation scoring must not silently become the claimed scoring (samples without claim.settings.scoring).
TOY = """\
claim:
  title: toy
  metric: toy
  settings: {max_tokens: 16}
samples:
  format: jsonl
  baseline:  {16: runs/base.jsonl}
  treatment: {16: runs/treat.jsonl}
scorers:
  starts-with: {regex: "^(1)", select: first}
perturbations:
  scorings: [starts-with]
"""


@pytest.fixture
def toy_runs(tmp_path):
    for arm, correct in (("base", [1, 0, 1, 0]), ("treat", [1, 1, 1, 0])):
        write_jsonl(tmp_path / f"runs/{arm}.jsonl", arm_rows(correct, scores={"toy": [0.5] * 4}))
    return tmp_path


def test_metric_replaced_by_a_perturbation_scoring_is_an_error_at_its_line(toy_runs):
    p = toy_runs / "claim.yaml"
    p.write_text(TOY)
    (prob,) = problems_of(p)
    assert prob.line == 12
    assert prob.field == "perturbations.scorings.0"
    assert prob.value == "starts-with"
    assert "claim.metric is 'toy' but claim.settings.scoring is not set" in prob.message
    assert "'starts-with', would silently become the claimed scoring in place of 'toy'" in prob.message
    fix = ("set claim.settings.scoring to the claimed scoring, e.g. `scoring: toy` for the logged scores, and keep "
           "starts-with as a perturbation")
    assert prob.fix == fix
    res = CliRunner().invoke(main, ["validate", str(p)])
    assert res.exit_code == 2
    assert f"{p}:12: perturbations.scorings.0: claim.metric is 'toy'" in res.output
    assert f"fix: {fix}" in res.output


@pytest.mark.parametrize("fmt", ["json", "csv", "parquet", "inspect"])
def test_metric_replaced_by_a_perturbation_scoring_in_any_generic_format(toy_runs, fmt):
    p = toy_runs / "claim.yaml"
    p.write_text(TOY.replace("format: jsonl", f"format: {fmt}"))
    with pytest.raises(InputError) as exc:
        load_claim(p, check_files=False)
    assert [x.field for x in exc.value.problems] == ["perturbations.scorings.0"]


def test_claimed_scoring_set_keeps_the_logged_metric_claimed(toy_runs):
    from audit.importers import load_records

    p = toy_runs / "claim.yaml"
    p.write_text(TOY.replace("settings: {max_tokens: 16}", "settings: {max_tokens: 16, scoring: toy}"))
    c = load_claim(p)
    assert c.scorings() == ["toy", "starts-with"]
    assert load_records(c).scorings() == ["toy", "starts-with"]
    assert CliRunner().invoke(main, ["validate", str(p)]).exit_code == 0


@pytest.mark.parametrize("change", [
    ("  metric: toy\n", ""),  # no claim.metric: the first perturbation scoring is the claimed one, as documented
    ("scorings: [starts-with]", "scorings: [toy, starts-with]"),  # the metric is the first scoring
    ("scorings: [starts-with]", "scorings: []"),
])
def test_claims_without_the_trap_load(toy_runs, change):
    p = toy_runs / "claim.yaml"
    p.write_text(TOY.replace(*change))
    load_claim(p)


def test_default_metric_as_a_label_is_not_the_trap(toy_runs):
    """exact_match, the default metric, is written by most claims as the label of the headline number: with no
    logged exact_match score nothing is dropped, and the first perturbation scoring is the claimed one."""
    from audit.importers import load_records

    p = toy_runs / "claim.yaml"
    p.write_text(TOY.replace("metric: toy", "metric: exact_match"))
    assert load_records(load_claim(p)).scorings() == ["starts-with"]


def test_default_metric_the_logs_carry_is_caught_when_they_are_read(tmp_path):
    from audit.importers import load_records

    for arm in ("base", "treat"):
        write_jsonl(tmp_path / f"runs/{arm}.jsonl", arm_rows([1, 0, 1, 0], scores={"exact_match": [1, 0, 1, 0]}))
    p = tmp_path / "claim.yaml"
    p.write_text(TOY.replace("metric: toy", "metric: exact_match"))
    c = load_claim(p)  # the claim file alone cannot tell a label from a logged score
    with pytest.raises(InputError) as exc:
        load_records(c)
    (prob,) = exc.value.problems
    assert (prob.file, prob.line, prob.field, prob.value) == (str(p.resolve()), 12, "perturbations.scorings[0]",
                                                              "starts-with")
    assert "claim.metric is 'exact_match' but claim.settings.scoring is not set" in prob.message
    assert "(the logs carry exact_match as a score)" in prob.message
    assert prob.fix.startswith("set claim.settings.scoring to the claimed scoring, e.g. `scoring: exact_match`")
    res = CliRunner().invoke(main, ["validate", str(p)])
    assert res.exit_code == 2
    assert ":12: perturbations.scorings[0]: claim.metric is 'exact_match'" in res.output
    p.write_text(TOY.replace("metric: toy", "metric: exact_match")
                 .replace("settings: {max_tokens: 16}", "settings: {max_tokens: 16, scoring: exact_match}"))
    assert load_records(load_claim(p)).scorings() == ["exact_match", "starts-with"]


def test_lmeval_filters_as_perturbations_are_not_the_trap(tmp_path):
    """In lm-eval logs the metric is read under every filter, so it is never one of the scorings: the first filter
    as the claimed one is the documented default, not a metric silently dropped."""
    p = tmp_path / "claim.yaml"
    p.write_text(TOY.replace("metric: toy", "metric: exact_match").replace("format: jsonl", "format: lm-eval")
                 .replace("scorings: [starts-with]", "scorings: [strict-match, flexible-extract]"))
    c = load_claim(p, check_files=False)
    assert c.scorings() == ["strict-match", "flexible-extract"]
