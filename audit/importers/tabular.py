"""Any tabular export by field mapping: JSON lines, a JSON array, CSV or Parquet, optionally inside a .gz or a .zip.

``samples.fields`` maps the generic keys (``id``, ``output``, ``target``, ``prompt``, ``finish_reason``,
``completion_tokens``, ``extracted``, ``scores.<name>``, ``cluster``) to the user's own keys::

    samples:
      format: json
      fields: {id: question_id, output: generated_text, target: answer, prompt: question}

A record key is a name, or a dotted path into nested objects (``175b_finetuning.solution``; a key that itself
contains the dots is taken first), or ``{baseline: ..., treatment: ...}`` when both arms sit side by side in one
record. A generic key that is not mapped is read under its own name. Every other key of a record is metadata and
never an error. Values are type-checked by the same layer as the generic JSONL format
(:class:`audit.jsonlines.Fields`): a null output is an error; booleans are scores (true = 1).

File shapes: ``jsonl`` one object per line; ``json`` an array of objects, or an object holding exactly one such
array (``{"data": [...]}``); ``csv`` a header row (every cell read as text; score and count columns parsed as numbers,
``true``/``false`` as 1/0); ``parquet`` one row per record (pyarrow). A ``.gz`` file is decompressed; a ``.zip``
must hold exactly one file. Problems name the file (``archive.zip!member``), the record number (the line number for
JSON lines) and the key as the user wrote it, with a did-you-mean against the keys the record actually has.
"""

from __future__ import annotations

import difflib
import gzip
import io
import zipfile
from pathlib import Path
from typing import Any, Iterator

import orjson
import pandas as pd

from audit.errors import InputError, Problem
from audit.importers.jsonl import record_row
from audit.archives import read_gzip, read_member, zip_members
from audit.jsonlines import (
    MAX_PROBLEMS,
    _maybe_duplicate,
    _open_problem,
    csv_problems,
    decode_utf8,
    duplicate_keys,
    json_objects,
    json_type,
    open_regular,
)

_MISSING = object()
NUMERIC_KEYS = ("completion_tokens",)


def read_bytes(path: Path, problems: list[Problem]) -> tuple[str, bytes] | None:
    """(name used in messages, the file's bytes): a .gz decompressed, the one member of a .zip read."""
    file = str(path)
    try:
        # Archives are read under audit.archives' limits (size, ratio, members, nesting): exit 2 naming the member.
        if path.suffix.lower() == ".zip":
            infos = zip_members(path, problems)
            if infos is None:
                return None
            members = [m for m in infos if not m.is_dir() and not m.filename.startswith("__MACOSX/")]
            if len(members) != 1:
                problems.append(
                    Problem(
                        f"the zip holds {len(members)} files ({', '.join(m.filename for m in members[:5]) or 'none'})"
                        ", not one",
                        file=file,
                        fix="give a zip holding exactly one export file, or unzip it and point the pattern at the file",
                    )
                )
                return None
            data = read_member(path, members[0], problems)
            return None if data is None else (f"{file}!{members[0].filename}", data)
        if path.suffix.lower() == ".gz":
            data = read_gzip(path, problems)
            return None if data is None else (file, data)
        with open_regular(path, "the export") as fh:
            raw = fh.read()
        return file, raw
    except InputError as err:
        problems.extend(err.problems)
    except OSError as exc:
        if isinstance(exc, (gzip.BadGzipFile, EOFError)) or exc.errno is None:
            problems.append(Problem(f"cannot decompress: {exc}", file=file, fix="check the file is a complete .gz"))
        else:
            problems.append(_open_problem(exc, file, "the export"))
    except (zipfile.BadZipFile, EOFError) as exc:
        problems.append(
            Problem(
                f"not a readable archive: {exc}",
                file=file,
                fix="check the file is a complete .zip / .gz (a download cut short?)",
            )
        )
    return None


def iter_records(path: Path, fmt: str, problems: list[Problem]) -> Iterator[tuple[str, int, bool, dict]]:
    """Yield (file name, record number, whether the number is a line number, record) for every record."""
    got = read_bytes(path, problems)
    if got is None:
        return
    name, raw = got
    if fmt == "jsonl":
        for i, d in json_objects(name, problems, what="export", data=raw):
            yield name, i, True, d
        return
    if fmt == "json":
        yield from _json_records(name, raw, problems)
        return
    if fmt == "csv":
        yield from _csv_records(name, raw, problems)
        return
    if fmt == "parquet":
        yield from _parquet_records(name, raw, problems)
        return
    raise ValueError(f"unknown tabular format {fmt!r}")  # pragma: no cover - the claim model restricts it


def _json_document(name: str, raw: bytes, problems: list[Problem]) -> Any:
    """Decides whether the export parses as one JSON document: the document, or _MISSING after noting why not."""
    try:
        return orjson.loads(decode_utf8(raw, name, "the export"))
    except InputError as err:
        problems.extend(err.problems)
        return _MISSING
    except orjson.JSONDecodeError as exc:
        problems.append(
            Problem(
                f"not valid JSON ({exc.msg.split(':')[0]} at line {exc.lineno}, column {exc.colno})",
                file=name,
                fix="samples.format: json expects one JSON document (an array of records); use "
                "format: jsonl for one object per line",
            )
        )
        return _MISSING


def _keys_twice(name: str, raw: bytes, data: Any, problems: list[Problem]) -> bool:
    """Decides whether some JSON object gives a key twice, noting each such key (hardening, issue 19)."""
    twice = duplicate_keys(raw) if _maybe_duplicate(raw, data) else []
    for where, key in twice:
        rec = where[1 : where.index("]")] if where.startswith("[") else None
        problems.append(
            Problem(
                f"{'record ' + str(int(rec) + 1) + ': ' if rec is not None else ''}the key {key!r} "
                "appears twice in one JSON object: a JSON reader silently keeps one of the two",
                file=name,
                field=key,
                fix="remove or rename one of the two",
            )
        )
    return bool(twice)


def _json_records(name: str, raw: bytes, problems: list[Problem]) -> Iterator[tuple[str, int, bool, dict]]:
    """Yield the records of a ``json`` export, deciding which elements are records (objects) and which are noted."""
    data = _json_document(name, raw, problems)
    if data is _MISSING:
        return
    # A key given twice inside a record is an error naming the record (hardening, issue 19).
    if _keys_twice(name, raw, data, problems):
        return
    records = _the_array(data, name, problems)
    bad = 0
    for i, d in enumerate(records or [], start=1):
        if isinstance(d, dict):
            yield name, i, False, d
            continue
        problems.append(
            Problem(
                f"record {i} is a JSON {json_type(d)}, not an object",
                file=name,
                fix="every element of the array must be one record (a JSON object)",
            )
        )
        bad += 1
        if bad >= MAX_PROBLEMS:
            return


def _csv_records(name: str, raw: bytes, problems: list[Problem]) -> Iterator[tuple[str, int, bool, dict]]:
    """Yield the rows of a ``csv`` export, deciding whether the file is readable CSV (an empty cell is None)."""
    bad_csv = csv_problems(raw, name)  # NUL bytes, a column named twice (issue 19)
    if bad_csv:
        problems.extend(bad_csv)
        return
    try:
        frame = pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8-sig")
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        problems.append(Problem(f"cannot read as CSV: {exc}", file=name, fix="give a UTF-8 CSV file with a header row"))
        return
    cols = list(frame.columns)
    for i, values in enumerate(frame.itertuples(index=False, name=None), start=1):
        yield name, i, False, {c: (None if isinstance(v, float) else v) for c, v in zip(cols, values)}


def _parquet_records(name: str, raw: bytes, problems: list[Problem]) -> Iterator[tuple[str, int, bool, dict]]:
    """Yield the rows of a ``parquet`` export, deciding whether pyarrow can read the file."""
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        problems.append(Problem("reading Parquet needs pyarrow", file=name, fix="pip install pyarrow"))
        return
    try:
        rows = pq.read_table(io.BytesIO(raw)).to_pylist()
    except Exception as exc:  # pyarrow raises several unrelated types for a damaged file
        problems.append(
            Problem(f"cannot read as Parquet: {exc}", file=name, fix="check the file is a complete Parquet file")
        )
        return
    for i, d in enumerate(rows, start=1):
        yield name, i, False, d


def _the_array(data: Any, name: str, problems: list[Problem]) -> list | None:
    """The records of a JSON export: the document itself when it is an array, else the one array it holds."""
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        arrays = [k for k, v in data.items() if isinstance(v, list) and v and all(isinstance(x, dict) for x in v[:10])]
        if len(arrays) == 1:
            return data[arrays[0]]
        problems.append(
            Problem(
                "the JSON object holds "
                + (f"several arrays of records ({', '.join(arrays)})" if arrays else "no array of records"),
                file=name,
                fix='give an array of records, or an object holding exactly one (e.g. {"data": [...]})',
            )
        )
        return None
    problems.append(
        Problem(
            f"the export is a JSON {json_type(data)}, not an array of records",
            file=name,
            fix="give an array of records",
        )
    )
    return None


def lookup(d: dict, path: str) -> Any:
    """The value at ``path`` in ``d``: the key itself first, else a dotted path into nested objects."""
    if path in d:
        return d[path]
    cur: Any = d
    for part in path.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.lstrip("-").isdigit() and -len(cur) <= int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return _MISSING
    return cur


def did_you_mean(d: dict, path: str) -> str:
    """A hint naming the record's actual key closest to ``path`` (at the level where the path stops matching)."""
    cur: Any = d
    parts = path.split(".")
    prefix = []
    for part in parts:
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
            prefix.append(part)
            continue
        if not isinstance(cur, dict):
            where = ".".join(prefix)
            return f"{where} is a JSON {json_type(cur)}, not an object" if where else ""
        keys = [str(k) for k in cur]
        close = difflib.get_close_matches(part, keys, n=1, cutoff=0.5)
        at = ".".join(prefix + [close[0]]) if close else None
        shown = ", ".join(keys[:12]) + (", …" if len(keys) > 12 else "")
        return (f"did you mean {at!r}? " if at else "") + f"the record has: {shown}"
    return ""


def arm_fields(fields: dict, arm: str) -> dict[str, str]:
    """generic key → the record key this arm reads it from."""
    return {k: (v if isinstance(v, str) else getattr(v, arm)) for k, v in fields.items()}


def _canon_fields(
    d: dict,
    plain: dict[str, str],
    fmt: str,
    where: str,
    line: int | None,
    reported_missing: set[str],
    problems: list[Problem],
) -> tuple[dict, bool]:
    """Decides the generic keys of one record: (their values, whether no required or mapped key was missing)."""
    canon: dict = {}
    ok = True
    for key in ("id", "output", "target", "prompt", "finish_reason", "completion_tokens", "extracted"):
        src = plain.get(key, key)
        v = lookup(d, src)
        if v is _MISSING:
            if key in plain and key not in ("id", "output"):
                # A mapped optional key missing is worth one note per file: the mapping is probably wrong.
                if key not in reported_missing:
                    reported_missing.add(key)
                    problems.append(
                        Problem(
                            f"samples.fields.{key} maps to {src!r}, which this record lacks",
                            file=where,
                            line=line,
                            field=src,
                            fix=did_you_mean(d, src) or None,
                        )
                    )
                    ok = False
            elif key in ("id", "output"):
                problems.append(
                    Problem(
                        f"required key {src!r} is missing" + (f" (samples.fields.{key})" if key in plain else ""),
                        file=where,
                        line=line,
                        field=src,
                        fix=(did_you_mean(d, src) + "; " if did_you_mean(d, src) else "")
                        + f"map samples.fields.{key} to the key that holds the "
                        + ("item id" if key == "id" else "model's output text"),
                    )
                )
                ok = False
            continue
        canon[key] = _csv_number(v) if fmt == "csv" and key in NUMERIC_KEYS else v
    return canon, ok


def _canon_scores(
    d: dict, score_paths: dict[str, str], fmt: str, where: str, line: int | None, problems: list[Problem]
) -> tuple[dict, bool]:
    """Decides the mapped scores of one record: (their values, whether every mapped score was present)."""
    scores = {}
    ok = True
    for sname, src in score_paths.items():
        v = lookup(d, src)
        if v is _MISSING:
            problems.append(
                Problem(
                    f"samples.fields.scores.{sname} maps to {src!r}, which this record lacks",
                    file=where,
                    line=line,
                    field=src,
                    fix=did_you_mean(d, src) or None,
                )
            )
            ok = False
            continue
        # A mapped score written as a numeric string (AlpacaEval writes "preference": "1.0000630276") is read as
        # its number, as a CSV cell is; any other string is still refused by the type check.
        scores[sname] = _csv_number(v) if fmt == "csv" else _numeric_string(v)
    return scores, ok


def _canon_record(
    d: dict,
    plain: dict[str, str],
    score_paths: dict[str, str],
    cluster_path: str | None,
    fmt: str,
    where: str,
    line: int | None,
    reported_missing: set[str],
    problems: list[Problem],
) -> tuple[dict, bool]:
    """Decides one record in generic keys (fields, scores, cluster): (the record, whether nothing was missing)."""
    canon, ok = _canon_fields(d, plain, fmt, where, line, reported_missing, problems)
    scores, scores_ok = _canon_scores(d, score_paths, fmt, where, line, problems)
    ok = ok and scores_ok
    if score_paths:
        canon["scores"] = scores
    elif isinstance(d.get("scores"), dict) and "scores" not in plain.values():
        canon["scores"] = d["scores"]
    if cluster_path:
        v = lookup(d, cluster_path)
        canon["__cluster"] = None if v is _MISSING else v
    return canon, ok


def read_tabular(
    path: Path,
    fmt: str,
    fields: dict,
    arm: str,
    budget: int | None,
    variant: str = "default",
    cluster_field: str | None = None,
    several: bool = False,
) -> tuple[pd.DataFrame, list[Problem]]:
    """Rows (with a ``scores`` dict column, as :func:`audit.importers.jsonl.read_jsonl`) from one export file.
    ``several`` (the claim sets ``samples.reduce``): a record whose output is a list holds several outputs of its
    item, one row each (column ``sample``: 0, 1, ...)."""
    problems: list[Problem] = []
    mapping = arm_fields(fields, arm)
    cluster_path = mapping.pop("cluster", None) or cluster_field
    score_paths = {k[len("scores.") :]: v for k, v in mapping.items() if k.startswith("scores.")}
    plain = {k: v for k, v in mapping.items() if not k.startswith("scores.")}
    names = {**plain, **{f"scores.{n}": p for n, p in score_paths.items()}}
    if cluster_path:
        names["__cluster"] = cluster_path
    rows = []
    reported_missing: set[str] = set()
    bad_records = 0
    for name, i, is_line, d in iter_records(path, fmt, problems):
        where = f"{name}, record {i}" if not is_line else name
        line = i if is_line else None
        canon, ok = _canon_record(d, plain, score_paths, cluster_path, fmt, where, line, reported_missing, problems)
        expanded = _several(canon) if several and ok else [canon]
        got = (
            [
                record_row(
                    c,
                    where,
                    line,
                    problems,
                    arm,
                    budget,
                    variant,
                    None,
                    names=names,
                    cluster_key="__cluster" if cluster_path else None,
                )
                for c in expanded
            ]
            if ok
            else [None]
        )
        if any(r is None for r in got):
            bad_records += 1
            if bad_records >= MAX_PROBLEMS or len(problems) >= 2 * MAX_PROBLEMS:
                problems.append(Problem(f"stopping after {bad_records} bad records in this file", file=name))
                break
            continue
        for j, row in enumerate(r for r in got if r is not None):  # none is None: checked above
            row["source"] = str(path)
            row["line"] = i
            if several and len(got) > 1:
                row["sample"] = j
            rows.append(row)
    return pd.DataFrame(rows), problems


PER_SAMPLE_KEYS = ("finish_reason", "completion_tokens", "extracted")


def _several(canon: dict) -> list[dict]:
    """One record holding several outputs of one item (``output`` a list; with ``samples.reduce``) as one record per
    output: a list of the same length under finish_reason, completion_tokens, extracted or a mapped score gives each
    output its own value, anything else is shared."""
    outs = canon.get("output")
    if not isinstance(outs, list) or not outs:
        return [canon]
    k = len(outs)
    out = []
    for j, o in enumerate(outs):
        c = dict(canon, output=o)
        for key in PER_SAMPLE_KEYS:
            if isinstance(canon.get(key), list) and len(canon[key]) == k:
                c[key] = canon[key][j]
        if isinstance(canon.get("scores"), dict):
            c["scores"] = {
                n: (_numeric_string(v[j]) if isinstance(v, list) and len(v) == k else v)
                for n, v in canon["scores"].items()
            }
        out.append(c)
    return out


def _numeric_string(v: Any) -> Any:
    """A string that spells one finite number, as that number; anything else unchanged (the type check reports it)."""
    if not isinstance(v, str):
        return v
    try:
        x = float(v.strip())
    except ValueError:
        return v
    return x if x == x and abs(x) != float("inf") else v


def _csv_number(v: Any) -> Any:
    """A CSV cell meant as a number: '1', '0.5', 'true'/'false' parsed; anything else left as text (then refused
    by the type check, with the cell shown). An integer larger than any double (2**1024, about 1.8e308) stays text
    too, so the type check names it ("an integer of 5,001 digits") rather than reading it as inf or handing on an
    int that no float conversion downstream can take."""
    if not isinstance(v, str):
        return v
    s = v.strip()
    low = s.lower()
    if low in ("true", "false"):
        return low == "true"
    if s.lstrip("+-").isdigit():
        try:
            n = int(s)
        except ValueError:  # more than 4,300 digits: Python refuses to convert it
            return v
        return n if n.bit_length() <= 1024 else v
    try:
        return float(s)
    except ValueError:
        return v
