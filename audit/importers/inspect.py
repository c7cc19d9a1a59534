"""Importer for inspect_ai eval logs (``.eval`` and ``.json``), read with inspect_ai's own reader.

``inspect_ai.log.read_eval_log`` reads both formats (and every log version inspect has written), so this module
never parses the files itself. One row per sample × scorer:

* ``item_id`` — the sample's ``id``. A log with more than one epoch holds each sample several times; those repeats
  are not independent items, so the claim must pick one epoch (``samples.epoch: N``), which is then audited; without
  it such a log is refused with that fix.
* ``text`` — ``sample.output.completion`` (the last model call's text); ``target`` — the sample's target (a list of
  one is unwrapped; a list of several leaves the target unknown, so built-in re-scoring reports it).
* ``finish_reason`` — from ``sample.output.stop_reason``: ``max_tokens`` (and ``model_length``, the context window
  ran out) → ``"length"``, ``unknown`` or none → unknown, anything else (``stop``, ``tool_calls``,
  ``content_filter``) → ``"stop"``. This is direct evidence of truncation, which lm-eval's logs do not keep. An
  output without choices has no stop reason; with no text either it is no output (``no_output``: ``"no choices"``).
* ``completion_tokens`` — ``sample.output.usage.output_tokens``.
* one scoring per scorer (its name in ``sample.scores``): a number as is, a boolean as 1/0, inspect's letters
  ``C``/``I``/``P``/``N`` (``CORRECT``, ``INCORRECT``, ``PARTIAL``, ``NOANSWER``) as 1/0/0.5/0, a numeric string as its
  number; a scorer that returns a dict gives one scoring per key (``<scorer>.<key>``). The score's ``answer`` is the
  ``extracted`` answer. ``answered`` is 0 for ``N``, for a score whose ``reason`` is ``no_response`` or
  ``invalid_response_format`` or whose explanation is the pattern scorer's "Scoring pattern not matched", and, for
  a scorer that reports an answer (or says it found none) on some sample of the log, 0 where it reports none; NaN
  for scorers that never report one (they judge the whole output). So an extractor that found nothing on any sample
  is 100% no-answer, not a scorer that "does not extract".
* ``prompt_hash`` — SHA-256 of the sample's input (a budget sweep must not change it); ``doc_hash`` — of its target.

The arm's settings: the eval's task, model, model arguments, its generate config (``max_tokens``, ``temperature``,
``seed``, ``stop_seqs`` as ``stop``, ...), epochs, scorers, dataset and inspect_ai's version. A log filed under
budget B must have been generated with ``max_tokens`` B.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from audit.errors import InputError, Problem
from audit.importers.jsonl import NULL_OUTPUT
from audit.records import COLUMNS, LOG_COLUMNS

STOP_REASONS_CUT = frozenset({"max_tokens", "model_length"})
LETTERS = {"C": 1.0, "I": 0.0, "P": 0.5, "N": 0.0}
"""inspect_ai.scorer's CORRECT, INCORRECT, PARTIAL, NOANSWER and the value its ``value_to_float`` gives each."""
SUFFIXES = (".eval", ".json")
NO_CHOICES = "no choices"
"""``no_output`` of a sample whose ``output.choices`` is empty (the model call returned nothing)."""


MIN_INSPECT = (0, 3, 285)


def require_inspect() -> None:
    try:
        import inspect_ai.log  # noqa: F401
    except ImportError:
        raise InputError(
            [
                Problem(
                    "samples.format: inspect reads logs with inspect_ai, which is not installed",
                    field="samples.format",
                    fix="pip install 'claimaudit[inspect]'",
                )
            ]
        ) from None
    from importlib.metadata import version

    have = version("inspect-ai")
    parts = tuple(int(p) for p in have.split(".")[:3] if p.isdigit())
    if parts < MIN_INSPECT:
        # Older readers fail on the zstd-compressed .eval logs current inspect writes ("compression method is not
        # supported"), which would otherwise read as a broken file.
        raise InputError(
            [
                Problem(
                    f"inspect_ai {have} is too old to read current .eval logs",
                    field="samples.format",
                    value=have,
                    fix="pip install -U 'claimaudit[inspect]'  (inspect-ai >= " + ".".join(map(str, MIN_INSPECT)) + ")",
                )
            ]
        )


def finish_reason(stop_reason: Any) -> str | None:
    if not isinstance(stop_reason, str) or stop_reason == "unknown":
        return None
    return "length" if stop_reason in STOP_REASONS_CUT else "stop"


def score_values(name: str, value: Any) -> tuple[dict[str, float], str | None]:
    """A scorer's value as scoring name → number, or the reason it is not a number."""
    if isinstance(value, dict):
        out: dict[str, float] = {}
        for k, v in value.items():
            sub, why = score_values(f"{name}.{k}", v)
            if why:
                return {}, why
            out.update(sub)
        return out, None
    if isinstance(value, bool):
        return {name: float(value)}, None
    if isinstance(value, (int, float)):
        return {name: float(value)}, None
    if isinstance(value, str):
        if value in LETTERS:
            return {name: LETTERS[value]}, None
        try:
            return {name: float(value)}, None
        except ValueError:
            return {}, f"scorer {name!r} gave {value!r}, which is neither a number nor one of C/I/P/N"
    return {}, f"scorer {name!r} gave a {type(value).__name__}, not a number"


NO_ANSWER_REASONS = frozenset({"no_response", "invalid_response_format"})
"""inspect_ai's ``Score.reason`` values that say the scorer found no answer (the output was empty, or not in the
format the scorer extracts from)."""
NOT_MATCHED = "Scoring pattern not matched in output"
"""How inspect_ai's pattern scorer explains a sample where its regex found nothing (versions before Score.reason)."""


def found_no_answer(sc: Any) -> bool:
    """Whether a score says its scorer found no answer in the output: ``reason`` no_response /
    invalid_response_format, or the pattern scorer's "not matched" explanation with no answer."""
    if getattr(sc, "reason", None) in NO_ANSWER_REASONS:
        return True
    expl = getattr(sc, "explanation", None)
    return sc.answer is None and isinstance(expl, str) and expl.startswith(NOT_MATCHED)


def _sha(x: Any) -> str:
    try:
        raw = json.dumps(x, sort_keys=True, default=str)
    except (TypeError, ValueError):
        raw = repr(x)
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def _input_of(sample) -> Any:
    inp = sample.input
    if isinstance(inp, str):
        return inp
    return [m.model_dump(exclude_none=True) if hasattr(m, "model_dump") else str(m) for m in inp]


def _target_of(target: Any) -> str | None:
    if isinstance(target, str):
        return target
    if isinstance(target, list) and len(target) == 1 and isinstance(target[0], str):
        return target[0]
    return None


def settings_of(log, path: Path) -> dict[str, Any]:
    """The arm's effective settings from the eval header: task, model, generate config, epochs, scorers."""
    ev = log.eval
    cfg = ev.model_generate_config.model_dump(exclude_none=True) if ev.model_generate_config else {}
    if "stop_seqs" in cfg:
        cfg["stop"] = cfg.pop("stop_seqs")
    st: dict[str, Any] = {
        "format": "inspect",
        "task": ev.task,
        "task_version": ev.task_version,
        "model": ev.model,
        "model_args": ev.model_args or None,
        "epochs": getattr(ev.config, "epochs", None),
        "dataset": getattr(ev.dataset, "name", None),
        "scorers": [s.name for s in (ev.scorers or [])] or None,
        "inspect_ai_version": (ev.packages or {}).get("inspect_ai"),
        "log_status": log.status,
    }
    st.update({k: v for k, v in cfg.items() if not isinstance(v, (dict, list)) or k == "stop"})
    return {k: v for k, v in st.items() if v is not None}


def read_inspect(
    path: Path,
    arm: str,
    budget: int | None,
    variant: str = "default",
    epoch: int | None = None,
    cluster_field: str | None = None,
    all_epochs: bool = False,
) -> tuple[pd.DataFrame, list[Problem], dict[str, Any]]:
    """Rows (one per sample × scoring), the problems found, and the arm's settings, from one inspect log.
    ``all_epochs`` (the claim sets ``samples.reduce``): every epoch of a sample is one of its several outputs
    (column ``sample``: the epoch), reduced to one score per item by the claim's rule."""
    file = str(path)
    empty = pd.DataFrame(columns=COLUMNS)
    log, refused = _open_log(path)
    if log is None:
        return empty, refused, {}
    st = settings_of(log, path)
    samples = list(log.samples or [])
    problems: list[Problem] = []
    if log.status != "success":
        problems.append(
            Problem(
                f"the log's status is {log.status!r}: the run did not finish ({len(samples)} sample(s) logged)",
                file=file,
                fix="audit a finished run (inspect eval-retry completes an interrupted one)",
            )
        )
    if not samples:
        problems.append(
            Problem(
                "the log holds no samples",
                file=file,
                fix="point the pattern at the run's full log (not a header-only copy)",
            )
        )
        return empty, problems, st
    epochs = sorted({int(s.epoch) for s in samples})
    chosen = _samples_of_epoch(samples, epochs, epoch, all_epochs, file, st, problems)
    if chosen is None:
        return empty, problems, st
    samples = chosen
    cap = st.get("max_tokens")
    if budget is not None and isinstance(cap, int) and cap != budget:
        problems.append(
            Problem(
                f"a log filed under budget {budget} was generated with max_tokens={cap}",
                file=file,
                fix="file each log under the budget it was generated with (the key in samples.<arm> is max_tokens)",
            )
        )
    # A scorer extracts an answer when it reports one on some sample, or says on some sample that it found none
    # (an extractor that found nothing anywhere is 100% no-answer, not "does not extract").
    reports_answer = {
        name for s in samples for name, sc in (s.scores or {}).items() if sc.answer is not None or found_no_answer(sc)
    }
    rows: list[tuple] = []
    sample_of: list[int] = []
    for s in samples:
        where = f"sample {s.id!r}" + (f" (epoch {s.epoch})" if len(epochs) > 1 else "")
        got = _sample_rows(s, where, (arm, str(s.id), variant, budget), file, cluster_field, reports_answer, problems)
        rows += got
        sample_of += [int(s.epoch) - 1] * len(got)
    df = pd.DataFrame.from_records(rows, columns=LOG_COLUMNS)  # a log never says which replica served it
    if all_epochs and len(epochs) > 1:
        df["sample"] = sample_of
        st["epochs_reduced"] = len(epochs)
    return df, problems, st


def _open_log(path: Path) -> tuple[Any, list[Problem]]:
    """The inspect log read by inspect_ai, or None and why it was refused or could not be read."""
    from inspect_ai.log import read_eval_log

    file = str(path)
    if path.suffix.lower() not in SUFFIXES:
        return None, [
            Problem(
                f"an inspect log ends in .eval or .json, not {path.suffix or '(no suffix)'!r}",
                file=file,
                fix="point the pattern at the run's .eval or .json log",
            )
        ]
    # An .eval log is a zip: every member is decompressed under audit.archives' limits before inspect reads it
    # (inspect's reader decompresses a whole member at once; a bomb would exhaust memory first). A .json log is
    # checked for being a regular file (a FIFO or /proc entry would block the reader).
    from audit.archives import check_archive
    from audit.jsonlines import regular_file_problem

    refused = [p for p in [regular_file_problem(file, "the inspect log")] if p is not None]
    if not refused and path.suffix.lower() == ".eval":
        refused = check_archive(path, what="inspect log", unreadable_ok=True)
    if refused:
        return None, refused
    try:
        return read_eval_log(file), []
    except Exception as exc:  # inspect raises zip, JSON, pydantic and its own errors: all mean "unreadable"
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return None, [
            Problem(
                f"inspect_ai cannot read this log ({type(exc).__name__}: {msg[:300]})",
                file=file,
                fix="the file is truncated or not an inspect log; copy it again from the run, or re-run the evaluation",
            )
        ]


def _samples_of_epoch(
    samples: list,
    epochs: list[int],
    epoch: int | None,
    all_epochs: bool,
    file: str,
    st: dict[str, Any],
    problems: list[Problem],
) -> list | None:
    """The samples to audit, of ``epoch`` when given (None, a problem added, when no epoch can be audited)."""
    if epoch is None and len(epochs) > 1 and not all_epochs:
        problems.append(
            Problem(
                f"the log holds {len(epochs)} epochs ({epochs}) of each sample; "
                "repeats of one sample are not independent items",
                file=file,
                field="samples.epoch",
                fix=f"set samples.epoch to the epoch to audit (one of {epochs}), e.g. samples.epoch: {epochs[0]}, or "
                "samples.reduce to reduce each sample's epochs to one score (mean, any, majority, pass@k, first)",
            )
        )
        return None
    if epoch is not None:
        if epoch not in epochs:
            problems.append(
                Problem(
                    f"samples.epoch {epoch} is not in this log (epochs: {epochs})",
                    file=file,
                    field="samples.epoch",
                    value=epoch,
                    fix=f"pick one of {epochs}",
                )
            )
            return None
        samples = [s for s in samples if int(s.epoch) == epoch]
        st["epoch"] = epoch
    return samples


def _sample_rows(
    s, where: str, base: tuple, file: str, cluster_field: str | None, reports_answer: set, problems: list[Problem]
) -> list[tuple]:
    """One sample's rows, one per scoring (none, a problem added, when it ended in an error or has no scores)."""
    if s.error is not None:
        problems.append(
            Problem(
                f"{where} ended in an error: {str(getattr(s.error, 'message', s.error))[:200]}",
                file=file,
                fix="re-run the failed samples (inspect eval-retry)",
            )
        )
        return []
    out = s.output
    usage = getattr(out, "usage", None)
    tokens = getattr(usage, "output_tokens", None)
    cluster = None
    if cluster_field:
        cluster = (s.metadata or {}).get(cluster_field)
        if cluster is None:
            problems.append(
                Problem(
                    f"{where} has no metadata key {cluster_field!r}",
                    file=file,
                    field="options.cluster_field",
                    fix="give every sample the cluster key in its metadata",
                )
            )
    if not s.scores:
        problems.append(
            Problem(f"{where} has no scores", file=file, fix="score the log (inspect score) before auditing it")
        )
        return []
    text = out.completion if out is not None else None
    # ModelOutput.stop_reason is choices[0]'s: an output without choices (a failed or empty model call) has none,
    # and is no output at all — recorded as such (no_output), like a null output, never an IndexError
    choices = getattr(out, "choices", None) if out is not None else None
    stop = choices[0].stop_reason if choices else None
    no_output = (
        NULL_OUTPUT
        if out is None
        else NO_CHOICES
        if not choices and not (isinstance(text, str) and text.strip())
        else None
    )
    common = (
        text,
        _target_of(s.target),
        finish_reason(stop),
        tokens if isinstance(tokens, int) else math.nan,
        _sha(_input_of(s)),
        _sha(s.target),
        file,
        None,
    )
    rows: list[tuple] = []
    for name, sc in s.scores.items():
        values, why = score_values(name, sc.value)
        if why:
            problems.append(
                Problem(
                    f"{where}: {why}",
                    file=file,
                    field=f"scores.{name}",
                    fix="audit a scorer with numeric or C/I/P/N values",
                )
            )
            continue
        if sc.value == "N" or found_no_answer(sc):
            answered = 0.0
        elif name in reports_answer:
            answered = 0.0 if sc.answer is None else 1.0
        else:
            answered = math.nan
        for scoring, v in values.items():
            rows.append((*base, scoring, v, *common, sc.answer, cluster, answered, no_output))
    return rows
