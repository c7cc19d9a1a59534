"""Importer for lm-evaluation-harness 0.4.x ``--log_samples`` output.

A samples file ``samples_<task>_<date>.jsonl`` has one line per document × filter with the keys ``doc_id``, ``doc``,
``target``, ``arguments``, ``resps``, ``filtered_resps``, ``filter`` (absent before v0.4.7, when lines for each filter
follow in the task's ``filter_list`` order), the metric keys and ``doc_hash`` / ``prompt_hash`` / ``target_hash``.
The ``results_<date>.json`` beside it holds the task config (generation kwargs, filters), the model arguments and the
versions; it is optional, but without it the effective settings of the arm cannot be shown.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd

from audit.errors import InputError, Problem
from audit.jsonlines import json_objects

_SAMPLES = re.compile(r"^samples_(?P<task>.+?)_(?P<date>\d{4}-\d{2}-\d{2}T[\d\-\.]+)\.jsonl$")


def task_of(path: Path) -> str:
    m = _SAMPLES.match(path.name)
    return m.group("task") if m else path.stem.removeprefix("samples_")


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _raw_text(resps: Any) -> str | None:
    """The raw generation: ``resps`` is a list (per request) of lists (per repeat) of strings for generate_until."""
    x = resps
    while isinstance(x, list) and x:
        x = x[0]
    return x if isinstance(x, str) else None


def _filtered(fr: Any) -> Any:
    x = fr
    while isinstance(x, list) and len(x) == 1:
        x = x[0]
    return x


def _gen_kwargs(arguments: Any) -> dict | None:
    """Generation kwargs from ``arguments`` (a list of [context, kwargs], or the dict form of lm-eval >= 0.4.5)."""
    if isinstance(arguments, dict):
        first = next(iter(arguments.values()), None)
        if isinstance(first, dict):
            vals = list(first.values())
            return next((v for v in vals if isinstance(v, dict)), None)
    if isinstance(arguments, list) and arguments:
        a0 = arguments[0]
        if isinstance(a0, list) and len(a0) > 1 and isinstance(a0[1], dict):
            return a0[1]
    return None


def find_results(samples_path: Path) -> Path | None:
    """The ``results_*.json`` written in the same run: same folder, the newest one (lm-eval writes one per run)."""
    cands = sorted(samples_path.parent.glob("results_*.json"))
    return cands[-1] if cands else None


def read_results(path: Path, task: str) -> dict[str, Any]:
    """Settings of one task from a results file: generation kwargs, filters, metrics, model args, versions."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError([Problem(f"cannot read lm-eval results file: {exc}", file=str(path),
                                  line=getattr(exc, "lineno", None),
                                  fix="the results_*.json next to the samples is damaged; re-run lm-eval or remove it")]) from None
    cfg = (data.get("configs") or {}).get(task, {})
    top = data.get("config") or {}
    return {
        "task": task,
        "results_file": str(path),
        "generation_kwargs": cfg.get("generation_kwargs"),
        "filter_list": [f.get("name") for f in cfg.get("filter_list") or [] if isinstance(f, dict)],
        "metric_list": cfg.get("metric_list"),
        "doc_to_text": cfg.get("doc_to_text"),
        "doc_to_target": cfg.get("doc_to_target"),
        "fewshot": cfg.get("num_fewshot"),
        "task_version": (data.get("versions") or {}).get(task),
        "model": top.get("model"),
        "model_args": _redact(top.get("model_args")),
        "gen_kwargs_cli": top.get("gen_kwargs"),
        "lm_eval_version": data.get("lm_eval_version"),
        "git_hash": data.get("git_hash"),
        "model_name": data.get("model_name"),
        "chat_template": data.get("chat_template"),
        "system_instruction": data.get("system_instruction"),
        "task_hash": (data.get("task_hashes") or {}).get(task),
    }


def _redact(model_args: Any) -> Any:
    """Drop anything that looks like a credential from model_args before it reaches a report."""
    if isinstance(model_args, str):
        return re.sub(r"((?:api_?key|token|secret|password)=)[^,]*", r"\1<redacted>", model_args, flags=re.I)
    if isinstance(model_args, dict):
        return {k: ("<redacted>" if re.search(r"api_?key|token|secret|password", k, re.I) else v)
                for k, v in model_args.items()}
    return model_args


def read_samples(path: Path, arm: str, budget: int | None, metric: str, filter_order: list[str] | None,
                 variant: str = "default", cluster_field: str | None = None) -> tuple[pd.DataFrame, list[Problem]]:
    """Parse one samples file into record rows (one per doc × filter). Returns rows and the problems found."""
    problems: list[Problem] = []
    rows: list[tuple] = []
    seen_per_doc: dict[Any, int] = {}
    file = str(path)
    try:
        objects = list(json_objects(path, problems))
    except OSError as exc:
        return pd.DataFrame(), [Problem(f"cannot open samples file: {exc.strerror}", file=file)]
    for i, d in objects:
        if "doc_id" not in d:
            problems.append(Problem("line is not an lm-eval sample (no 'doc_id')", file=file, line=i,
                                    fix="samples.format: lm-eval expects --log_samples output; use format: jsonl for other logs"))
            continue
        doc_id = d["doc_id"]
        occurrence = seen_per_doc.get(doc_id, 0)
        seen_per_doc[doc_id] = occurrence + 1
        filt = d.get("filter")
        if filt is None:
            # Before v0.4.7 the filter name is not on the line; the k-th line of a document is the k-th filter.
            if filter_order and occurrence < len(filter_order):
                filt = filter_order[occurrence]
            elif occurrence == 0:
                filt = "none"
            else:
                problems.append(Problem(
                    f"document {doc_id} appears {occurrence + 1} times but the lines carry no 'filter' key and no "
                    "results_*.json gives the filter order", file=file, line=i,
                    fix="put the results_*.json of the same run next to the samples file"))
                continue
        if metric not in d:
            metrics = [k for k in (d.get("metrics") or []) if isinstance(k, str)]
            problems.append(Problem(f"metric {metric!r} is not on this line", file=file, line=i,
                                    field="claim.metric", value=metric,
                                    fix=f"set claim.metric to one of {metrics}" if metrics else "check claim.metric"))
            if len(problems) >= 20:
                break
            continue
        try:
            score = float(d[metric])
        except (TypeError, ValueError):
            problems.append(Problem(f"metric {metric!r} is not a number", file=file, line=i, value=d[metric]))
            continue
        gk = _gen_kwargs(d.get("arguments"))
        rows.append((
            arm, str(doc_id), variant, budget, filt, score, _raw_text(d.get("resps")),
            str(d.get("target")), None, None, d.get("prompt_hash"), d.get("doc_hash"), file, i,
            _filtered(d.get("filtered_resps")), (gk or {}).get("max_gen_toks"),
            (d.get("doc") or {}).get(cluster_field) if cluster_field else None,
        ))
    cols = ["arm", "item_id", "variant", "budget", "scoring", "score", "text", "target", "finish_reason",
            "completion_tokens", "prompt_hash", "doc_hash", "source", "line", "extracted", "line_max_gen_toks",
            "cluster"]
    return pd.DataFrame.from_records(rows, columns=cols), problems
