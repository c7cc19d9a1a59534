"""What the `audit` command line writes, and how it ends: errors turned into messages and exit codes.

Holds the click group class that maps every exception reaching the top to a documented exit code, the error and
internal-error (traceback file) messages, stdout that its reader closed early (``| head``), text from outside made
safe for the terminal, and the checks that an output path can be written (and is not a FIFO, a device or a kernel
interface) before a run starts. Also the list of open progress bars, which an error must close first: they hide
the cursor. The commands themselves live in :mod:`audit.cli`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from audit import __version__
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
    click.echo(
        _safe(
            f"error: internal error, a bug in audit (not a problem with your input): "
            f"{type(exc).__name__}: {str(exc)[:300]}; {tail}; please report it"
        ),
        err=True,
    )
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
    what = (
        "into this folder"
        if folder
        else ("the schema" if option == "--output" else f"{option.lstrip('-').replace('-', ' ')} file")
    )
    for tree in ("/proc", "/sys", "/dev"):
        if (real == tree or real.startswith(tree + "/")) and not real.startswith("/dev/shm/"):
            return Problem(
                f"cannot write {what}: {real} is in {tree}, a kernel interface, not a place for files",
                file=str(path),
                field=option,
                fix=f"give {option} a {'folder' if folder else 'file'} on disk (or - for stdout)"
                if not folder
                else f"give {option} a folder on disk",
            )
    try:
        st = os.stat(path)
    except OSError:
        return None  # does not exist yet (or cannot be looked at): the write probe below says what is wrong
    if folder:
        return None
    for test, kind in (
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(st.st_mode):
            return Problem(
                f"cannot write {what}: it is {kind}, not a regular file (writing to it could block forever)",
                file=str(path),
                field=option,
                fix=f"give {option} a regular file (or - for stdout)",
            )
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
        raise InputError(
            [
                Problem(
                    f"cannot write {what}: {exc.strerror or exc}",
                    file=str(path),
                    field=option,
                    fix=f"give {option} a {'folder' if folder else 'file in a folder'} you can write to "
                    "(missing folders are created)",
                )
            ]
        ) from None


def _check_outputs(out_dir: Path | None, summary_md: Path | None, junit: Path | None) -> None:
    """Every output of `audit verify` can be written (checked before a run that can take hours); a traceback of an
    internal error goes into --out from here on."""
    if out_dir is not None:
        _writable(out_dir, "--out", folder=True)
        _TRACE_DIR[:] = [out_dir]
    for option, p in (("--summary-md", summary_md), ("--junit", junit)):
        if p is not None and str(p) != "-":
            _writable(p, option, folder=False)


def _write_schema(text: str, output: Path) -> None:
    """``audit schema -o FILE``: the schema written to a regular file, or the error naming it."""
    special = _special_output(output, "--output", folder=False)
    if special is not None:
        raise InputError([special])
    try:
        output.write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        _fail(
            InputError(
                [
                    Problem(
                        f"cannot write the schema: {exc.strerror or exc}",
                        file=str(output),
                        field="--output",
                        fix="give -o a file in a folder you can write to",
                    )
                ]
            )
        )
    click.echo(f"wrote {_safe(output)}")
