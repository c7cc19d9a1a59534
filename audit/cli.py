"""The `audit` command line: parse options, call one library function, render the result.

Exit codes: 0 supported, 1 gate failed, 2 invalid input or usage, 3 model server or harness failure, 4 internal
error (a bug in audit; the traceback is written to a file). Everything printed that came from outside (claim
titles, log text, server answers) goes through :mod:`audit.textsafe` first: control characters are shown, not
sent to the terminal, and registered secrets are scrubbed.
"""
from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

import click

from audit import __version__
from audit.bounds import RESAMPLES_MAX, RESAMPLES_MIN, SEED_MAX
from audit.errors import INTERNAL_ERROR_EXIT, AuditError, InputError, Problem

# Progress bars still open (a failure mid-run must close them: they hide the cursor) and where a traceback of an
# internal error goes (the --out folder once it is known to be writable).
_OPEN_BARS: list = []
_TRACE_DIR: list[Path] = []
# The exit code a command has decided on before it prints (the verdict's): a reader that closes stdout early
# (`audit verify ... | head`) ends the run quietly with this code, not with an internal error.
_PENDING_EXIT: list[int] = [0]


def _stdout_gone() -> None:
    """stdout was closed by its reader: point fd 1 at /dev/null so nothing more (not even the interpreter's final
    flush) fails on it."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def _safe(text: object) -> str:
    """Untrusted text as it may reach the terminal: secrets scrubbed, control characters made visible."""
    from audit.textsafe import for_terminal, scrub

    return for_terminal(scrub(str(text)))


def _close_bars() -> None:
    """Finish every open progress bar (which restores the cursor it hid) before an error is printed."""
    while _OPEN_BARS:
        bar = _OPEN_BARS.pop()
        try:
            bar.render_finish()
        except Exception:  # a broken terminal must not hide the real error
            pass
    if sys.stderr.isatty():
        sys.stderr.write("\033[?25h")
        sys.stderr.flush()


def _fail(exc: AuditError) -> None:
    _close_bars()
    click.echo(f"error: {_safe(exc)}", err=True)
    sys.exit(exc.exit_code)


def _internal_error(exc: BaseException) -> None:
    """An exception nobody raised on purpose: a bug in audit. Exit 4 (never 0 or 1, which CI reads as a verdict)
    with one line saying so and where the full traceback was written."""
    import datetime
    import tempfile
    import traceback

    from audit.textsafe import scrub

    _close_bars()
    text = scrub("".join(traceback.format_exception(exc)))
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = f"audit-traceback-{stamp}-{os.getpid()}.txt"
    where = None
    for folder in [*_TRACE_DIR, Path(tempfile.gettempdir())]:
        try:
            (folder / name).write_text(f"audit {__version__}, argv {sys.argv!r}\n\n{text}", encoding="utf-8")
            where = folder / name
            break
        except OSError:
            continue
    tail = f"the full traceback is in {where}" if where else "the traceback could not be written to a file:\n" + text
    click.echo(_safe(f"error: internal error, a bug in audit (not a problem with your input): "
                     f"{type(exc).__name__}: {str(exc)[:300]}; {tail}; please report it"), err=True)
    sys.exit(INTERNAL_ERROR_EXIT)


class _AuditGroup(click.Group):
    """Turns every exception that reaches the top into a documented exit code: AuditError → its code (2 or 3),
    anything else → 4 (an internal error), Ctrl-C → 130."""

    def invoke(self, ctx: click.Context):
        _TRACE_DIR.clear()
        _OPEN_BARS.clear()
        _PENDING_EXIT[0] = 0
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except BrokenPipeError:  # the reader of stdout went away (| head): normal, not a bug
            _stdout_gone()
            sys.exit(_PENDING_EXIT[0])
        except AuditError as exc:
            _fail(exc)
        except KeyboardInterrupt:
            _close_bars()
            click.echo("\ninterrupted", err=True)
            sys.exit(130)
        except Exception as exc:
            _internal_error(exc)


def _special_output(path: Path, option: str, folder: bool) -> Problem | None:
    """A Problem when an output path is a FIFO, a device, a socket or a /proc or /sys entry: writing there would
    block (a FIFO with no reader) or reach the kernel, never a file. Checked before anything is opened."""
    import stat

    real = os.path.realpath(path)
    what = "into this folder" if folder else ("the schema" if option == "--output" else
                                              f"{option.lstrip('-').replace('-', ' ')} file")
    for tree in ("/proc", "/sys", "/dev"):
        if (real == tree or real.startswith(tree + "/")) and not real.startswith("/dev/shm/"):
            return Problem(f"cannot write {what}: {real} is in {tree}, a kernel interface, not a place for files",
                           file=str(path), field=option, fix=f"give {option} a {'folder' if folder else 'file'} on "
                                                             "disk (or - for stdout)" if not folder else
                           f"give {option} a folder on disk")
    try:
        st = os.stat(path)
    except OSError:
        return None  # does not exist yet (or cannot be looked at): the write probe below says what is wrong
    if folder:
        return None
    for test, kind in ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(st.st_mode):
            return Problem(f"cannot write {what}: it is {kind}, not a regular file (writing to it could block "
                           "forever)", file=str(path), field=option, fix=f"give {option} a regular file (or - for "
                                                                         "stdout)")
    return None


def _writable(path: Path, option: str, folder: bool) -> None:
    """Fail before the audit runs (a live run can take hours) when an output cannot be written."""
    import tempfile

    special = _special_output(path, option, folder)
    if special is not None:
        raise InputError([special])
    target = path if folder else (path.parent if str(path.parent) else Path("."))
    try:
        target.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".audit-write-test-", dir=target)
        os.close(fd)
        os.unlink(probe)
        if not folder and path.is_dir():
            raise IsADirectoryError(21, "is a folder")
    except OSError as exc:
        what = "into this folder" if folder else f"{option.lstrip('-').replace('-', ' ')} file"
        raise InputError([Problem(f"cannot write {what}: {exc.strerror or exc}", file=str(path), field=option,
                                  fix=f"give {option} a {'folder' if folder else 'file in a folder'} you can write to "
                                      "(missing folders are created)")]) from None


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
            click.echo(f"warning: {_safe(deg.sentence())}: it cannot tell the arms apart (a target no output can "
                       "match, or an extractor that never fires?)", err=True)
    if claim.probes is not None:
        from audit.importers.probes import load_probes

        load_probes(claim)
    extra = f", {n} record rows" if n is not None else ""
    click.echo(f"{_safe(claim_file)}: valid{extra}")


def _parse_gate(ctx: click.Context, param: click.Parameter, value: str | None):
    from audit.gate import Gate

    try:
        return Gate.parse(value)
    except AuditError as exc:
        problem = exc.problems[0]
        raise click.BadParameter(f"{problem.message}. Valid values: {problem.fix}", ctx=ctx, param=param) from None


@main.command(short_help="Audit a claim: replay its logs or re-run both arms, then decide.")
@click.argument("claim_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write report.json, report.html and summary.md into this folder.")
@click.option("--seed", type=click.IntRange(0, SEED_MAX), default=None,
              help="Seed for the bootstrap, 0 to 2**63-1 (default: options.seed in the claim, else 0).")
@click.option("--resamples", type=click.IntRange(RESAMPLES_MIN, RESAMPLES_MAX), default=None,
              help="Bootstrap resamples, 1000 to 1,000,000 (default: options.resamples in the claim, else 10000).")
@click.option("--json", "as_json", is_flag=True, help="Print report.json to stdout instead of the summary.")
@click.option("--fail-on", "fail_on", default=None, metavar="LIST", callback=_parse_gate,
              help="Comma list of verdicts (supported, fragile, not_reproduced, inconclusive) and/or severities "
                   "(critical, major, minor, info: a flagged finding of that severity or worse) that fail the run "
                   "with exit 1; 'none' never fails. Default: fragile,not_reproduced,inconclusive.")
@click.option("--summary-md", "summary_md", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a Markdown summary (GitHub job summary / PR comment) to this file.")
@click.option("--junit", "junit", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write JUnit XML (one test case per check) to this file.")
@click.option("--no-cache", is_flag=True, help="Live mode: neither read nor write the generation cache.")
@click.option("--cache", "cache_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Live mode: the generation cache file (default: $AUDIT_CACHE_DIR/generations.sqlite or "
                   "~/.cache/audit/generations.sqlite).")
def verify(claim_file: Path, out_dir: Path | None, seed: int | None, resamples: int | None, as_json: bool,
           fail_on, summary_md: Path | None, junit: Path | None, no_cache: bool, cache_path: Path | None) -> None:
    """Audit a claim: replay its logs (samples:) or generate both arms live (arms:/task:), run every check,
    print the verdict.

    Live generations are cached: a re-run or an added scoring costs no model calls, and an interrupted run
    resumes where it stopped. Exit 2 on invalid input, 3 when a model server fails, 4 on an internal error.

    The exit code is 0 when the CI gate (--fail-on) passes — by default only when the verdict is 'supported' —
    and 1 when it fails.
    """
    from audit.claim import load_claim
    from audit.reports import write_ci_files
    from audit.verify import verify as run_verify
    from audit.verify import write_outputs

    command = "audit verify " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if len(sys.argv) > 2 else \
        f"audit verify {shlex.quote(str(claim_file))}"
    claim = load_claim(claim_file)
    from audit.textsafe import register_env_secrets

    register_env_secrets(a.api_key_env for a in (claim.arms or {}).values())
    if out_dir is not None:
        _writable(out_dir, "--out", folder=True)
        _TRACE_DIR[:] = [out_dir]
    for option, p in (("--summary-md", summary_md), ("--junit", junit)):
        if p is not None and str(p) != "-":
            _writable(p, option, folder=False)
    cache = None
    if claim.live and not no_cache:
        from audit.generation.cache import GenerationCache

        cache = GenerationCache(cache_path)
    progress = None
    if claim.live and not as_json:
        # A terminal gets a bar per stage; a CI log (stderr not a terminal) lines with counts, rate and ETA.
        progress = _progress if _stderr_is_terminal() else _line_progress()
    try:
        outcome = run_verify(claim, command=command, seed=seed, resamples=resamples, cache=cache,
                             progress=progress, gate=fail_on)
    finally:
        if hasattr(progress, "close"):
            progress.close()
    report = outcome.report
    try:
        paths = write_outputs(outcome, out_dir) if out_dir is not None else {}
    except OSError as exc:  # e.g. the disk filled up between the check above and the write
        raise InputError([Problem(f"cannot write the report: {exc.strerror or exc}", file=exc.filename,
                                  field="--out", fix="free space or give --out another folder")]) from None
    _PENDING_EXIT[0] = report.exit_code
    to_stdout = {k: p for k, p in (("summary_md", summary_md), ("junit", junit)) if p is not None and str(p) == "-"}
    paths.update(write_ci_files(report, summary_md=None if "summary_md" in to_stdout else summary_md,
                                junit=None if "junit" in to_stdout else junit, out_dir=out_dir))
    if to_stdout:
        from audit.reports import render_junit, render_summary

        for kind in to_stdout:
            click.echo(render_summary(report, out_dir) if kind == "summary_md" else render_junit(report), nl=False)
        sys.exit(report.exit_code)
    if as_json:
        click.echo(report.dump_json())
    else:
        _print_summary(report, paths)
        gate = report.gate
        state = click.style("passed", fg="green") if gate.passed else click.style("failed", fg="red")
        why = f": {_safe('; '.join(gate.reasons))}" if gate.reasons else ""
        click.echo(f"\n  gate --fail-on {gate.fail_on}: {state} (exit {report.exit_code}){why}")
    sys.exit(report.exit_code)


def _progress(label: str, total: int):
    """A progress bar on stderr for one arm × variant × budget."""
    state: dict = {"bar": None, "last": 0}

    def update(done: int, total_: int) -> None:
        if state["bar"] is None:
            state["bar"] = click.progressbar(length=total_, label=f"{_safe(label):<36}", file=sys.stderr,
                                             show_pos=True)
            state["bar"].__enter__()
            _OPEN_BARS.append(state["bar"])
        state["bar"].update(done - state["last"])
        state["last"] = done
        if done >= total_ and state["bar"] in _OPEN_BARS:
            _OPEN_BARS.remove(state["bar"])
            state["bar"].__exit__(None, None, None)

    return update


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # a replaced or closed stderr
        return False


def _line_progress():
    """Progress lines on stderr for a log that is not a terminal (see :mod:`audit.progress`)."""
    from audit.progress import LineProgress

    def write(line: str) -> None:
        click.echo(_safe(line), err=True)

    return LineProgress(write=write)


def _print_summary(report, paths) -> None:
    from audit.reports import ci, delta, num, pval, rates_side_by_side

    colours = {"supported": "green", "fragile": "yellow", "not_reproduced": "red", "inconclusive": "white"}
    click.secho(f"{report.verdict.replace('_', ' ').upper()}", fg=colours[report.verdict], bold=True, nl=False)
    click.echo(f"  {_safe(report.title)}")
    click.echo(f"  {_safe(report.verdict_reason)}")
    if report.cells:
        click.echo("")
        show_variant = any(c.variant != "default" for c in report.cells)
        vhead = f"{'variant':<14} " if show_variant else ""
        click.echo(f"  {vhead}{'budget':>6}  {'scoring':<18} {'n':>6}  {'base':>6} {'treat':>6} {'delta':>7}  "
                   f"{'95% CI':<18} {'p':>9}")
        for c in report.cells:
            star = "*" if c.claimed else " "
            v = f"{_safe(c.variant[:14]):<14} " if show_variant else ""
            click.echo(f"{star} {v}{str(c.budget):>6}  {_safe(c.scoring[:18]):<18} {c.n:>6}  {num(c.baseline):>6} "
                       f"{num(c.treatment):>6} {delta(c.delta):>7}  {ci(c.ci_low, c.ci_high):<18} {pval(c.p_value):>9}")
        click.echo("  (* the claimed setting)")
    grid = rates_side_by_side(report)
    header, rows = grid.header, grid.rows
    if rows:
        # The share of outputs cut off by the budget beside the share with no extractable answer: read together
        # (an answer cut off at the cap is both).
        widths = [max(len(_safe(r[i])) for r in [header, *rows]) for i in range(len(header))]
        click.echo("")
        click.echo("  outputs cut off by the budget, and with no answer:")
        for r in [header, *rows]:
            cells = [_safe(c).rjust(w) if i == 0 else _safe(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths))]
            click.echo("    " + "  ".join(cells).rstrip())
        if not grid.has_no_answer:
            click.echo("    (no no-answer rate: no scoring of this audit extracts an answer)")
    flagged = [f for f in report.findings if f.outcome in ("flag", "inconclusive")]
    if flagged:
        click.echo("")
        for f in flagged:
            tag = click.style(f"[{f.severity}]", fg="red" if f.severity == "critical" else "yellow")
            click.echo(f"  {tag} {f.check}.{f.code}: {_safe(f.title)}")
    if paths:
        click.echo("")
        for kind, p in paths.items():
            click.echo(f"  {kind}: {_safe(p)}")


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
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the schema to this file instead of stdout.")
@click.option("--report", "of_report", is_flag=True,
              help="The schema of report.json (what `audit verify --out` writes) instead of the claim file's.")
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
        special = _special_output(output, "--output", folder=False)
        if special is not None:
            raise InputError([special])
        try:
            output.write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            _fail(InputError([Problem(f"cannot write the schema: {exc.strerror or exc}", file=str(output),
                                      field="--output", fix="give -o a file in a folder you can write to")]))
        click.echo(f"wrote {_safe(output)}")
    else:
        click.echo(text)


@main.group()
def cache() -> None:
    """Inspect or clear the generation cache of live runs."""


_CACHE_OPTION = click.option("--cache", "cache_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
                             help="The cache file (default: the one `audit verify` uses).")


@cache.command("info")
@_CACHE_OPTION
def cache_info(cache_path: Path | None) -> None:
    """Where the cache is, how many generations it holds, for which models."""
    from audit.generation.cache import GenerationCache

    info = GenerationCache(cache_path).info()
    for k, v in info.items():
        click.echo(f"{k}: {_safe(v)}")


@cache.command("clear")
@_CACHE_OPTION
@click.option("--yes", is_flag=True, help="Confirm: delete every cached generation (required).")
def cache_clear(cache_path: Path | None, yes: bool) -> None:
    """Delete every cached generation (pass --yes to confirm; without it nothing is deleted, exit 2)."""
    from audit.generation.cache import GenerationCache, default_cache_path

    if not yes:
        where = cache_path or default_cache_path()
        raise click.UsageError(f"`audit cache clear` deletes every cached generation in {_safe(where)}: pass --yes "
                               "to confirm (nothing was deleted)")

    n = GenerationCache(cache_path).clear()
    click.echo(f"removed {n} cached generation(s)")


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


if __name__ == "__main__":
    main()
