"""The `audit` command line: parse options, call one library function, render the result.

Exit codes: 0 supported, 1 gate failed, 2 invalid input or usage, 3 model server or harness failure.
"""
from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import click

from audit import __version__
from audit.errors import AuditError


def _fail(exc: AuditError) -> None:
    click.echo(f"error: {exc}", err=True)
    sys.exit(exc.exit_code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="audit")
def main() -> None:
    """Decide whether a claimed benchmark gain is real.

    \b
    Exit codes: 0 supported, 1 gate failed (fragile, not reproduced or inconclusive),
                2 invalid input or usage, 3 model server or harness failure.
    """


@main.command()
@click.argument("claim_file", type=click.Path(dir_okay=False, path_type=Path))
def validate(claim_file: Path) -> None:
    """Check a claim file and list every problem (line, field, value, fix).

    Also reads every sample log it names, so a truncated log or mismatched item ids are caught here too.
    """
    from audit.claim import load_claim

    try:
        claim = load_claim(claim_file)
        n = None
        if claim.samples is not None:
            from audit.importers import load_records

            records = load_records(claim)
            n = len(records.table)
    except AuditError as exc:
        _fail(exc)
        return
    extra = f", {n} record rows" if n is not None else ""
    click.echo(f"{claim_file}: valid{extra}")


@main.command()
@click.argument("claim_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write report.json, report.html and summary.md into this folder.")
@click.option("--seed", type=int, default=None, help="Seed for the bootstrap (default: options.seed in the claim, else 0).")
@click.option("--resamples", type=click.IntRange(min=100), default=None,
              help="Bootstrap resamples (default: options.resamples in the claim, else 10000).")
@click.option("--json", "as_json", is_flag=True, help="Print report.json to stdout instead of the summary.")
def verify(claim_file: Path, out_dir: Path | None, seed: int | None, resamples: int | None, as_json: bool) -> None:
    """Audit a claim: replay its logs, run every check, print the verdict.

    The exit code is 0 only when the verdict is 'supported'.
    """
    from audit.claim import load_claim
    from audit.verify import verify as run_verify
    from audit.verify import write_outputs

    command = "audit verify " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if len(sys.argv) > 2 else \
        f"audit verify {shlex.quote(str(claim_file))}"
    try:
        claim = load_claim(claim_file)
        outcome = run_verify(claim, command=command, seed=seed, resamples=resamples)
        paths = write_outputs(outcome, out_dir) if out_dir is not None else {}
    except AuditError as exc:
        _fail(exc)
        return
    report = outcome.report
    if as_json:
        click.echo(report.model_dump_json(indent=2))
    else:
        _print_summary(report, paths)
    sys.exit(report.exit_code)


def _print_summary(report, paths) -> None:
    from audit.reports import ci, delta, num, pval

    colours = {"supported": "green", "fragile": "yellow", "not_reproduced": "red", "inconclusive": "white"}
    click.secho(f"{report.verdict.replace('_', ' ').upper()}", fg=colours[report.verdict], bold=True, nl=False)
    click.echo(f"  {report.claim['claim']['title']}")
    click.echo(f"  {report.verdict_reason}")
    if report.cells:
        click.echo("")
        click.echo(f"  {'budget':>6}  {'scoring':<18} {'n':>6}  {'base':>6} {'treat':>6} {'delta':>7}  "
                   f"{'95% CI':<18} {'p':>9}")
        for c in report.cells:
            star = "*" if c.claimed else " "
            click.echo(f"{star} {str(c.budget):>6}  {c.scoring[:18]:<18} {c.n:>6}  {num(c.baseline):>6} "
                       f"{num(c.treatment):>6} {delta(c.delta):>7}  {ci(c.ci_low, c.ci_high):<18} {pval(c.p_value):>9}")
        click.echo("  (* the claimed setting)")
    flagged = [f for f in report.findings if f.outcome in ("flag", "inconclusive")]
    if flagged:
        click.echo("")
        for f in flagged:
            tag = click.style(f"[{f.severity}]", fg="red" if f.severity == "critical" else "yellow")
            click.echo(f"  {tag} {f.check}.{f.code}: {f.title}")
    if paths:
        click.echo("")
        for kind, p in paths.items():
            click.echo(f"  {kind}: {p}")


@main.command()
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the schema to this file instead of stdout.")
def schema(output: Path | None) -> None:
    """Print the JSON Schema of the claim file (for editors, e.g. yaml-language-server)."""
    from audit.claim import json_schema

    text = json.dumps(json_schema(), indent=2)
    if output:
        output.write_text(text + "\n", encoding="utf-8")
        click.echo(f"wrote {output}")
    else:
        click.echo(text)


@main.command("checks")
def list_checks() -> None:
    """List the registered checks and their parameters."""
    from audit.checks import REGISTRY

    for name, spec in REGISTRY.items():
        click.echo(f"{name}: {spec.description}")
        for pname, f in spec.params.model_fields.items():
            click.echo(f"    {pname} (default {f.default!r}): {f.description or ''}")


if __name__ == "__main__":
    main()
