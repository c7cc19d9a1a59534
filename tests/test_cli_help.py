"""What `audit --help` and `audit checks` print is whole and true."""
from __future__ import annotations

from click.testing import CliRunner

from audit.cli import main


def test_top_level_help_lists_every_command_without_cutting_it():
    out = CliRunner().invoke(main, ["--help"]).output
    lines = [ln for ln in out.splitlines() if ln.startswith("  ") and ln.split()[0] in
             {"cache", "checks", "compare", "schema", "validate", "verify"}]
    assert len(lines) == 6
    assert not any(ln.rstrip().endswith("...") for ln in lines), lines


def test_checks_lists_real_defaults():
    res = CliRunner().invoke(main, ["checks"])
    assert res.exit_code == 0
    assert "PydanticUndefined" not in res.output
    assert "extraction:" in res.output and "log_integrity:" in res.output


def test_schema_names_the_builtin_perturbations_not_a_missing_command():
    out = CliRunner().invoke(main, ["schema"]).output
    assert "audit perturbations" not in out and "fewshot_order" in out
