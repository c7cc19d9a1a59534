"""Error types raised by the library; only the CLI turns them into messages and exit codes.

Exit codes (DESIGN.md): 0 supported, 1 gate failed, 2 invalid input or usage, 3 model server or harness failure,
4 internal error (a bug in audit: an exception nobody raised on purpose; the CLI writes its traceback to a file).
Bad input is never exit 4: a reader that meets something it cannot read raises :class:`InputError`; a server that
sends something unreadable is a :class:`ServerError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, located precisely enough to fix it without guessing."""

    message: str
    file: str | None = None
    line: int | None = None
    field: str | None = None
    value: object = None
    fix: str | None = None

    def render(self) -> str:
        where = self.file or "<input>"
        if self.line is not None:
            where += f":{self.line}"
        parts = [where + ":"]
        if self.field:
            parts.append(f"{self.field}:")
        parts.append(self.message)
        if self.value is not None:
            parts.append(f"(got {short_repr(self.value)})")
        text = " ".join(parts)
        if self.fix:
            text += f"\n    fix: {self.fix}"
        return text


def short_repr(value: object, limit: int = 200) -> str:
    """``repr(value)``, cut to ``limit`` characters: a bad value may be a megabyte of text. A string that Unicode
    normalisation would change (``'e\u0301'`` looks exactly like ``'é'``) is also shown with its code points, so two
    values that print alike can be told apart."""
    try:
        text = repr(value)
    except Exception:  # a value whose repr fails is still worth naming by type
        text = f"<{type(value).__name__}>"
    if isinstance(value, str) and not value.isascii() and len(value) <= limit:
        import unicodedata

        if unicodedata.normalize("NFC", value) != value:
            text += (
                f" = {ascii(value)}, not NFC-normalised: equal to {unicodedata.normalize('NFC', value)!r} "
                "once normalised"
            )
    return text if len(text) <= limit else f"{text[: limit - 20]}... ({len(text)} characters)"


class AuditError(Exception):
    """Base of every error the library raises on purpose."""

    exit_code = 2


@dataclass
class InputError(AuditError):
    """Invalid user input (claim file, log, dataset): exit code 2. Carries every problem found, not the first."""

    problems: list[Problem] = field(default_factory=list)

    exit_code = 2

    def __str__(self) -> str:
        head = f"{len(self.problems)} problem(s):" if len(self.problems) != 1 else "1 problem:"
        return head + "\n" + "\n".join("  " + p.render().replace("\n", "\n  ") for p in self.problems)


class ServerError(AuditError):
    """A model server or harness failed (down, garbage answers, retries exhausted): exit code 3."""

    exit_code = 3


INTERNAL_ERROR_EXIT = 4
"""Exit code of an unexpected exception (a bug in audit), never 0 or 1: CI must not read a crash as a verdict."""
