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
import math
import re
from itertools import repeat
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
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


_RESULTS = re.compile(r"^results_(?P<date>\d{4}-\d{2}-\d{2}T[\d\-\.]+)\.json$")


def date_of(path: Path) -> str | None:
    """The run's timestamp suffix of a ``samples_<task>_<date>.jsonl`` or ``results_<date>.json`` (None if absent)."""
    m = _SAMPLES.match(path.name) or _RESULTS.match(path.name)
    return m.group("date") if m else None


def find_results(samples_path: Path) -> Path | None:
    """The ``results_<date>.json`` lm-eval wrote in the same run as ``samples_<task>_<date>.jsonl``: the one with the
    same timestamp suffix. A folder with one results file and none matching pairs with that one (a run renamed by
    hand); a folder with several and none matching is ambiguous and refused, naming the candidates (pairing with the
    newest gave the treatment the base model's settings). None when the folder holds none."""
    cands = sorted(samples_path.parent.glob("results_*.json"))
    if not cands:
        return None
    date = date_of(samples_path)
    same = [c for c in cands if date is not None and date_of(c) == date]
    if len(same) == 1:
        return same[0]
    if len(cands) == 1:
        return cands[0]
    raise InputError(
        [
            Problem(
                f"cannot tell which results file belongs to {samples_path.name}: the folder holds "
                f"{len(cands)} results files "
                f"({', '.join(c.name for c in cands[:6])}{', …' if len(cands) > 6 else ''}) and none has its timestamp "
                f"{date or '(none in the file name)'}",
                file=str(samples_path),
                fix="keep each lm-eval run in its own folder, or keep the samples and results files of a run with the "
                "timestamp suffix lm-eval gave them (samples_<task>_<date>.jsonl and results_<date>.json)",
            )
        ]
    )


RESULTS_FILE = "lm-eval results file"
_LONG_INTEGER = re.compile(r"(?<![\w.])-?\d{4301,}")


def load_results_json(
    path: Path, fix: str = "the results_*.json next to the samples is damaged; re-run lm-eval or remove it"
) -> Any:
    """The JSON document of a results file, or :class:`InputError` (exit 2) naming the file and line: not a regular
    file, not UTF-8, not JSON, nested too deeply, an integer of more than 4,300 digits, a key given twice. Parsed with
    the standard library rather than :func:`audit.jsonlines.read_json` (orjson): lm-eval writes ``NaN`` for the
    ``nanmean`` of no values (``json.dumps`` allows it), and such a file is the run's genuine output."""
    from audit.jsonlines import duplicate_key_problem, read_text

    file = str(path)
    text = read_text(path, RESULTS_FILE)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            [
                Problem(
                    f"cannot read {RESULTS_FILE}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
                    file=file,
                    line=exc.lineno,
                    fix=fix,
                )
            ]
        ) from None
    except RecursionError:
        raise InputError(
            [
                Problem(
                    f"the {RESULTS_FILE} is nested too deeply to be read (arrays or objects inside "
                    "each other about a thousand levels deep)",
                    file=file,
                    fix=fix,
                )
            ]
        ) from None
    except ValueError as exc:  # Python's limit on converting long digit strings to int (4,300 digits)
        m = _LONG_INTEGER.search(text)
        what = f"an integer of {len(m.group().lstrip('-')):,} digits" if m else f"a number that cannot be read ({exc})"
        raise InputError(
            [
                Problem(
                    f"the {RESULTS_FILE} holds {what}, more than the 4,300 digits a number may have here",
                    file=file,
                    line=text.count("\n", 0, m.start()) + 1 if m else None,
                    fix=fix,
                )
            ]
        ) from None
    dup = duplicate_key_problem(text, data, file, None)
    if dup is not None:
        raise InputError([dup])
    return data


def read_results(path: Path, task: str) -> dict[str, Any]:
    """Settings of one task from a results file: generation kwargs, filters, metrics, model args, versions."""
    from audit.jsonlines import json_type

    fix = "the results_*.json next to the samples is damaged; re-run lm-eval or remove it"
    data = load_results_json(path, fix)
    if not isinstance(data, dict):
        raise InputError(
            [
                Problem(
                    f"an lm-eval results file holds a JSON object, not a JSON {json_type(data)}",
                    file=str(path),
                    line=1,
                    fix=fix,
                )
            ]
        )

    def obj(v: Any) -> dict:
        return v if isinstance(v, dict) else {}

    cfg = obj(obj(data.get("configs")).get(task))
    wrong = [k for k in ("metric_list", "filter_list") if cfg.get(k) is not None and not isinstance(cfg.get(k), list)]
    if wrong:  # lm-eval writes each as a list of objects; anything else is an edited or damaged file
        raise InputError(
            [
                Problem(
                    f"{k} of task {task!r} is a JSON {json_type(cfg[k])}, not a list (lm-eval writes a "
                    f"list of {{{'metric, aggregation, …' if k == 'metric_list' else 'name, filter'}}} "
                    "objects)",
                    file=str(path),
                    field=f"configs.{task}.{k}",
                    value=cfg[k],
                    fix=fix,
                )
                for k in wrong
            ]
        )
    top = obj(data.get("config"))
    listed = cfg.get("filter_list")
    filters = listed if isinstance(listed, list) else []
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


def positional_filter(occurrence: int, filter_order) -> str | None:
    """Before lm-eval v0.4.7 the filter name is not on the line: the k-th line of a document is the k-th filter of
    the results file's order ("none" for a document's only line without one); None when that cannot be told."""
    if filter_order and occurrence < len(filter_order):
        return filter_order[occurrence]
    return "none" if occurrence == 0 else None


RESULTS_ROLE = "results"  # an arm's settings entry read from lm-eval's results_*.json
SAMPLES_ROLE = "samples"  # one read from a samples_*.jsonl
"""Largest |recomputed − published| accepted for a metric: lm-eval writes full-precision floats, and the smallest real
discrepancy (one document of n changing its score) is 1/n, far above this for any n below a million."""


def published_numbers(path: Path, task: str) -> dict[str, Any]:
    """What a results file publishes for one task, for the cross-check with its samples: the document counts
    (``n-samples`` original/effective, ``sample_len``, ``config.limit``) and every ``metric,filter`` value (the
    ``*_stderr`` entries left out), plus each metric's aggregation from the task config."""
    try:
        data = load_results_json(path)
    except InputError:
        return {}  # read_results has already reported the damage
    if not isinstance(data, dict):
        return {}

    def obj(v: Any) -> dict:
        return v if isinstance(v, dict) else {}

    res = obj(obj(data.get("results")).get(task))
    metrics = {
        k: v
        for k, v in res.items()
        if isinstance(k, str)
        and "," in k
        and "_stderr," not in k
        and isinstance(v, (int, float))
        and not isinstance(v, bool)
    }
    ns = obj(obj(data.get("n-samples")).get(task))
    cfg = obj(obj(data.get("configs")).get(task))
    ml = cfg.get("metric_list")
    aggregation = {
        m.get("metric"): m.get("aggregation", "mean")
        for m in (ml if isinstance(ml, list) else [])
        if isinstance(m, dict) and isinstance(m.get("metric"), str)
    }
    return {
        "role": RESULTS_ROLE,
        "task": task,
        # the tasks the file publishes results of: a results file of another task is named as such, not as "none"
        "tasks": sorted(k for k, v in obj(data.get("results")).items() if isinstance(k, str) and isinstance(v, dict)),
        "n_samples": {k: ns.get(k) for k in ("original", "effective") if isinstance(ns.get(k), int)},
        "sample_len": res.get("sample_len") if isinstance(res.get("sample_len"), int) else None,
        "limit": obj(data.get("config")).get("limit"),
        "metrics": metrics,
        "aggregation": {k: v if isinstance(v, str) else str(v) for k, v in aggregation.items()},
    }


def sample_numbers(df: pd.DataFrame, path: Path, metric: str) -> dict[str, Any]:
    """What one samples file holds, for the cross-check with its results file: the documents seen, and per filter
    the documents and the claimed metric's mean recomputed from the lines (lm-eval's "mean" aggregation)."""
    mine = (df["source"] == str(path)).to_numpy(dtype=bool, na_value=False)
    # a run of one file (the common case): every row is the file's, none copied out
    part = df[["item_id", "scoring", "score"]] if mine.all() else df.loc[mine, ["item_id", "scoring", "score"]]
    filters = {}
    for name, g in part.groupby("scoring", sort=False):
        filters[str(name)] = {
            "documents": int(g["item_id"].nunique()),
            "lines": int(len(g)),
            metric: float(g["score"].mean()) if len(g) else float("nan"),
        }
    return {"role": SAMPLES_ROLE, "documents": int(part["item_id"].nunique()), "metric": metric, "filters": filters}


def _redact(model_args: Any) -> Any:
    """Drop anything that looks like a credential from model_args before it reaches a report."""
    if isinstance(model_args, str):
        return re.sub(r"((?:api_?key|token|secret|password)=)[^,]*", r"\1<redacted>", model_args, flags=re.I)
    if isinstance(model_args, dict):
        return {
            k: ("<redacted>" if re.search(r"api_?key|token|secret|password", k, re.I) else v)
            for k, v in model_args.items()
        }
    return model_args


_COLUMNS = [
    "arm",
    "item_id",
    "variant",
    "budget",
    "scoring",
    "score",
    "text",
    "target",
    "finish_reason",
    "completion_tokens",
    "prompt_hash",
    "doc_hash",
    "source",
    "line",
    "extracted",
    "line_max_gen_toks",
    "cluster",
]


def read_samples(
    path: Path,
    arm: str,
    budget: int | None,
    metric: str,
    filter_order: list[str] | None,
    variant: str = "default",
    cluster_field: str | None = None,
) -> tuple[pd.DataFrame, list[Problem]]:
    """Parse one samples file into record rows (one per doc × filter). Returns rows and the problems found.

    Fields are type-checked (:class:`audit.jsonlines.Fields`): a metric given as a string, a doc_id that is not
    an integer or a string, a ``doc`` that is not an object are reported, never converted.

    A clean file is read column by column (:func:`read_samples_fast`); a file with anything unusual in it is read
    line by line (:func:`read_samples_careful`), which names every problem. Both give the same table.
    """
    from audit.jsonlines import gc_paused

    with gc_paused():
        df = read_samples_fast(path, arm, budget, metric, filter_order, variant, cluster_field)
    if df is not None:
        return df, []
    return read_samples_careful(path, arm, budget, metric, filter_order, variant, cluster_field)


def read_samples_careful(
    path: Path,
    arm: str,
    budget: int | None,
    metric: str,
    filter_order: list[str] | None,
    variant: str = "default",
    cluster_field: str | None = None,
) -> tuple[pd.DataFrame, list[Problem]]:
    """:func:`read_samples` line by line, each field through :class:`audit.jsonlines.Fields`: the reference
    behaviour, and the path that reports problems."""
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
            problems.append(_not_a_sample_problem(file, i))
            continue
        f = Fields(d, file, i, problems)
        doc_id = f.ident("doc_id")
        filt = f.text("filter")
        doc = f.mapping("doc")
        cluster = None
        if cluster_field and doc is not None:
            cluster = Fields(doc, file, i, problems, prefix="doc.").scalar(cluster_field)
        if metric not in d:
            problems.append(_missing_metric_problem(d, metric, file, i))
            continue
        score = f.number(
            metric,
            required=True,
            fix="lm-eval writes metric values as numbers; a quoted or null value means the log was edited",
        )
        if not f.ok or doc_id is None:
            continue
        occurrence = seen_per_doc.get(doc_id, 0)
        seen_per_doc[doc_id] = occurrence + 1
        if filt is None:
            filt = positional_filter(occurrence, filter_order)
            if filt is None:
                problems.append(_no_filter_problem(doc_id, occurrence, file, i))
                continue
        target = d.get("target")
        gk = _gen_kwargs(d.get("arguments"))
        ph, dh = d.get("prompt_hash"), d.get("doc_hash")
        rows.append(
            (
                arm,
                doc_id,
                variant,
                budget,
                filt,
                score,
                _raw_text(d.get("resps")),
                _target_text(target),
                None,
                None,
                ph if isinstance(ph, str) else None,
                dh if isinstance(dh, str) else None,
                file,
                i,
                _filtered(d.get("filtered_resps")),
                (gk or {}).get("max_gen_toks"),
                cluster,
            )
        )
    df = pd.DataFrame.from_records(rows, columns=_COLUMNS)
    df["answered"] = [answered(s, x) for s, x in zip(df["scoring"], df["extracted"])]
    return df, problems


def _not_a_sample_problem(file: str, line: int) -> Problem:
    """The problem for a samples-file line that has no ``doc_id``."""
    return Problem(
        "line is not an lm-eval sample (no 'doc_id')",
        file=file,
        line=line,
        fix="samples.format: lm-eval expects --log_samples output; use format: jsonl for other logs",
    )


def _missing_metric_problem(d: dict, metric: str, file: str, line: int) -> Problem:
    """The problem for a sample line that carries no value for the claimed metric."""
    metrics = [k for k in (d.get("metrics") or []) if isinstance(k, str)] if isinstance(d.get("metrics"), list) else []
    logged = [k for k in metrics if k != metric]
    return Problem(
        f"the claimed metric {metric!r} is not on this line",
        file=file,
        line=line,
        field="claim.metric",
        fix=(
            f"set claim.metric to one of {logged}"
            if logged
            else f"the line lists {metric!r} under 'metrics' but carries no value for it; "
            "re-run lm-eval with --log_samples"
            if metrics
            else "check claim.metric"
        ),
    )


def _no_filter_problem(doc_id: Any, occurrence: int, file: str, line: int) -> Problem:
    """The problem for a repeated document whose filter can be told neither from its line nor from the results."""
    return Problem(
        f"document {doc_id} appears {occurrence + 1} times but the lines carry no 'filter' key and no "
        "results_*.json gives the filter order",
        file=file,
        line=line,
        fix="put the results_*.json of the same run next to the samples file",
    )


_NONE = type(None)
_SCALARS = {str, int, float, bool, _NONE}


def read_samples_fast(
    path: Path,
    arm: str,
    budget: int | None,
    metric: str,
    filter_order: list[str] | None,
    variant: str = "default",
    cluster_field: str | None = None,
) -> pd.DataFrame | None:
    """:func:`read_samples_careful`'s table for a file in which nothing needs reporting, built a column at a time;
    None as soon as anything is unusual (a line that does not parse, a missing key, a value of a type the careful
    path refuses), and the caller then reads the file line by line for the messages.

    Every column is derived from the parsed lines with the careful path's own rules: the common shape (a string
    where a string is expected, ``resps`` as ``[[text]]``) is taken in one comprehension, anything else goes
    through the careful path's helper for that value. Column types are inferred as ``DataFrame.from_records``
    infers them (:func:`_column`). Call it inside :func:`audit.jsonlines.gc_paused`.
    """
    from audit.jsonlines import Unusual, plain_lines

    got = plain_lines(path)
    if got is None:
        return None
    numbers, lines = got
    n = len(lines)
    try:
        cols, scores, doc_kinds, clusters, max_gen_toks = _fast_batches(lines, metric, cluster_field)
        ids = _fast_ids(cols["item_id"].values)
        score = _fast_scores(scores)
        filters = _fast_filters(cols["scoring"], ids, filter_order)
        # doc (Fields.mapping): an object, or null / absent; the cluster (Fields.scalar) a plain value in it.
        if not doc_kinds <= {dict, _NONE}:
            return None
        if not cluster_field:
            clusters = [None] * n
        elif not set(map(type, clusters)) <= _SCALARS:
            return None
    except Unusual:
        return None
    # target (its text, or None: _target_text) and the hashes (strings, else None): as they are when all strings
    data = {
        "item_id": ids,
        "scoring": filters,
        "score": score,
        "line": numbers,
        "line_max_gen_toks": max_gen_toks,
        "cluster": clusters,
        "text": None,
        "extracted": None,
    }
    for c, fix in (("target", _target_text), ("prompt_hash", _text_or_none), ("doc_hash", _text_or_none)):
        values = None if cols[c].all_text else cols[c].values
        data[c] = list(map(fix, values)) if values is not None and set(map(type, values)) != {str} else values
    same: dict[str, Any] = {
        "arm": arm,
        "variant": variant,
        "budget": budget,
        "finish_reason": None,
        "completion_tokens": None,
        "source": str(path),
    }
    df = pd.DataFrame(
        {
            c: _column(same[c], n) if c in same else cols[c].column(data[c]) if c in cols else _column(data[c])
            for c in _COLUMNS
        }
    )
    df["answered"] = _fast_answered(df, cols["extracted"], n)
    return df


def _fast_batches(lines: list[bytes], metric: str, cluster_field: str | None) -> tuple:
    """The lines parsed a batch at a time: (text columns, scores, doc types, clusters, max_gen_toks), or Unusual."""
    from audit.jsonlines import Unusual, parsed_objects

    scores: list = []
    doc_kinds: set = set()  # the docs themselves are not kept: only their types are checked
    clusters: list = []
    max_gen_toks: list = []
    cols = {
        c: _Texts(keep=c == "item_id")
        for c in ("item_id", "scoring", "text", "target", "prompt_hash", "doc_hash", "extracted")
    }
    take_all = itemgetter(
        "doc_id", metric, "filter", "doc", "target", "resps", "filtered_resps", "prompt_hash", "doc_hash", "arguments"
    )
    batch = _batch_lines(lines)
    for k in range(0, len(lines), batch):
        objs = parsed_objects(lines[k : k + batch])
        try:  # every key on every line (the common case): the fields of the batch in one pass, a tuple per key
            ids_, scores_, filters_, docs, targets_, resps, filtered, phs, dhs, args = zip(*map(take_all, objs))
        except KeyError:  # a key missing somewhere: each field on its own, the absent optional ones as None
            try:
                ids_, scores_ = tuple(d["doc_id"] for d in objs), tuple(d[metric] for d in objs)
            except KeyError:
                raise Unusual from None
            filters_, docs, targets_, resps, filtered, phs, dhs, args = (
                tuple(d.get(key) for d in objs)
                for key in (
                    "filter",
                    "doc",
                    "target",
                    "resps",
                    "filtered_resps",
                    "prompt_hash",
                    "doc_hash",
                    "arguments",
                )
            )
        cols["item_id"].add(ids_)
        scores += scores_
        cols["scoring"].add(filters_)
        doc_kinds.update(map(type, docs))
        if cluster_field:
            clusters += [doc.get(cluster_field) if type(doc) is dict else None for doc in docs]
        cols["target"].add(targets_)
        cols["text"].add(_raw_texts(resps))
        cols["extracted"].add(_filtered_all(filtered))
        cols["prompt_hash"].add(phs)
        cols["doc_hash"].add(dhs)
        max_gen_toks += _max_gen_toks_all(args)
        del objs, docs, resps, filtered, args
    return cols, scores, doc_kinds, clusters, max_gen_toks


def _fast_ids(ids: list) -> list:
    """doc_id (Fields.ident): an integer (not a boolean), given as its text, or a non-empty string; else Unusual."""
    from audit.jsonlines import Unusual

    kinds = set(map(type, ids))
    if not kinds <= {int, str} or (str in kinds and "" in ids):
        raise Unusual
    if kinds == {int}:
        return list(map(str, ids))
    if int in kinds:
        return [x if type(x) is str else str(x) for x in ids]
    return ids


def _fast_scores(scores: list) -> np.ndarray:
    """The metric (Fields.number, required): a finite number, true/false as 1/0; else Unusual."""
    from audit.jsonlines import Unusual

    kinds = set(map(type, scores))
    if not kinds <= {float, int, bool}:
        raise Unusual
    if kinds != {float}:
        try:
            scores = [float(x) for x in scores]
        except OverflowError:
            raise Unusual from None
    score = np.array(scores, dtype=np.float64)
    if not np.isfinite(score).all():
        raise Unusual
    return score


def _fast_filters(column: _Texts, ids: list, filter_order: list[str] | None) -> list | None:
    """filter (Fields.text): a string, or null / absent: the k-th line of a document is the k-th filter."""
    from audit.jsonlines import Unusual

    filters = None if column.all_text else column.values  # None: every line names its filter
    kinds = {str} if filters is None else set(map(type, filters))
    if not kinds <= {str, _NONE}:
        raise Unusual
    if filters is not None and _NONE in kinds:  # (filters is None: every line named its filter)
        seen: dict[str, int] = {}
        named = []
        for doc_id, filt in zip(ids, filters):
            occurrence = seen.get(doc_id, 0)
            seen[doc_id] = occurrence + 1
            if filt is None:
                filt = positional_filter(occurrence, filter_order)
                if filt is None:
                    raise Unusual
            named.append(filt)
        filters = named
    return filters


def _fast_answered(df: pd.DataFrame, extracted_column: _Texts, n: int) -> Any:
    """The ``answered`` column, by :func:`answered`'s rule, computed on the whole column at once."""
    # All strings: the column holds these very values (with a null among them, it holds NaN where the list has None).
    extracted = None if extracted_column.all_text else extracted_column.values
    if extracted is None:
        # answered() on strings, in the arrow column: NaN for the "none" filter, 0.0 for "" or "[invalid]" once the
        # whitespace str.strip() removes is trimmed
        import pyarrow as pa
        import pyarrow.compute as pc

        from audit.jsonlines import WHITESPACE

        none = (df["scoring"] == "none").to_numpy(dtype=bool)
        trimmed = pc.utf8_trim(pa.array(df["extracted"].array), characters=WHITESPACE)
        empty = pc.is_in(trimmed, value_set=pa.array(list(_NO_ANSWER), type=trimmed.type)).to_numpy(
            zero_copy_only=False
        )
        return np.where(none, math.nan, np.where(empty, 0.0, 1.0))
    if set(map(type, extracted)) == {str}:
        # answered() on strings, in C-level maps: NaN for the "none" filter, 0.0 for "" or "[invalid]" (stripped)
        none = np.fromiter(map("none".__eq__, df["scoring"].tolist()), dtype=bool, count=n)
        empty = np.fromiter(map(_NO_ANSWER_SET.__contains__, map(str.strip, extracted)), dtype=bool, count=n)
        return np.where(none, math.nan, np.where(empty, 0.0, 1.0))
    # answered() sees the values as the column holds them, as in read_samples_careful
    return [answered(s, x) for s, x in zip(df["scoring"], df["extracted"])]


def _text_or_none(x: Any) -> str | None:
    return x if type(x) is str else None


_first = itemgetter(0)
_gen_args = itemgetter("gen_args_0")
_arg_pair = itemgetter("arg_0", "arg_1")


def _raw_texts(resps: tuple | list) -> list:
    """:func:`_raw_text` of each value: when every one has the common shape ``[[text, ...], ...]`` the texts are
    taken a level at a time (C-level maps, each level's types checked as a whole), else value by value."""
    if set(map(type, resps)) == {list}:
        try:
            inner = list(map(_first, resps))
            if set(map(type, inner)) == {list}:
                texts = list(map(_first, inner))
                if set(map(type, texts)) == {str}:
                    return texts
        except IndexError:  # an empty list somewhere
            pass
    return [
        r[0][0] if type(r) is list and r and type(r[0]) is list and r[0] and type(r[0][0]) is str else _raw_text(r)
        for r in resps
    ]


def _filtered_all(filtered: tuple | list) -> list:
    """:func:`_filtered` of each value: ``[text]`` on every line (the common shape) taken in one map."""
    if set(map(type, filtered)) == {list} and set(map(len, filtered)) == {1}:
        got = list(map(_first, filtered))
        if set(map(type, got)) == {str}:
            return got
    return [x[0] if type(x) is list and len(x) == 1 and type(x[0]) is str else _filtered(x) for x in filtered]


def _max_gen_toks_all(arguments: tuple | list) -> list:
    """:func:`_max_gen_toks` of each value. lm-eval >= 0.4.5 writes {"gen_args_0": {"arg_0": context, "arg_1":
    kwargs}}, whose kwargs are the first object among the first argument's values, as _gen_kwargs takes them: when
    every line has that shape the kwargs are taken a level at a time, else line by line."""
    if set(map(type, arguments)) == {dict} and set(map(len, arguments)) == {1}:
        try:
            gs = list(map(_gen_args, arguments))
            if set(map(type, gs)) == {dict} and set(map(len, gs)) == {2}:
                contexts, kwargs = zip(*map(_arg_pair, gs))
                if set(map(type, contexts)) == {str} and set(map(type, kwargs)) == {dict}:
                    return list(map(dict.get, kwargs, repeat("max_gen_toks")))
        except KeyError:
            pass
    return [
        kw.get("max_gen_toks")
        if type(a) is dict
        and len(a) == 1
        and type(g := a.get("gen_args_0")) is dict
        and len(g) == 2
        and type(g.get("arg_0")) is str
        and type(kw := g.get("arg_1")) is dict
        else _max_gen_toks(a)
        for a in arguments
    ]


_BATCH_BYTES = 128 << 10
"""About this much JSON is parsed at a time by the fast path: a batch's objects are read column by column and freed
while they are still in the CPU cache (and their memory is reused by the next batch). 2,048 lines of a 350-byte-line
log took about half as long again as 375."""


def _batch_lines(lines: list[bytes]) -> int:
    """Lines per batch: :data:`_BATCH_BYTES` of the file's average line, between 32 and 2,048 lines."""
    average = max(1, sum(map(len, lines)) // max(1, len(lines)))
    return max(32, min(2048, _BATCH_BYTES // average))


class _Texts:
    """One column of a clean log, a batch at a time. While every value so far is a string (the common case), the
    values are kept only in their arrow form, made while the batch's strings are still in the CPU cache: the Python
    strings are freed with the batch, so the next batch reuses their memory (keeping them alive until the end took
    about half as long again). The first batch holding anything else turns the column back into Python values
    (``values``), read by the careful path's rules. ``keep``: keep the Python values as well."""

    def __init__(self, keep: bool = False) -> None:
        self.keep = keep
        self._values: list = []
        self.chunks: list | None = [] if getattr(_string_dtype(), "storage", None) == "pyarrow" else None

    def add(self, batch: list | tuple) -> None:
        if self.chunks is not None:
            if set(map(type, batch)) == {str}:
                import pyarrow as pa

                self.chunks.append(pa.array(batch, type=pa.large_string()))
                if self.keep:
                    self._values += batch
                return
            if not self.keep:  # the strings so far, back from their arrow form
                self._values = [v for chunk in self.chunks for v in chunk.to_pylist()]
            self.chunks = None
        self._values += batch

    @property
    def all_text(self) -> bool:
        """Every value is a string (and the arrow form holds them)."""
        return bool(self.chunks)

    @property
    def values(self) -> list:
        if self.chunks is not None and not self.keep:
            return [v for chunk in self.chunks for v in chunk.to_pylist()]
        return self._values

    def column(self, values: list | None = None) -> Any:
        """:func:`_column` of ``values`` (default: the column's own), from the arrow chunks when they hold them."""
        if (values is None or values is self._values) and self.chunks:
            import pyarrow as pa

            return pd.array(
                pa.chunked_array(self.chunks, type=pa.large_string()).combine_chunks(), dtype=_string_dtype()
            )
        return _column(self.values if values is None else values)


def _column(values: list | np.ndarray, n: int | None = None) -> Any:
    """One column as ``DataFrame.from_records`` makes it: the common all-string / all-float / all-int / all-null
    cases directly, every other mix through from_records itself (one column of it). With ``n``, ``values`` is a
    single value repeated n times."""
    if isinstance(values, np.ndarray):
        return values
    if n is not None:
        if type(values) is str:
            return _column([values]).take(np.zeros(n, dtype=np.intp))
        values = [values] * n
    kinds = set(map(type, values))
    if kinds == {str}:
        dtype = _string_dtype()
        if dtype == np.dtype(object):  # pandas < 3
            return np.array(values, dtype=object)
        if getattr(dtype, "storage", None) == "pyarrow":  # what from_records does, without re-checking each value
            import pyarrow as pa

            return pd.array(pa.array(values, type=pa.large_string()), dtype=dtype)
        return pd.array(values, dtype=dtype)
    if kinds == {float}:
        return np.array(values, dtype=np.float64)
    if kinds == {int}:
        arr = np.array(values)
        if arr.dtype == np.int64:
            return arr
    if kinds == {_NONE}:
        arr = np.empty(len(values), dtype=object)
        arr.fill(None)
        return arr
    return pd.DataFrame.from_records([(v,) for v in values], columns=["x"])["x"].array


_STRING_DTYPE: list = []


def _string_dtype() -> Any:
    """The dtype from_records gives a column of strings (pandas >= 3: the pyarrow-backed "str"; before: object)."""
    if not _STRING_DTYPE:
        _STRING_DTYPE.append(pd.DataFrame.from_records([("a",)], columns=["x"])["x"].dtype)
    return _STRING_DTYPE[0]


def _max_gen_toks(arguments: Any) -> Any:
    """``(_gen_kwargs(arguments) or {}).get("max_gen_toks")``, with the common lm-eval >= 0.4.5 shape
    ({"gen_args_0": {"arg_0": context, "arg_1": kwargs}}) taken without building lists."""
    if type(arguments) is dict and arguments:
        first = next(iter(arguments.values()))
        if type(first) is dict:
            for v in first.values():
                if isinstance(v, dict):
                    return v.get("max_gen_toks")
            return None
    gk = _gen_kwargs(arguments)
    return gk.get("max_gen_toks") if gk else None


_NO_ANSWER = ("", "[invalid]")
_NO_ANSWER_SET = frozenset(_NO_ANSWER)


def answered(filter_name: Any, filtered: Any) -> float:
    """Whether an lm-eval filter found an answer: 0.0 for lm-eval's "[invalid]" (its regex filter's fallback) or an
    empty response, 1.0 otherwise; NaN for the "none" filter, which extracts nothing (the response is the output)."""
    if filter_name == "none":
        return float("nan")
    if filtered is None or (isinstance(filtered, str) and filtered.strip() in _NO_ANSWER):
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


def _results_task(results: dict, task: str | None, file: str) -> tuple[str | None, list[Problem]]:
    """The task of a results file to read: ``task``, else its only task (None and the problems when neither)."""
    tasks = sorted(k for k, v in results.items() if isinstance(v, dict))
    if task is None:
        if len(tasks) != 1:
            return None, [
                Problem(
                    f"the results file holds {len(tasks)} tasks ({', '.join(tasks[:10])})",
                    file=file,
                    field="samples.task",
                    fix="set samples.task to the task the claim is about",
                )
            ]
        task = tasks[0]
    if task not in results:
        return None, [
            Problem(
                f"the results file holds no task {task!r} (tasks: {', '.join(tasks[:10])})",
                file=file,
                field="samples.task",
                value=task,
                fix="set samples.task to one of them",
            )
        ]
    return task, []


def _published_filters(res: dict, metric: str) -> dict[str, Any]:
    """The numeric values of ``metric`` a task's results publish, by filter name."""
    return {
        k.split(",", 1)[1]: v
        for k, v in res.items()
        if isinstance(k, str)
        and "," in k
        and k.split(",", 1)[0] == metric
        and isinstance(v, (int, float))
        and not isinstance(v, bool)
    }


def _results_filter(
    filters: dict[str, Any], metric: str, scoring: str | None, task: str, file: str
) -> tuple[str | None, list[Problem]]:
    """The filter of ``metric`` named by ``scoring``, else its only one (None and the problems when neither)."""
    want = scoring.partition(",")[2] if scoring and scoring.partition(",")[0] == metric and "," in scoring else scoring
    if want is None:
        if len(filters) != 1:
            return None, [
                Problem(
                    f"the results publish {metric!r} under {len(filters)} filters "
                    f"({', '.join(filters) or 'none'}) for task {task!r}",
                    file=file,
                    field="claim.settings.scoring",
                    fix="set claim.settings.scoring to the filter of the headline number"
                    if filters
                    else "check claim.metric (the metric key of the results)",
                )
            ]
        want = next(iter(filters))
    if want not in filters:
        return None, [
            Problem(
                f"the results publish no {metric},{want} for task {task!r} (filters: {', '.join(filters) or 'none'})",
                file=file,
                field="claim.settings.scoring",
                value=scoring,
                fix="name a filter the results publish, or check claim.metric",
            )
        ]
    return want, []


def results_counts(path: Path, task: str | None, metric: str, scoring: str | None) -> tuple[dict | None, list[Problem]]:
    """What a results-only claim needs from one ``results_*.json``: the task, the filter of ``metric`` (``scoring``:
    a filter name or ``<metric>,<filter>``; else the metric's only filter), its published value, n (``n-samples``
    effective, else ``sample_len``), the passes k = value × n — refused unless a whole number of items (within
    1e-6: lm-eval writes full-precision means; a metric that is not a share of items cannot be audited from counts)
    — and the run's settings (:func:`read_results`, plus the ``n-shot`` entry)."""
    file = str(path)
    try:
        data = load_results_json(path, fix="point the claim at the run's results_<date>.json")
    except InputError as exc:
        return None, list(exc.problems)
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, dict) or not results:
        return None, [
            Problem(
                "not an lm-eval results file (no 'results' object)",
                file=file,
                fix="point the claim at the run's results_<date>.json",
            )
        ]
    task, problems = _results_task(results, task, file)
    if task is None:
        return None, problems
    res = results[task]
    filters = _published_filters(res, metric)
    want, problems = _results_filter(filters, metric, scoring, task, file)
    if want is None:
        return None, problems
    value = float(filters[want])
    ns = (data.get("n-samples") or {}).get(task) if isinstance(data.get("n-samples"), dict) else None
    n = ns.get("effective") if isinstance(ns, dict) else None
    if not isinstance(n, int):
        n = res.get("sample_len")
    if not isinstance(n, int) or n < 1:
        return None, [
            Problem(
                f"the results file gives no number of documents for task {task!r} (n-samples effective, or sample_len)",
                file=file,
                fix="audit the samples (--log_samples) instead, or a results file of lm-eval >= 0.4",
            )
        ]
    k = round(value * n)
    if not (0 <= k <= n) or abs(k / n - value) > 1e-6:
        return None, [
            Problem(
                f"{metric},{want} = {value!r} is not a share of the {n} documents (k/n for no whole "
                "k): a metric that is not a mean of 0/1 scores cannot be audited from counts",
                file=file,
                fix="audit the per-sample logs (samples.format: lm-eval) instead",
            )
        ]
    st = read_results(path, task)
    nshot = (data.get("n-shot") or {}).get(task) if isinstance(data.get("n-shot"), dict) else None
    if st.get("fewshot") is None and nshot is not None:
        st["fewshot"] = nshot
    st["format"] = "lm-eval"
    return {
        "results_file": file,
        "sha256": sha256_of(path),
        "task": task,
        "filter": want,
        "metric": metric,
        "value": value,
        "passes": k,
        "n": n,
        "settings": st,
    }, []
