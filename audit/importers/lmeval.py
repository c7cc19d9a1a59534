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
    from audit.jsonlines import json_type, read_text

    fix = "the results_*.json next to the samples is damaged; re-run lm-eval or remove it"
    text = read_text(path, "lm-eval results file")
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise InputError([Problem(f"cannot read lm-eval results file: {getattr(exc, 'msg', None) or exc}",
                                  file=str(path), line=getattr(exc, "lineno", None), fix=fix)]) from None
    if not isinstance(data, dict):
        raise InputError([Problem(f"an lm-eval results file holds a JSON object, not a JSON {json_type(data)}",
                                  file=str(path), line=1, fix=fix)])

    def obj(v: Any) -> dict:
        return v if isinstance(v, dict) else {}

    cfg = obj(obj(data.get("configs")).get(task))
    top = obj(data.get("config"))
    filters = cfg.get("filter_list") if isinstance(cfg.get("filter_list"), list) else []
    return {
        "task": task,
        "results_file": str(path),
        "generation_kwargs": cfg.get("generation_kwargs"),
        "filter_list": [f.get("name") for f in filters if isinstance(f, dict) and isinstance(f.get("name"), str)],
        "metric_list": cfg.get("metric_list"),
        "doc_to_text": cfg.get("doc_to_text"),
        "doc_to_target": cfg.get("doc_to_target"),
        "fewshot": cfg.get("num_fewshot"),
        "task_version": obj(data.get("versions")).get(task),
        "model": top.get("model"),
        "model_args": _redact(top.get("model_args")),
        "gen_kwargs_cli": top.get("gen_kwargs"),
        "lm_eval_version": data.get("lm_eval_version"),
        "git_hash": data.get("git_hash"),
        "model_name": data.get("model_name"),
        "chat_template": data.get("chat_template"),
        "system_instruction": data.get("system_instruction"),
        "task_hash": obj(data.get("task_hashes")).get(task),
    }


TOLERANCE = 1e-6
"""Largest |recomputed − published| accepted for a metric: lm-eval writes full-precision floats, and the smallest real
discrepancy (one document of n changing its score) is 1/n, far above this for any n below a million."""


def published_numbers(path: Path, task: str) -> dict[str, Any]:
    """What a results file publishes for one task, for the cross-check with its samples: the document counts
    (``n-samples`` original/effective, ``sample_len``, ``config.limit``) and every ``metric,filter`` value (the
    ``*_stderr`` entries left out), plus each metric's aggregation from the task config."""
    from audit.jsonlines import read_text

    try:
        data = json.loads(read_text(path, "lm-eval results file"))
    except (json.JSONDecodeError, RecursionError, InputError):
        return {}  # read_results has already reported the damage
    if not isinstance(data, dict):
        return {}

    def obj(v: Any) -> dict:
        return v if isinstance(v, dict) else {}

    res = obj(obj(data.get("results")).get(task))
    metrics = {k: v for k, v in res.items() if isinstance(k, str) and "," in k and "_stderr," not in k
               and isinstance(v, (int, float)) and not isinstance(v, bool)}
    ns = obj(obj(data.get("n-samples")).get(task))
    cfg = obj(obj(data.get("configs")).get(task))
    aggregation = {m.get("metric"): m.get("aggregation", "mean") for m in (cfg.get("metric_list") or [])
                   if isinstance(m, dict) and isinstance(m.get("metric"), str)}
    return {
        "role": "results", "task": task,
        "n_samples": {k: ns.get(k) for k in ("original", "effective") if isinstance(ns.get(k), int)},
        "sample_len": res.get("sample_len") if isinstance(res.get("sample_len"), int) else None,
        "limit": obj(data.get("config")).get("limit"),
        "metrics": metrics,
        "aggregation": {k: v if isinstance(v, str) else str(v) for k, v in aggregation.items()},
    }


def sample_numbers(df: pd.DataFrame, path: Path, metric: str) -> dict[str, Any]:
    """What one samples file holds, for the cross-check with its results file: the documents seen, and per filter
    the documents and the claimed metric's mean recomputed from the lines (lm-eval's "mean" aggregation)."""
    part = df[df["source"] == str(path)]
    filters = {}
    for name, g in part.groupby("scoring", sort=False):
        filters[str(name)] = {"documents": int(g["item_id"].nunique()), "lines": int(len(g)),
                              metric: float(g["score"].mean()) if len(g) else float("nan")}
    return {"role": "samples", "documents": int(part["item_id"].nunique()), "metric": metric, "filters": filters}


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
    """Parse one samples file into record rows (one per doc × filter). Returns rows and the problems found.

    Fields are type-checked (:class:`audit.jsonlines.Fields`): a metric given as a string, a doc_id that is not
    an integer or a string, a ``doc`` that is not an object are reported, never converted.
    """
    from audit.jsonlines import MAX_PROBLEMS, Fields

    problems: list[Problem] = []
    rows: list[tuple] = []
    seen_per_doc: dict[Any, int] = {}
    file = str(path)
    objects = list(json_objects(path, problems, what="samples file"))
    for i, d in objects:
        if len(problems) >= MAX_PROBLEMS:
            problems.append(Problem(f"stopping after {MAX_PROBLEMS} problems in this file", file=file))
            break
        if "doc_id" not in d:
            problems.append(Problem("line is not an lm-eval sample (no 'doc_id')", file=file, line=i,
                                    fix="samples.format: lm-eval expects --log_samples output; use format: jsonl for other logs"))
            continue
        f = Fields(d, file, i, problems)
        doc_id = f.ident("doc_id")
        filt = f.text("filter")
        doc = f.mapping("doc")
        cluster = None
        if cluster_field and doc is not None:
            cluster = Fields(doc, file, i, problems, prefix="doc.").scalar(cluster_field)
        if metric not in d:
            metrics = [k for k in (d.get("metrics") or []) if isinstance(k, str)] \
                if isinstance(d.get("metrics"), list) else []
            logged = [k for k in metrics if k != metric]
            problems.append(Problem(f"the claimed metric {metric!r} is not on this line", file=file, line=i,
                                    field="claim.metric",
                                    fix=(f"set claim.metric to one of {logged}" if logged else
                                         f"the line lists {metric!r} under 'metrics' but carries no value for it; "
                                         "re-run lm-eval with --log_samples" if metrics else "check claim.metric")))
            continue
        score = f.number(metric, required=True,
                         fix="lm-eval writes metric values as numbers; a quoted or null value means the log was edited")
        if not f.ok or doc_id is None:
            continue
        occurrence = seen_per_doc.get(doc_id, 0)
        seen_per_doc[doc_id] = occurrence + 1
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
        target = d.get("target")
        gk = _gen_kwargs(d.get("arguments"))
        ph, dh = d.get("prompt_hash"), d.get("doc_hash")
        rows.append((
            arm, doc_id, variant, budget, filt, score, _raw_text(d.get("resps")),
            _target_text(target), None, None, ph if isinstance(ph, str) else None, dh if isinstance(dh, str) else None,
            file, i, _filtered(d.get("filtered_resps")), (gk or {}).get("max_gen_toks"), cluster,
        ))
    cols = ["arm", "item_id", "variant", "budget", "scoring", "score", "text", "target", "finish_reason",
            "completion_tokens", "prompt_hash", "doc_hash", "source", "line", "extracted", "line_max_gen_toks",
            "cluster"]
    df = pd.DataFrame.from_records(rows, columns=cols)
    df["answered"] = [answered(s, x) for s, x in zip(df["scoring"], df["extracted"])]
    return df, problems


def answered(filter_name: Any, filtered: Any) -> float:
    """Whether an lm-eval filter found an answer: 0.0 for lm-eval's "[invalid]" (its regex filter's fallback) or an
    empty response, 1.0 otherwise; NaN for the "none" filter, which extracts nothing (the response is the output)."""
    if filter_name == "none":
        return float("nan")
    if filtered is None or (isinstance(filtered, str) and filtered.strip() in ("", "[invalid]")):
        return 0.0
    return 1.0


def _target_text(target: Any) -> str | None:
    """The reference as text for re-scoring: a string or number as is; None (not "None", not "[...]") otherwise,
    so that a built-in scorer asked to re-score the line reports the missing target instead of scoring junk."""
    if isinstance(target, str):
        return target
    if isinstance(target, (int, float)) and not isinstance(target, bool):
        return str(target)
    if isinstance(target, list) and len(target) == 1 and isinstance(target[0], str):
        return target[0]
    return None
