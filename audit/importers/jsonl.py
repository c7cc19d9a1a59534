"""The generic JSONL sample format, for logs that did not come from lm-eval.

One JSON object per line::

    {"id": "q17", "output": "The answer is 12", "target": "12",
     "prompt": "...",                         # optional; hashed to check both budgets of an arm used one prompt
     "finish_reason": "length",               # optional: "stop" | "length" (the server's word on truncation)
     "completion_tokens": 512,                # optional: tokens generated
     "scores": {"strict-match": 0, "flexible-extract": 1},   # optional: scores per scoring name
     "extracted": "12"}                       # optional: the answer the harness extracted (null: none found)

``id`` (a string or an integer) and ``output`` (a string) are required; ``target`` (a string; an object for a
code_exec scorer) is required unless every scoring the claim names is in ``scores``; scores are numbers.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pandas as pd

from audit.errors import Problem
from audit.jsonlines import MAX_PROBLEMS, Fields, json_objects, json_type

REQUIRED = ("id", "output")
KNOWN = {"id", "prompt", "output", "target", "finish_reason", "completion_tokens", "scores", "doc", "extracted"}
FINISH = {"stop": "stop", "length": "length", "eos": "stop", "max_tokens": "length"}
EXAMPLE = '{"id": "q1", "output": "12", "target": "12"}'


def read_jsonl(
    path: Path, arm: str, budget: int | None, variant: str = "default", cluster_field: str | None = None
) -> tuple[pd.DataFrame, list[Problem]]:
    """Parse one generic JSONL file into rows with a ``scores`` dict column (expanded by the caller).

    Every field is type-checked (:class:`audit.jsonlines.Fields`): a line with a wrong field is reported and
    left out, never read as a stand-in (``"output": null`` is an error, not the text "None").
    """
    problems: list[Problem] = []
    rows = []
    file = str(path)
    for i, d in json_objects(path, problems, example=EXAMPLE, what="sample log"):
        row = record_row(d, file, i, problems, arm, budget, variant, cluster_field, typos=i == 1)
        if row is None:
            if len(problems) >= MAX_PROBLEMS:
                problems.append(Problem(f"stopping after {MAX_PROBLEMS} problems in this file", file=file))
                break
            continue
        rows.append(row)
    return pd.DataFrame(rows), problems


def record_row(
    d: dict,
    file: str,
    line: int | None,
    problems: list[Problem],
    arm: str,
    budget: int | None,
    variant: str,
    cluster_field: str | None,
    typos: bool = False,
    names: dict[str, str] | None = None,
    cluster_key: str | None = None,
) -> dict | None:
    """One record (generic keys) as a Records row, or None when a field was refused (its problems appended).

    ``names`` says which key of the user's file each generic key came from (for messages); ``cluster_key`` is the
    key of ``d`` holding the cluster value (default: ``cluster_field``).
    """
    f = Fields(d, file, line, problems, names=names)
    item = f.ident(
        "id",
        fix="every line needs the item id it answers (generic JSONL: see README, sample formats)"
        if not names
        else "map samples.fields.id to the key that holds the item id",
    )
    # A null output is what the model gave (a reasoning model that spent its budget returns null content): recorded
    # as no output with that cause, never as the text "None" and never refused (one rule for logs and live runs).
    null_output = "output" in d and d["output"] is None
    text = (
        ""
        if null_output
        else f.text(
            "output",
            required=True,
            fix='give the text the model produced ("" or null when it produced nothing); a run that has no output '
            "for an item must leave the item out of both arms",
        )
    )
    target, target_kind = _target(f)
    fr = f.choice("finish_reason", tuple(FINISH))
    tokens = f.count("completion_tokens")
    prompt = f.text("prompt")
    scores = _scores(f)
    answered = _answered(f.obj.get("extracted", _ABSENT))
    key = cluster_key or cluster_field
    cluster = f.scalar(key) if key else None
    # Extra keys (metadata) are fine; a key that looks like a misspelt known one is almost surely a mistake.
    if typos:
        _check_typos(d, file, line, problems, cluster_field)
    if not f.ok:
        return None
    ph = hashlib.sha256(prompt.encode()).hexdigest() if prompt is not None else None
    extracted = d.get("extracted")
    return {
        "arm": arm,
        "item_id": item,
        "variant": variant,
        "budget": budget,
        "text": text,
        "target": target,
        "target_kind": target_kind,
        "finish_reason": FINISH.get(fr) if fr else None,
        "completion_tokens": tokens,
        "prompt_hash": ph,
        "doc_hash": None,
        "source": file,
        "line": line,
        "scores": scores,
        "cluster": cluster,
        "extracted": extracted
        if isinstance(extracted, (str, int, float)) and not isinstance(extracted, bool)
        else None,
        "answered": answered,
        "no_output": NULL_OUTPUT if null_output else None,
    }


def _check_typos(d: dict, file: str, line: int | None, problems: list[Problem], cluster_field: str | None) -> None:
    """Append a problem naming the keys of ``d`` that look like misspelt known keys."""
    import difflib

    bad = {
        u: m[0]
        for u in sorted(set(d) - KNOWN - {cluster_field})
        if (m := difflib.get_close_matches(u, sorted(KNOWN), n=1, cutoff=0.8))
    }
    if bad:
        problems.append(
            Problem(
                f"unknown key(s) {sorted(bad)}",
                file=file,
                line=line,
                fix="did you mean " + ", ".join(f"{u}→{k}" for u, k in bad.items()) + "?",
            )
        )


NULL_OUTPUT = "null output"
"""Why a logged record has no output: its output is null (an empty string is "empty output", see audit.records)."""
_ABSENT = object()
NO_ANSWER = ("", "[invalid]")
"""Extracted answers that mean "no answer was found": lm-eval's regex filter writes "[invalid]"."""


def _answered(v) -> float:
    """1.0 when a logged extracted answer is there, 0.0 when it is null / empty / "[invalid]", NaN when the record
    does not say (no ``extracted`` key)."""
    if v is _ABSENT:
        return math.nan
    if v is None or (isinstance(v, str) and v.strip() in NO_ANSWER):
        return 0.0
    return 1.0


def _target(f: Fields) -> tuple[str | None, str | None]:
    """The reference answer: a string (a number is read as its text); an object is kept as JSON for scorers that
    take one (code_exec: {prompt, test, entry_point}); an array or a boolean is refused."""
    v = f.obj.get("target")
    if v is None:
        return None, None
    if isinstance(v, str):
        return v, "text"
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return str(v), "text"
    if isinstance(v, dict):
        return json.dumps(v, ensure_ascii=False), "object"
    f.bad(
        "target",
        f"must be a string (the reference answer), not a JSON {json_type(v)}",
        v,
        "give one reference string; for several acceptable answers use a regex scorer (scorers:) that accepts "
        "each of them",
    )
    return None, None


def _scores(f: Fields) -> dict:
    raw = f.mapping("scores", fix='give scores as an object of scoring name → number, e.g. {"exact": 1}')
    out: dict = {}
    for name, v in (raw or {}).items():
        x = f.number_value(f"scores.{name}", v)
        if x is not None:
            out[name] = x
    return out
