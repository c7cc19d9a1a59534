"""Reading JSON-lines files with every bad line reported (file, line, fix) instead of stopping at the first."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import orjson

from audit.errors import Problem

MAX_PROBLEMS = 20


def json_objects(path: str | Path, problems: list[Problem], example: str = "") -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for every JSON-object line; append a Problem for each bad line.

    Blank lines are skipped. A last line without a newline that does not parse is reported as an interrupted write.
    Stops adding problems (and yielding) after ``MAX_PROBLEMS`` bad lines in this file.
    """
    file = str(path)
    with open(path, "rb") as fh:
        lines = fh.readlines()
    bad = 0
    for i, raw in enumerate(lines, start=1):
        if raw.isspace():  # blank line (isspace does not copy the line, strip would)
            continue
        try:
            d = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            end = i == len(lines) and not raw.endswith(b"\n")
            problems.append(Problem(
                f"not valid JSON ({exc.msg.split(':')[0]} at column {exc.colno})", file=file, line=i,
                fix="the file ends mid-line: the run was probably interrupted; re-run it or delete the partial last "
                    "line" if end else "each line must be one JSON object" + (f", e.g. {example}" if example else "")))
            bad += 1
        else:
            if isinstance(d, dict):
                yield i, d
                continue
            problems.append(Problem("line is not a JSON object", file=file, line=i,
                                    fix="each line must be one JSON object" + (f", e.g. {example}" if example else "")))
            bad += 1
        if bad >= MAX_PROBLEMS:
            problems.append(Problem(f"stopping after {MAX_PROBLEMS} bad lines in this file", file=file))
            return
