"""The generic JSONL sample format, for logs that did not come from lm-eval.

One JSON object per line::

    {"id": "q17", "output": "The answer is 12", "target": "12",
     "prompt": "...",                         # optional; hashed to check both budgets of an arm used one prompt
     "finish_reason": "length",               # optional: "stop" | "length" (the server's word on truncation)
     "completion_tokens": 512,                # optional: tokens generated
     "scores": {"strict-match": 0, "flexible-extract": 1}}   # optional: scores per scoring name

``id`` and ``output`` are required; ``target`` is required unless every scoring the claim names is in ``scores``.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from audit.errors import Problem
from audit.jsonlines import json_objects

REQUIRED = ("id", "output")
KNOWN = {"id", "prompt", "output", "target", "finish_reason", "completion_tokens", "scores", "doc"}


def read_jsonl(path: Path, arm: str, budget: int | None, variant: str = "default",
               cluster_field: str | None = None) -> tuple[pd.DataFrame, list[Problem]]:
    """Parse one generic JSONL file into rows with a ``scores`` dict column (expanded by the caller)."""
    problems: list[Problem] = []
    rows = []
    file = str(path)
    for i, d in json_objects(path, problems, example='{"id": "q1", "output": "12", "target": "12"}'):
        missing = [k for k in REQUIRED if k not in d]
        if missing:
            problems.append(Problem(f"missing required key(s) {missing}", file=file, line=i,
                                    fix="generic JSONL lines need at least id and output (see README: sample formats)"))
            continue
        # Extra keys (metadata) are fine; a key that looks like a misspelt known one is almost surely a mistake.
        if i == 1:
            import difflib

            typos = {u: m[0] for u in sorted(set(d) - KNOWN - {cluster_field})
                     if (m := difflib.get_close_matches(u, sorted(KNOWN), n=1, cutoff=0.8))}
            if typos:
                problems.append(Problem(f"unknown key(s) {sorted(typos)}", file=file, line=i,
                                        fix="did you mean " + ", ".join(f"{u}→{k}" for u, k in typos.items()) + "?"))
        scores = d.get("scores") or {}
        if not isinstance(scores, dict):
            problems.append(Problem("'scores' must be an object of scoring name → number", file=file, line=i))
            continue
        fr = d.get("finish_reason")
        if fr is not None and fr not in ("stop", "length", "eos", "max_tokens"):
            problems.append(Problem(f"unknown finish_reason {fr!r}", file=file, line=i,
                                    fix="use 'stop' or 'length' (or leave it out)"))
        if fr in ("max_tokens",):
            fr = "length"
        if fr == "eos":
            fr = "stop"
        prompt = d.get("prompt")
        ph = hashlib.sha256(prompt.encode()).hexdigest() if isinstance(prompt, str) else None
        rows.append({
            "arm": arm, "item_id": str(d["id"]), "variant": variant, "budget": budget,
            "text": str(d["output"]), "target": None if d.get("target") is None else str(d["target"]),
            "finish_reason": fr, "completion_tokens": d.get("completion_tokens"), "prompt_hash": ph,
            "doc_hash": None, "source": file, "line": i, "scores": scores,
            "cluster": d.get(cluster_field) if cluster_field else None,
        })
    return pd.DataFrame(rows), problems
