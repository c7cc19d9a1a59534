"""The reading layer for JSON-lines files and text files: every bad line or field reported (file, line, field,
value, fix) instead of stopping at the first, and no value of the wrong type slipping through as a string.

* :func:`decode_utf8` decodes a whole text file (claims): a UTF-8 byte-order mark is dropped, UTF-16/32, binary
  files and invalid UTF-8 are refused with the line and column of the first bad byte.
* :func:`json_objects` yields the JSON objects of a JSONL file under the same encoding rules (a BOM on the first
  line is dropped, as for claims), naming NaN/Infinity, NUL bytes and invalid UTF-8 for what they are.
* :func:`plain_lines` / :func:`parsed_objects` are the fast path of json_objects for a clean file: the same
  objects, no messages (:class:`Unusual` on anything json_objects would report; the caller then uses it).
* :class:`Fields` type-checks the fields of one object: ``"output": null`` is an error, not the string "None";
  a list where a string belongs, ``"completion_tokens": "many"`` or a score given as a string are refused.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import gc
import json
import math
import os
import re
import stat
from pathlib import Path
from typing import Any, Iterator

import orjson

from audit.errors import InputError, Problem, short_repr

MAX_PROBLEMS = 20

_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
_NAN = re.compile(rb"(?<![\"\w])(-?Infinity|NaN)(?![\"\w])")

# Every character str.strip() removes (str.isspace: Unicode White_Space and the separators \x1c-\x1f).
WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def _open_problem(exc: OSError, file: str, what: str) -> Problem:
    """An OS error on opening a file, said plainly (a folder, a link loop, no permission)."""
    if isinstance(exc, IsADirectoryError):
        return Problem(
            f"{what} is a folder, not a file",
            file=file,
            fix=f"name the files inside it, e.g. {file.rstrip('/')}/*.jsonl",
        )
    if exc.errno == errno.ELOOP:
        return Problem(f"{what} is a symbolic link loop", file=file, fix="point the link at a real file")
    if isinstance(exc, FileNotFoundError):
        return Problem(
            f"{what} not found" + (" (a broken symbolic link)" if os.path.islink(file) else ""),
            file=file,
            fix="check the path",
        )
    if isinstance(exc, PermissionError):
        return Problem(f"{what} cannot be read: permission denied", file=file, fix="check the file's permissions")
    return Problem(f"{what} cannot be read: {exc.strerror or exc}", file=file)


_KERNEL_TREES = ("/proc", "/sys")
_KINDS = (
    (stat.S_ISFIFO, "named pipe (FIFO)"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISSOCK, "socket"),
)


def regular_file_problem(path: str | Path, what: str = "the file") -> Problem | None:
    """A Problem when ``path`` is not a regular file audit may read: a FIFO, a device, a socket or a folder, or an
    entry of /proc or /sys (which look like files but are kernel interfaces: /proc/kmsg blocks forever, others never
    end). Checked before anything is opened, so no read can hang on them; None for a regular file (and for a path
    that does not exist: opening it says so)."""
    file = str(path)
    try:
        st = os.stat(path)
    except OSError as exc:
        return _open_problem(exc, file, what)
    if stat.S_ISDIR(st.st_mode):
        return _open_problem(IsADirectoryError(21, "Is a directory"), file, what)
    for test, kind in _KINDS:
        if test(st.st_mode):
            return Problem(
                f"{what} is a {kind}, not a regular file: audit reads only regular files (reading this "
                "one could block forever or never end)",
                file=file,
                fix="give the path of a regular file (save the data to a file first)",
            )
    real = os.path.realpath(file)
    for tree in _KERNEL_TREES:
        if real == tree or real.startswith(tree + "/"):
            return Problem(
                f"{what} is {real}, a {tree} entry (a kernel interface, not a file): audit reads only regular files",
                file=file,
                fix="give the path of a regular file",
            )
    return None


def open_regular(path: str | Path, what: str = "the file"):
    """``open(path, "rb")`` for a regular file only; :class:`InputError` (exit 2) for anything else, raised before
    a read could block. The file is opened without blocking and checked again on the open descriptor, so a path
    swapped for a FIFO between the check and the open cannot hang either."""
    file = str(path)
    problem = regular_file_problem(file, what)
    if problem is not None:
        raise InputError([problem])
    try:
        fd = os.open(file, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise InputError([_open_problem(exc, file, what)]) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(
                [Problem(f"{what} is not a regular file", file=file, fix="give the path of a regular file")]
            )
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def encoding_problem(head: bytes, file: str, what: str = "the file") -> Problem | None:
    """A Problem when ``head`` (the first bytes of a file) says UTF-16/32 or binary; None for UTF-8 text."""
    for bom, name in _BOMS:
        if head.startswith(bom):
            return Problem(
                f"{what} is {name}-encoded, not UTF-8",
                file=file,
                line=1,
                fix=f"save it as UTF-8 (e.g. iconv -f {name} -t UTF-8 in > out)",
            )
    if b"\x00" in head:
        line = head.count(b"\n", 0, head.index(b"\x00")) + 1
        return Problem(
            f"{what} contains NUL bytes: it is binary (or UTF-16 without a byte-order mark), not UTF-8 text",
            file=file,
            line=line,
            fix="give a UTF-8 text file",
        )
    return None


def _utf8_problem(raw: bytes, exc: UnicodeDecodeError, file: str, line_offset: int = 0) -> Problem:
    start = exc.start
    line = raw.count(b"\n", 0, start) + 1 + line_offset
    col = start - (raw.rfind(b"\n", 0, start) + 1) + 1
    return Problem(
        f"not valid UTF-8: byte 0x{raw[start]:02x} at column {col}",
        file=file,
        line=line,
        fix="save the file as UTF-8 (a byte like this usually means Latin-1 or Windows-1252 text)",
    )


def decode_utf8(raw: bytes, file: str, what: str = "the file") -> str:
    """``raw`` as UTF-8 text (a leading byte-order mark dropped); :class:`InputError` naming line and column."""
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    problem = encoding_problem(raw, file, what)
    if problem is not None:
        raise InputError([problem])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        head = raw[:4096]
        binary = sum(b < 9 or 13 < b < 32 or b == 127 for b in head) > len(head) // 20
        if binary:
            raise InputError(
                [
                    Problem(
                        f"{what} is binary, not UTF-8 text",
                        file=file,
                        line=1,
                        fix="check the path: this is not a text file",
                    )
                ]
            ) from None
        raise InputError([_utf8_problem(raw, exc, file)]) from None


def read_text(path: str | Path, what: str = "the file", max_bytes: int | None = None) -> str:
    """A whole UTF-8 text file, or :class:`InputError` saying why it cannot be read or decoded."""
    file = str(path)
    try:
        with open_regular(path, what) as fh:
            raw = fh.read(max_bytes + 1) if max_bytes is not None else fh.read()
    except OSError as exc:
        raise InputError([_open_problem(exc, file, what)]) from None
    if max_bytes is not None and len(raw) > max_bytes:
        raise InputError(
            [
                Problem(
                    f"{what} is larger than {max_bytes:,} bytes",
                    file=file,
                    fix="give the right file; this one is far too large to be what is expected here",
                )
            ]
        )
    return decode_utf8(raw, file, what)


def _json_problem(raw: bytes, exc: orjson.JSONDecodeError, file: str, i: int, last: bool, example: str) -> Problem:
    hint = "each line must be one JSON object" + (f", e.g. {example}" if example else "")
    if b"\x00" in raw:
        return Problem(
            "line contains NUL bytes: the file is binary (or UTF-16 without a byte-order mark)",
            file=file,
            line=i,
            fix="give a UTF-8 JSONL file",
        )
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as uexc:
        return _utf8_problem(raw, uexc, file, i - 1)
    m = _NAN.search(raw)
    if m is not None:
        try:
            json.loads(raw)
        except ValueError:
            pass
        else:
            return Problem(
                f"{m.group().decode()} is not valid JSON (at column {m.start() + 1})",
                file=file,
                line=i,
                fix="write null for a value that could not be computed, or a number",
            )
    if "number is infinity" in exc.msg:
        return Problem(
            f"not valid JSON here: the number at column {exc.colno} is too large, more than about "
            "1.8e308 (the largest double), e.g. an integer of hundreds of digits",
            file=file,
            line=i,
            fix="give a number that fits a double (a score, a count), or quote it as a string if it is an id",
        )
    if last and not raw.endswith(b"\n"):
        return Problem(
            f"not valid JSON ({exc.msg.split(':')[0]} at column {exc.colno})",
            file=file,
            line=i,
            fix="the file ends mid-line: the run was probably interrupted; re-run it or delete the partial last line",
        )
    return Problem(f"not valid JSON ({exc.msg.split(':')[0]} at column {exc.colno})", file=file, line=i, fix=hint)


def json_objects(
    path: str | Path, problems: list[Problem], example: str = "", what: str = "the file", data: bytes | None = None
) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for every JSON-object line; append a Problem for each bad line.

    Blank lines are skipped; a UTF-8 byte-order mark on the first line is dropped. A file that cannot be opened
    (a folder, a link loop, missing) or is UTF-16/binary is one Problem. A last line without a newline that does
    not parse is reported as an interrupted write. Stops after ``MAX_PROBLEMS`` bad lines in this file.
    ``data``: the file's bytes already read (a member of a .zip, a .gz decompressed); ``path`` then only names it.
    """
    file = str(path)
    if data is not None:
        lines = data.splitlines(keepends=True)
    else:
        try:
            with open_regular(path, what) as fh:
                lines = fh.readlines()
        except InputError as err:
            problems.extend(err.problems)
            return
        except OSError as exc:
            problems.append(_open_problem(exc, file, what))
            return
    if lines and lines[0].startswith(codecs.BOM_UTF8):
        lines[0] = lines[0][len(codecs.BOM_UTF8) :]
    if lines and any(lines[0].startswith(bom) for bom, _ in _BOMS):
        bom_problem = encoding_problem(lines[0][:4], file, what)
        if bom_problem is not None:  # always: the line starts with a byte-order mark
            problems.append(bom_problem)
        return
    bad = 0
    for i, raw in enumerate(lines, start=1):
        if raw.isspace():  # blank line (isspace does not copy the line, strip would)
            continue
        try:
            d = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            problems.append(_json_problem(raw, exc, file, i, i == len(lines), example))
            bad += 1
        else:
            if isinstance(d, dict):
                dup = duplicate_key_problem(raw, d, file, i)
                if dup is None:
                    yield i, d
                    continue
                problems.append(dup)
                bad += 1
                if bad >= MAX_PROBLEMS:
                    problems.append(Problem(f"stopping after {MAX_PROBLEMS} bad lines in this file", file=file))
                    return
                continue
            problems.append(
                Problem(
                    f"line is a JSON {json_type(d)}, not an object",
                    file=file,
                    line=i,
                    fix="each line must be one JSON object" + (f", e.g. {example}" if example else ""),
                )
            )
            bad += 1
        if bad >= MAX_PROBLEMS:
            problems.append(Problem(f"stopping after {MAX_PROBLEMS} bad lines in this file", file=file))
            return


_SPACED_COLON = re.compile(rb'"[ \t\r\n]+:')


def _maybe_duplicate(raw: bytes, parsed: Any) -> bool:
    """Cheap and never wrong in the reassuring direction: False only when ``raw`` (valid JSON, compact around its
    colons, no key ending in a backslash) has as many keys as ``parsed`` — a duplicate key is dropped by the parser,
    so the re-serialised object has fewer."""
    if b'\\":' in raw or _SPACED_COLON.search(raw):
        return True
    try:
        again = orjson.dumps(parsed)
    except (TypeError, orjson.JSONEncodeError):
        return True
    return raw.count(b'":') != again.count(b'":')


class _Marked(dict):
    """A parsed JSON object that named one of its keys more than once (``twice`` holds that key)."""

    twice: str = ""


def _marking_hook(items: list) -> dict:
    d = _Marked(items)
    if len(d) != len(items):
        seen: set = set()
        for k, _ in items:
            if k in seen:
                d.twice = k
                break
            seen.add(k)
    return d


def duplicate_keys(text: str | bytes, limit: int = 5) -> list[tuple[str, str]]:
    """(where, key) for each object of the JSON document ``text`` that names a key twice, at most ``limit`` of them;
    ``where`` is a path such as ``[3].doc`` ("" for the top-level object). [] when there is none or the text does
    not parse."""
    try:
        data = json.loads(text, object_pairs_hook=_marking_hook)
    except (ValueError, RecursionError):
        return []
    found: list[tuple[str, str]] = []
    stack: list[tuple[str, Any]] = [("", data)]
    while stack and len(found) < limit:
        where, v = stack.pop()
        if isinstance(v, dict):
            twice = getattr(v, "twice", "")  # set on a _Marked object only
            if twice:
                found.append((where, twice))
            stack.extend(
                (f"{where}.{k}" if where else str(k), x)
                for k, x in reversed(list(v.items()))
                if isinstance(x, (dict, list))
            )
        elif isinstance(v, list):
            stack.extend((f"{where}[{i}]", x) for i, x in reversed(list(enumerate(v))) if isinstance(x, (dict, list)))
    return found


def duplicate_key_problem(raw: bytes | str, parsed: Any, file: str, line: int | None) -> Problem | None:
    """A Problem when an object of ``raw`` (one JSON value, already parsed into ``parsed``) names a key twice:
    JSON parsers keep one of the two silently, so which value was meant cannot be told."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if not _maybe_duplicate(data, parsed):
        return None
    dups = duplicate_keys(raw, limit=1)
    if not dups:
        return None
    where, key = dups[0]
    inside = f" (in {where})" if where else ""
    return Problem(
        f"the key {key!r} appears twice in one JSON object{inside}: a JSON reader silently keeps one of the two values",
        file=file,
        line=line,
        field=f"{where}.{key}" if where else key,
        fix="remove or rename one of the two (each key once per object)",
    )


def csv_problems(raw: bytes, file: str) -> list[Problem]:
    """What a CSV parser would silently accept: NUL bytes (a binary file, or UTF-16) and a header naming one column
    twice (pandas renames the second to ``name.1``). Each with the file and line."""
    problems: list[Problem] = []
    if b"\x00" in raw:
        line = raw.count(b"\n", 0, raw.index(b"\x00")) + 1
        problems.append(
            Problem(
                "the CSV file contains NUL bytes: it is binary (or UTF-16), not UTF-8 text",
                file=file,
                line=line,
                fix="save it as UTF-8 CSV",
            )
        )
        return problems
    import csv
    import io

    try:
        text = raw[: 1 << 20].decode("utf-8-sig", "replace")
        header = next(csv.reader(io.StringIO(text)), [])
    except (csv.Error, StopIteration):
        return problems
    seen: dict[str, int] = {}
    for i, name in enumerate(header, start=1):
        key = name.strip()
        if key in seen:
            problems.append(
                Problem(
                    f"column {key!r} appears twice in the header (columns {seen[key]} and {i}): "
                    "which one holds the data cannot be told",
                    file=file,
                    line=1,
                    field=key,
                    fix="rename or remove one of the two columns",
                )
            )
        else:
            seen[key] = i
    return problems


def read_json(path: str | Path, what: str = "the file", max_bytes: int | None = None) -> Any:
    """One JSON document (a results file, a report), or :class:`InputError` (exit 2) for everything that can be
    wrong with it: not a regular file, not UTF-8, not JSON (with line and column), a number too large for a double or
    an integer of more than 4,300 digits, nesting too deep, or a key given twice in one object."""
    file = str(path)
    text = read_text(path, what, max_bytes=max_bytes)
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        m = _NAN.search(text.encode("utf-8", "surrogatepass"))
        if m is not None:
            line = text.count("\n", 0, m.start()) + 1
            raise InputError(
                [
                    Problem(
                        f"{m.group().decode()} is not valid JSON",
                        file=file,
                        line=line,
                        fix="write null for a value that could not be computed, or a number",
                    )
                ]
            ) from None
        msg = exc.msg.split(":")[0]
        if "number is infinity" in exc.msg:
            msg = "a number is too large (more than about 1.8e308, the largest double)"
        elif "recursion" in exc.msg.lower() or "depth" in exc.msg.lower():
            msg = "nested too deeply (more than 1,024 levels of arrays or objects)"
        raise InputError(
            [
                Problem(
                    f"{what} is not valid JSON: {msg} (line {exc.lineno}, column {exc.colno})",
                    file=file,
                    line=exc.lineno,
                    fix=f"give {what} as written by the tool that made it; this one is damaged or not JSON",
                )
            ]
        ) from None
    dup = duplicate_key_problem(text, data, file, None)
    if dup is not None:
        raise InputError([dup])
    return data


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a whole file's objects are built. Parsing a large JSONL file makes
    hundreds of thousands of dicts and lists that all stay alive, so the collector runs full passes over them again
    and again for nothing (none of them is garbage): about two thirds of the time orjson takes to parse a 50,000-line
    lm-eval log. Reference counting still frees everything as usual; the collector's state is restored after."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class Unusual(Exception):
    """Raised by a fast reading path on anything its careful counterpart has to rule on (and name); the caller
    then reads the file again the careful way."""


def plain_lines(path: str | Path) -> tuple[list[int], list[bytes]] | None:
    """The non-blank lines of a JSONL file as :func:`json_objects` sees them, with their line numbers; None when
    the file cannot be read or holds no such line (json_objects then says why). A UTF-8 byte-order mark is dropped;
    anything else unusual (UTF-16, binary, bad UTF-8) is left for :func:`parsed_objects` to refuse."""
    try:
        with open_regular(path) as fh:
            raw = fh.read()
    except (OSError, InputError):
        return None
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    # json_objects splits with readlines (after each b"\n", nowhere else) and skips blank lines (isspace).
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    numbers = [i for i, line in enumerate(lines, start=1) if line and not line.isspace()]
    if len(numbers) != len(lines):
        lines = [lines[i - 1] for i in numbers]
    return (numbers, lines) if lines else None


def parsed_objects(lines: list[bytes]) -> list[dict]:
    """Each line parsed as one JSON object, or :class:`Unusual` when a line does not parse or is not an object.
    The lines are parsed with orjson as in :func:`json_objects`, so a line is accepted here exactly when it is
    accepted there, and gives the same object. Call it inside :func:`gc_paused`, a few thousand lines at a time
    (freed before the next batch, their memory is reused while it is still in the cache)."""
    loads = orjson.loads
    try:
        objects = [loads(line) for line in lines]
    except (orjson.JSONDecodeError, ValueError, RecursionError):
        raise Unusual from None
    if set(map(type, objects)) != {dict}:
        raise Unusual
    return objects


# ---------------------------------------------------------------------------------------------------------------
# typed fields


def json_type(v: Any) -> str:
    """The JSON name of a parsed value's type (null, boolean, number, string, array, object)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


_MISSING = object()


class Fields:
    """Typed access to the fields of one JSON object (one log line); each wrong field becomes a Problem.

    ``ok`` is False once any field of this line was refused; the caller then skips the line (its problems are
    already recorded), so a refused value never reaches a table as a stand-in.
    """

    def __init__(
        self,
        obj: dict,
        file: str,
        line: int | None,
        problems: list[Problem],
        prefix: str = "",
        names: dict[str, str] | None = None,
    ) -> None:
        self.obj = obj
        self.file = file
        self.line = line
        self.problems = problems
        self.prefix = prefix
        # How a key is named in messages: a generic key read from the user's own key (samples.fields) is named
        # by the user's key, so the message points at what is in the file.
        self.names = names or {}
        self.ok = True

    def name(self, key: str) -> str:
        return self.prefix + self.names.get(key, key)

    def bad(self, key: str, message: str, value: Any = None, fix: str | None = None) -> None:
        self.ok = False
        where = "on this line" if self.line is not None else "in this record"
        self.problems.append(
            Problem(
                message,
                file=self.file,
                line=self.line,
                field=self.name(key),
                value=None if value is None else _shown(value),
                fix=fix or f"correct {self.name(key)} {where} (or leave the key out where it is optional)",
            )
        )

    def _get(self, key: str, required: bool, fix: str | None) -> Any:
        v = self.obj.get(key, _MISSING)
        if v is _MISSING and required:
            self.bad(key, f"required key {self.names.get(key, key)!r} is missing", fix=fix)
        return v

    def text(self, key: str, *, required: bool = False, fix: str | None = None) -> str | None:
        """A string. Missing or null gives None unless ``required`` (then it is an error)."""
        v = self._get(key, required, fix)
        if v is _MISSING:
            return None
        if v is None:
            if required:
                self.bad(key, f"{self.names.get(key, key)!r} is null, not a string", fix=fix)
            return None
        if not isinstance(v, str):
            self.bad(key, f"must be a string, not a JSON {json_type(v)}", v, fix or "give text in double quotes")
            return None
        return v

    def ident(self, key: str, *, fix: str | None = None) -> str | None:
        """An item id: a string or an integer (never null, a boolean, a float, an array or an object)."""
        v = self._get(key, True, fix)
        if v is _MISSING:
            return None
        if isinstance(v, str) and v != "":
            return v
        if isinstance(v, int) and not isinstance(v, bool):
            return str(v)
        what = "an empty string" if v == "" else f"a JSON {json_type(v)}"
        self.bad(
            key,
            f"an item id must be a string or an integer, not {what}",
            v,
            fix or 'give the item id as a string or an integer, e.g. "q17" or 17',
        )
        return None

    def count(self, key: str, *, fix: str | None = None) -> int | None:
        """A whole number >= 0 (12.0 is accepted as 12), or None when missing or null."""
        v = self._get(key, False, fix)
        if v is _MISSING or v is None:
            return None
        if isinstance(v, str) and v.strip().lstrip("+-").isdigit() and len(v.strip().lstrip("+-")) > 308:
            self.bad(
                key,
                f"is an integer of {len(v.strip().lstrip('+-')):,} digits: too large for a count",
                _Raw(v.strip()[:20] + "..."),
                fix or "give a count such as 512, or leave the key out",
            )
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not v.is_integer()):
            self.bad(
                key,
                f"must be a whole number, not {_described(v)}",
                v,
                fix or "give a count such as 512, or leave the key out",
            )
            return None
        if v < 0:
            self.bad(key, "must not be negative", v, fix or "give a count of 0 or more")
            return None
        return int(v)

    def number(self, key: str, *, required: bool = False, fix: str | None = None) -> float | None:
        """A finite number (true/false count as 1/0); a string such as "1" is refused, not converted."""
        v = self._get(key, required, fix)
        if v is _MISSING:
            return None
        return self.number_value(key, v, required=required, fix=fix)

    def number_value(self, key: str, v: Any, *, required: bool = False, fix: str | None = None) -> float | None:
        if v is None:
            if required:
                self.bad(key, f"{self.names.get(key, key)!r} is null, not a number", fix=fix)
            return None
        if isinstance(v, bool):
            return float(v)
        if isinstance(v, (int, float)):
            try:
                x = float(v)
            except OverflowError:  # only an integer can be too large for a double
                big = int(v)
                self.bad(
                    key,
                    f"is an integer of {_digits(big):,} digits: too large for a number (at most about 1.8e308)",
                    _Raw(_digits_shown(big)),
                    fix or "give a number that fits a double",
                )
                return None
            if math.isfinite(x):
                return x
        if isinstance(v, str) and v.strip().lstrip("+-").isdigit() and len(v.strip().lstrip("+-")) > 308:
            self.bad(
                key,
                f"is an integer of {len(v.strip().lstrip('+-')):,} digits: too large for a number (at "
                "most about 1.8e308)",
                _Raw(v.strip()[:20] + "..."),
                fix or "give a number that fits a double",
            )
            return None
        self.bad(
            key,
            f"must be a number, not {_described(v)}",
            v,
            fix or ("write the number without quotes" if isinstance(v, str) else "give a number"),
        )
        return None

    def choice(self, key: str, allowed: tuple[str, ...], *, fix: str | None = None) -> str | None:
        v = self.text(key, fix=fix)
        if v is not None and v not in allowed:
            self.bad(key, "unknown value", v, fix or f"use one of {', '.join(allowed)} (or leave it out)")
            return None
        return v

    def scalar(self, key: str, *, fix: str | None = None) -> str | int | float | bool | None:
        """A string, number or boolean (a grouping key); arrays and objects are refused."""
        v = self._get(key, False, fix)
        if v is _MISSING or v is None:
            return None
        if isinstance(v, (str, int, float, bool)):
            return v
        self.bad(
            key,
            f"must be a string or a number, not a JSON {json_type(v)}",
            v,
            fix or "give a plain value (a string or a number) that groups the items",
        )
        return None

    def mapping(self, key: str, *, fix: str | None = None) -> dict | None:
        v = self._get(key, False, fix)
        if v is _MISSING or v is None:
            return None
        if not isinstance(v, dict):
            self.bad(key, f"must be an object, not a JSON {json_type(v)}", v, fix or "give a JSON object ({...})")
            return None
        return v


def _described(v: Any) -> str:
    if isinstance(v, str):
        return "a string"
    if isinstance(v, float) and not math.isfinite(v):
        return "a non-finite number"
    if isinstance(v, float):
        return "a fraction"
    return f"a JSON {json_type(v)}"


def _digits(v: int) -> int:
    """The number of decimal digits of ``v`` (without building its text: Python refuses more than 4,300)."""
    n = abs(v)
    d = max(1, int(n.bit_length() * 0.30102999566398120) + 1)
    return d - (n < 10 ** (d - 1)) if d <= 100_000 else d


def _digits_shown(v: int) -> str:
    try:
        text = str(v)
    except ValueError:
        return f"an integer of about {_digits(v):,} digits"
    return text[:20] + f"... ({len(text):,} digits)"


def _shown(v: Any) -> Any:
    """A bad value as it will be shown: containers are summarised by their JSON, cut short."""
    if isinstance(v, (dict, list)):
        try:
            text = orjson.dumps(v).decode()
        except (TypeError, orjson.JSONEncodeError):
            text = short_repr(v)
        return _Raw(text if len(text) <= 120 else text[:100] + f"... ({len(text)} characters)")
    return v


class _Raw(str):
    """A string shown without quotes (already JSON)."""

    def __repr__(self) -> str:
        return str(self)
