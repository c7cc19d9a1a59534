"""The `audit` command line: parse options, call one library function, render the result.

Exit codes: 0 supported, 1 gate failed, 2 invalid input or usage, 3 model server or harness failure, 4 internal
error (a bug in audit; the traceback is written to a file). Everything printed that came from outside (claim
titles, log text, server answers) goes through :mod:`audit.textsafe` first: control characters are shown, not
sent to the terminal, and registered secrets are scrubbed.

This module holds the click group and the commands. How errors become messages and exit codes, and the checks of
output paths, are in :mod:`audit.cli_output`; the progress display, the verdict summary and the report files of a
verdict in :mod:`audit.cli_progress`; the ``cache`` group in :mod:`audit.cli_cache`.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import click

from audit import __version__
from audit.bounds import RESAMPLES_MAX, RESAMPLES_MIN, SEED_MAX
from audit.cli_output import _PENDING_EXIT, _AuditGroup, _check_outputs, _safe, _write_schema
from audit.cli_cache import cache
from audit.cli_live import LiveOptions, end_live_run, live_options, live_run_aids
from audit.cli_progress import _report_verdict
from audit.errors import InputError


@click.group(cls=_AuditGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="audit")
def main() -> None:
    """Decide whether a claimed benchmark gain is real.

    \b
    Exit codes: 0 supported, 1 gate failed (fragile, not reproduced or inconclusive),
                2 invalid input or usage, 3 model server or harness failure,
                4 internal error (a bug in audit; the message says where the traceback is).
    """


@main.command(short_help="Check a claim file and list every problem at once.")
@click.argument("claim_file", type=click.Path(dir_okay=False, path_type=Path))
def validate(claim_file: Path) -> None:
    """Check a claim file and list every problem (line, field, value, fix).

    Also reads every sample log and probe file it names, so a truncated log, mismatched item ids or a broken
    probe file are caught here too.
    """
    from audit.claim import load_claim

    claim = load_claim(claim_file)
    n = None
    if claim.samples is not None:
        from audit.importers import load_records

        records = load_records(claim)
        n = len(records.table)
        from audit.degenerate import degenerate_scorings

        for deg in degenerate_scorings(records.table).values():
            click.echo(
                f"warning: {_safe(deg.sentence())}: it cannot tell the arms apart (a target no output can "
                "match, or an extractor that never fires?)",
                err=True,
            )
    if claim.probes is not None:
        from audit.importers.probes import load_probes

        load_probes(claim)
    extra = f", {n} record rows" if n is not None else ""
    click.echo(f"{_safe(claim_file)}: valid{extra}")


def _parse_gate(ctx: click.Context, param: click.Parameter, value: str | None):
    from audit.gate import Gate

    try:
        return Gate.parse(value)
    except InputError as exc:  # the only error Gate.parse raises
        problem = exc.problems[0]
        raise click.BadParameter(f"{problem.message}. Valid values: {problem.fix}", ctx=ctx, param=param) from None


@main.command(short_help="Audit a claim: replay its logs or re-run both arms, then decide.")
@click.argument("claim_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write report.json, report.html and summary.md into this folder.",
)
@click.option(
    "--seed",
    type=click.IntRange(0, SEED_MAX),
    default=None,
    help="Seed for the bootstrap, 0 to 2**63-1 (default: options.seed in the claim, else 0).",
)
@click.option(
    "--resamples",
    type=click.IntRange(RESAMPLES_MIN, RESAMPLES_MAX),
    default=None,
    help="Bootstrap resamples, 1000 to 1,000,000 (default: options.resamples in the claim, else 10000).",
)
@click.option("--json", "as_json", is_flag=True, help="Print report.json to stdout instead of the summary.")
@click.option(
    "--fail-on",
    "fail_on",
    default=None,
    metavar="LIST",
    callback=_parse_gate,
    help="Comma list of verdicts (supported, fragile, not_reproduced, inconclusive) and/or severities "
    "(critical, major, minor, info: a flagged finding of that severity or worse) that fail the run "
    "with exit 1; 'none' never fails. Default: fragile,not_reproduced,inconclusive.",
)
@click.option(
    "--summary-md",
    "summary_md",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write a Markdown summary (GitHub job summary / PR comment) to this file.",
)
@click.option(
    "--junit",
    "junit",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write JUnit XML (one test case per check) to this file.",
)
@live_options
def verify(
    claim_file: Path,
    out_dir: Path | None,
    seed: int | None,
    resamples: int | None,
    as_json: bool,
    fail_on,
    summary_md: Path | None,
    junit: Path | None,
    live: LiveOptions,
) -> None:
    """Audit a claim: replay its logs (samples:) or generate both arms live (arms:/task:), run every check,
    print the verdict.

    Live generations are cached: a re-run or an added scoring costs no model calls, and an interrupted run
    resumes where it stopped. Exit 2 on invalid input, 3 when a model server fails, 4 on an internal error.

    The exit code is 0 when the CI gate (--fail-on) passes — by default only when the verdict is 'supported' —
    and 1 when it fails.
    """
    from audit.claim import load_claim
    from audit.verify import verify as run_verify

    command = (
        "audit verify " + " ".join(shlex.quote(a) for a in sys.argv[2:])
        if len(sys.argv) > 2
        else f"audit verify {shlex.quote(str(claim_file))}"
    )
    claim = load_claim(claim_file)
    from audit.textsafe import register_env_secrets

    register_env_secrets(a.api_key_env for a in (claim.arms or {}).values())
    _check_outputs(out_dir, summary_md, junit)
    cache, progress = live_run_aids(claim, live, as_json)
    try:
        outcome = run_verify(
            claim,
            command=command,
            seed=seed,
            resamples=resamples,
            cache=cache,
            progress=progress,
            gate=fail_on,
            sequential=live.sequential or live.n_max is not None,
            n_max=live.n_max,
            executor=live.executor_object(),
        )
    finally:
        end_live_run()
        if hasattr(progress, "close"):
            progress.close()
    _report_verdict(outcome, out_dir, summary_md, junit, as_json)


@main.command(short_help="What changed between two audits (report.json) of the same claim.")
@click.argument("old_report", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("new_report", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@click.option("--any-claim", is_flag=True, help="Compare even when the reports audit different claims.")
def compare(old_report: Path, new_report: Path, as_json: bool, any_claim: bool) -> None:
    """What changed between two audits (report.json) of the same claim: verdict, cells, findings, options, sources.

    \b
    Exit codes: 0 same verdict, 1 the verdict changed, 2 unreadable or incompatible reports.
    """
    from audit.compare import compare as run_compare
    from audit.compare import load_report, render_text
    from audit.errors import InputError

    problems = []
    reports = []
    for path in (old_report, new_report):
        try:
            reports.append(load_report(path))
        except InputError as exc:
            problems.extend(exc.problems)
    if problems:
        raise InputError(problems)  # every unreadable report at once; the group turns it into exit 2
    result = run_compare(reports[0], reports[1], str(old_report), str(new_report), any_claim=any_claim)
    _PENDING_EXIT[0] = result.exit_code
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        click.echo(_safe(render_text(result)), nl=False)
    sys.exit(result.exit_code)


@main.command(short_help="Print the JSON Schema of the claim file, or of report.json (--report).")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the schema to this file instead of stdout.",
)
@click.option(
    "--report",
    "of_report",
    is_flag=True,
    help="The schema of report.json (what `audit verify --out` writes) instead of the claim file's.",
)
def schema(output: Path | None, of_report: bool) -> None:
    """Print the JSON Schema of the claim file (for editors, e.g. yaml-language-server), or with --report the
    JSON Schema that every report.json validates against."""
    if of_report:
        from audit.findings import report_schema

        text = json.dumps(report_schema(), indent=2)
    else:
        from audit.claim import json_schema

        text = json.dumps(json_schema(), indent=2)
    if output and str(output) != "-":
        _write_schema(text, output)
    else:
        click.echo(text)


@main.command("checks")
def list_checks() -> None:
    """List the registered checks and their parameters."""
    from audit.checks import REGISTRY

    for name, spec in REGISTRY.items():
        click.echo(f"{name}: {spec.description}")
        for pname, f in spec.params.model_fields.items():
            # A field with a default factory has no plain default: show what the factory makes.
            default = f.get_default(call_default_factory=True)
            click.echo(f"    {pname} (default {default!r}): {f.description or ''}")


main.add_command(cache)

if __name__ == "__main__":
    main()
