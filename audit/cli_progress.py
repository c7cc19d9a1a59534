"""What `audit verify` shows on the terminal while it runs and when it is done.

Holds the progress display of a live run (a bar per arm × variant × budget on a terminal, count/rate/ETA lines in
a CI log, see :mod:`audit.progress`) and the summary printed after the verdict: the table of cells, the rates of
outputs cut off by the budget or with no answer, the flagged findings and the files written (after a sequential
run, one line under the verdict says where it stopped and why). Open bars are registered in
:data:`audit.cli_output._OPEN_BARS` so that an error can close them (they hide the cursor).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from audit.cli_output import _OPEN_BARS, _PENDING_EXIT, _safe
from audit.errors import InputError, Problem


def _progress(label: str, total: int):
    """A progress bar on stderr for one arm × variant × budget."""
    state: dict = {"bar": None, "last": 0}

    def update(done: int, total_: int) -> None:
        bar = state["bar"]
        if bar is None:
            bar = click.progressbar(length=total_, label=f"{_safe(label):<36}", file=sys.stderr, show_pos=True)
            state["bar"] = bar
            bar.__enter__()
            _OPEN_BARS.append(bar)
        bar.update(done - state["last"])
        state["last"] = done
        if done >= total_ and bar in _OPEN_BARS:
            _OPEN_BARS.remove(bar)
            bar.__exit__(None, None, None)

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
    _print_sequential(report)
    if report.cells:
        click.echo("")
        from audit.plan import DEFAULT_VARIANT

        show_variant = any(c.variant != DEFAULT_VARIANT for c in report.cells)
        vhead = f"{'variant':<14} " if show_variant else ""
        click.echo(
            f"  {vhead}{'budget':>6}  {'scoring':<18} {'n':>6}  {'base':>6} {'treat':>6} {'delta':>7}  "
            f"{'95% CI':<18} {'p':>9}"
        )
        for c in report.cells:
            star = "*" if c.claimed else " "
            v = f"{_safe(c.variant[:14]):<14} " if show_variant else ""
            click.echo(
                f"{star} {v}{str(c.budget):>6}  {_safe(c.scoring[:18]):<18} {c.n:>6}  {num(c.baseline):>6} "
                f"{num(c.treatment):>6} {delta(c.delta):>7}  {ci(c.ci_low, c.ci_high):<18} {pval(c.p_value):>9}"
            )
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


def _print_sequential(report) -> None:
    """One line under the verdict for a sequential run: where it stopped (or where a live re-run would have) and
    why; nothing for an ordinary audit."""
    from audit.reports import sequential_view

    seq = sequential_view(report)
    if seq is not None:
        click.echo(f"  {_safe(seq.line)}")


def _print_gate(report) -> None:
    """The line under the summary: whether the CI gate (--fail-on) passed, the exit code, and why it failed."""
    gate = report.gate
    state = click.style("passed", fg="green") if gate.passed else click.style("failed", fg="red")
    why = f": {_safe('; '.join(gate.reasons))}" if gate.reasons else ""
    click.echo(f"\n  gate --fail-on {gate.fail_on}: {state} (exit {report.exit_code}){why}")


def _report_verdict(outcome, out_dir: Path | None, summary_md: Path | None, junit: Path | None, as_json: bool) -> None:
    """Write the report files, print the summary (or report.json, or a CI file given as -) and exit with the
    verdict's code."""
    from audit.reports import write_ci_files
    from audit.verify import write_outputs

    report = outcome.report
    try:
        paths = write_outputs(outcome, out_dir) if out_dir is not None else {}
    except OSError as exc:  # e.g. the disk filled up between _check_outputs and the write
        raise InputError(
            [
                Problem(
                    f"cannot write the report: {exc.strerror or exc}",
                    file=exc.filename,
                    field="--out",
                    fix="free space or give --out another folder",
                )
            ]
        ) from None
    _PENDING_EXIT[0] = report.exit_code
    to_stdout = {k: p for k, p in (("summary_md", summary_md), ("junit", junit)) if p is not None and str(p) == "-"}
    paths.update(
        write_ci_files(
            report,
            summary_md=None if "summary_md" in to_stdout else summary_md,
            junit=None if "junit" in to_stdout else junit,
            out_dir=out_dir,
        )
    )
    if to_stdout:
        from audit.reports import render_junit, render_summary

        for kind in to_stdout:
            click.echo(render_summary(report, out_dir) if kind == "summary_md" else render_junit(report), nl=False)
        sys.exit(report.exit_code)
    if as_json:
        click.echo(report.dump_json())
    else:
        _print_summary(report, paths)
        _print_gate(report)
    sys.exit(report.exit_code)
