"""Probe files: per-item probe scores and 0/1 labels, in distribution (ID) and per OOD set.

:func:`load_probes` reads every file ``claim.probes`` names (CSV, TSV or JSONL by file suffix; the id, score and
label columns are configurable) and reports every problem in every file at once (file, line, field, fix), so that
``audit validate`` catches a broken probe file before ``audit verify`` runs the ``probes`` check on it.
"""

from __future__ import annotations

from collections.abc import Sequence

import csv
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from audit.claim import Claim
from audit.errors import InputError, Problem
from audit.jsonlines import json_objects, open_regular, regular_file_problem

_MAX_PROBLEMS = 20
_TRUE = {"1", "1.0", "true", "yes", "pos", "positive"}
_FALSE = {"0", "0.0", "false", "no", "neg", "negative"}


@dataclass(frozen=True)
class ProbeSet:
    """One file of probe outputs: item ids, scores and 0/1 labels, in file order."""

    name: str
    path: str
    ids: np.ndarray  # str
    scores: np.ndarray  # float
    labels: np.ndarray  # int 0/1

    @property
    def pos(self) -> np.ndarray:
        return self.scores[self.labels == 1]

    @property
    def neg(self) -> np.ndarray:
        return self.scores[self.labels == 0]


@dataclass(frozen=True)
class ProbeSets:
    """The claim's probe files, read: the in-distribution set and the OOD sets by name (claim order)."""

    in_distribution: ProbeSet
    ood: dict[str, ProbeSet]


def load_probe_set(
    path: str | Path,
    name: str = "",
    id_column: str = "id",
    score_column: str = "score",
    label_column: str = "label",
    claim_file: str | None = None,
    field: str | None = None,
) -> tuple[ProbeSet | None, list[Problem]]:
    """Read one probe file; return the set (None when unusable) and every problem found (file, line, fix)."""
    path = Path(path)
    file = str(path)
    cols = {"id": id_column, "score": score_column, "label": label_column}
    # a FIFO, device, socket, folder, broken link or /proc entry: said for what it is, before a read could block
    problem = regular_file_problem(path, "the probe file") if os.path.lexists(path) else None
    if problem is not None:
        return None, [Problem(problem.message, file=file, field=field, fix=problem.fix)]
    if not path.is_file():
        return None, [
            Problem(
                f"probe file not found: {file}",
                file=claim_file,
                field=field,
                fix="paths resolve against the claim file's folder",
            )
        ]
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".tsv", ".jsonl", ".ndjson"):
        return None, [
            Problem(
                f"unknown probe file type {suffix or '(no suffix)'!r}",
                file=file,
                field=field,
                fix="use .csv, .tsv or .jsonl (one row per item with id, score and label)",
            )
        ]
    problems: list[Problem] = []
    raw, refused = _probe_rows(path, suffix, cols, problems)
    if refused is not None:
        return None, refused
    ids, scores, labels = _parse_probe_rows(raw, file, id_column, score_column, label_column, problems)
    if not raw and not problems:
        problems.append(Problem("the probe file has no rows", file=file, fix="one row per item: id, score, label"))
    if problems:
        return None, problems
    return ProbeSet(
        name, file, np.asarray(ids, dtype=object), np.asarray(scores, dtype=float), np.asarray(labels, dtype=int)
    ), []


def _probe_rows(
    path: Path, suffix: str, cols: dict[str, str], problems: list[Problem]
) -> tuple[list[tuple[int, dict]], list[Problem] | None]:
    """The file's rows as (line, row), and the problems instead when the file cannot be read at all."""
    file = str(path)
    raw: list[tuple[int, dict]] = []
    try:
        if suffix in (".csv", ".tsv"):
            with io.TextIOWrapper(open_regular(path, "the probe file"), encoding="utf-8", newline="") as fh:
                reader = csv.DictReader(fh, delimiter="\t" if suffix == ".tsv" else ",")
                header = reader.fieldnames or []
                missing = [c for c in cols.values() if c not in header]
                if missing:
                    hint = _column_hint(missing, header)
                    return raw, [
                        Problem(f"missing column(s) {missing}; the header has {header}", file=file, line=1, fix=hint)
                    ]
                for row in reader:
                    raw.append((reader.line_num, row))
        else:
            raw.extend(
                json_objects(path, problems, example='{"id": "q1", "score": 0.7, "label": 1}', what="the probe file")
            )
    except InputError as exc:  # open_regular: not a regular file after all (swapped since the check)
        return raw, list(exc.problems)
    except UnicodeDecodeError:
        return raw, [Problem("the file is not UTF-8 text", file=file, fix="save the probe file as UTF-8")]
    except OSError as exc:
        return raw, [Problem(f"cannot read probe file: {exc.strerror}", file=file)]
    return raw, None


def _parse_probe_rows(
    raw: list[tuple[int, dict]],
    file: str,
    id_column: str,
    score_column: str,
    label_column: str,
    problems: list[Problem],
) -> tuple[list[str], list[float], list[int]]:
    """The ids, scores and labels of the usable rows; every problem of a row is added to ``problems``."""
    cols = (id_column, score_column, label_column)
    ids, scores, labels = [], [], []
    seen: dict[str, int] = {}
    for line, row in raw:
        if len(problems) >= _MAX_PROBLEMS:
            problems.append(Problem(f"stopping after {_MAX_PROBLEMS} problems in this file", file=file))
            break
        missing = [c for c in cols if row.get(c) is None or row.get(c) == ""]
        if missing:
            problems.append(
                Problem(f"missing value(s) for {missing}", file=file, line=line, fix=_column_hint(missing, list(row)))
            )
            continue
        iid = str(row[id_column])
        s = _number(row[score_column])
        lab = _label(row[label_column])
        bad = False
        if s is None:
            problems.append(
                Problem(
                    "score is not a finite number",
                    file=file,
                    line=line,
                    field=score_column,
                    value=row[score_column],
                    fix="give the probe's score as a number",
                )
            )
            bad = True
        if lab is None:
            problems.append(
                Problem(
                    "label must be 0 or 1",
                    file=file,
                    line=line,
                    field=label_column,
                    value=row[label_column],
                    fix="use 1 for positives and 0 for negatives",
                )
            )
            bad = True
        if iid in seen:
            problems.append(
                Problem(
                    f"item id {iid!r} repeats line {seen[iid]}",
                    file=file,
                    line=line,
                    field=id_column,
                    fix="each item must appear once per probe file",
                )
            )
            bad = True
        else:
            seen[iid] = line
        if bad or s is None or lab is None:
            continue
        ids.append(iid)
        scores.append(s)
        labels.append(lab)
    return ids, scores, labels


def _column_hint(missing: list[str], header: Sequence[str]) -> str:
    import difflib

    hints = [
        f"{m}→{difflib.get_close_matches(m, header, n=1)[0]}"
        for m in missing
        if difflib.get_close_matches(m, header, n=1)
    ]
    return (
        f"did you mean {', '.join(hints)}? " if hints else ""
    ) + "set probes.id_column / score_column / label_column to the file's column names"


def _number(x: Any) -> float | None:
    if isinstance(x, bool):
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _label(x: Any) -> int | None:
    if isinstance(x, bool):
        return int(x)
    if isinstance(x, (int, float)) and x in (0, 1):
        return int(x)
    s = str(x).strip().lower()
    if s in _TRUE:
        return 1
    if s in _FALSE:
        return 0
    return None


def load_probes(claim: Claim) -> ProbeSets | None:
    """Read the claim's ID and OOD probe files (None when the claim has no ``probes:``); raise
    :class:`InputError` listing every problem in every file."""
    pr = claim.probes
    if pr is None:
        return None
    claim_file = str(claim.path) if claim.path else None
    problems: list[Problem] = []

    def one(rel: str, name: str, fld: str) -> ProbeSet | None:
        p = Path(rel)
        full = p if p.is_absolute() else claim.base_dir / p
        s, probs = load_probe_set(full, name, pr.id_column, pr.score_column, pr.label_column, claim_file, fld)
        problems.extend(probs)
        return s

    id_set = one(pr.in_distribution, "in-distribution", "probes.in_distribution")
    ood = {name: one(rel, name, f"probes.ood.{name}") for name, rel in pr.ood.items()}
    if problems:
        raise InputError(problems)
    return ProbeSets(id_set, ood)  # type: ignore[arg-type]  # no problems: every set was read (none is None)


__all__ = ["ProbeSet", "ProbeSets", "load_probe_set", "load_probes"]
