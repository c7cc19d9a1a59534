"""Live runs from an lm-eval task YAML: lm-eval's own loader supplies documents, prompts, targets and stop sequences.

lm-eval builds each prompt with ``task.fewshot_context`` (description, few-shot examples, ``doc_to_text``) and the
reference with ``doc_to_target``; the generation stops are ``generation_kwargs.until``. Its ``regex`` filters
(``regex_pattern``, ``group_select``) become audit regex scorers under the filter's name, so the claim can name
``strict-match`` / ``flexible-extract`` as in lm-eval's own logs; filters audit cannot reproduce exactly are
reported by name. Item ids are lm-eval's ``doc_id`` (the document's position), as in ``--log_samples`` output.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit.errors import InputError, Problem


@dataclass(frozen=True)
class LoadedTask:
    name: str
    docs: list[dict[str, Any]]
    prompts: list[str]
    targets: list[str]
    until: list[str]
    scorers: dict[str, Any]  # filter name -> audit.claim.RegexScorer
    settings: dict[str, Any]


@contextlib.contextmanager
def _cwd(path: Path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def load_task(name: str, include_path: Path | None, data_root: Path, limit: int | None, claim_file: str) -> LoadedTask:
    """Load one lm-eval task offline and render its prompts; raise InputError naming the task and the fix."""
    task, docs = _load_docs(name, include_path, data_root, claim_file)
    if limit:
        docs = docs[:limit]
    cfg = task.config
    shots, prompts, targets = _render_prompts(task, docs, name, claim_file)
    if any(not isinstance(p, str) for p in prompts):
        raise InputError(
            [
                Problem(
                    f"task {name!r} builds chat-formatted prompts; audit needs plain text here",
                    file=claim_file,
                    field="task.lm_eval",
                    fix="use a completion-style task",
                )
            ]
        )
    gk = dict(cfg.generation_kwargs or {})
    until = gk.get("until") or []
    until = [until] if isinstance(until, str) else list(until)
    scorers, problems = _filters_as_scorers(name, cfg.filter_list, cfg.metric_list, claim_file)
    if problems:
        raise InputError(problems)
    settings = {
        "lm_eval_task": name,
        "doc_to_text": cfg.doc_to_text,
        "doc_to_target": cfg.doc_to_target,
        "num_fewshot": shots,
        "generation_kwargs": gk,
        "filter_list": [f.get("name") for f in cfg.filter_list or [] if isinstance(f, dict)],
        "task_version": (cfg.metadata or {}).get("version"),
    }
    return LoadedTask(name, [dict(d) for d in docs], prompts, targets, until, scorers, settings)


def _load_docs(name: str, include_path: Path | None, data_root: Path, claim_file: str) -> tuple[Any, list]:
    """The lm-eval task ``name`` (loaded offline) and its evaluation documents; InputError when it cannot load."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from lm_eval.tasks import TaskManager, get_task_dict
    except ImportError:
        raise InputError(
            [
                Problem(
                    "task.lm_eval needs lm-eval",
                    file=claim_file,
                    field="task.lm_eval",
                    fix="pip install 'claimaudit[lmeval]'",
                )
            ]
        ) from None
    try:
        with _cwd(data_root):
            tm = TaskManager(include_path=str(include_path) if include_path else None)
            task = get_task_dict([name], tm)[name]
            docs = list(task.eval_docs)
    except Exception as exc:  # lm-eval raises many types (KeyError, ValueError, datasets errors)
        raise InputError(
            [
                Problem(
                    f"lm-eval could not load task {name!r}: {type(exc).__name__}: {exc}",
                    file=claim_file,
                    field="task.lm_eval",
                    fix="check the task name and include_path; relative data_files in the task YAML "
                    "resolve against task.lm_eval.data_root",
                )
            ]
        ) from None
    return task, docs


def _render_prompts(task: Any, docs: list, name: str, claim_file: str) -> tuple[int, list, list[str]]:
    """The task's few-shot count, rendered prompts and target texts for ``docs``; InputError when rendering fails."""
    cfg = task.config
    try:
        shots = int(cfg.num_fewshot or 0)
        prompts = [task.fewshot_context(doc, shots) for doc in docs]
        targets = []
        for doc in docs:
            t = task.doc_to_target(doc)
            if isinstance(t, int) and cfg.doc_to_choice is not None:
                t = task.doc_to_choice(doc)[t]
            targets.append(str(t[0] if isinstance(t, list) else t))
    except Exception as exc:  # lm-eval renders the task's own jinja templates: any error there is the task's
        raise InputError(
            [
                Problem(
                    f"lm-eval could not build the prompts of task {name!r}: {type(exc).__name__}: {exc}",
                    file=claim_file,
                    field="task.lm_eval",
                    fix="check the task YAML's doc_to_text / doc_to_target against its documents",
                )
            ]
        ) from None
    return shots, prompts, targets


def _filters_as_scorers(task: str, filter_list: Any, metric_list: Any, claim_file: str):
    from audit.claim import RegexScorer

    ignore_case = any(bool(m.get("ignore_case")) for m in metric_list or [] if isinstance(m, dict))
    scorers: dict[str, Any] = {}
    problems: list[Problem] = []
    for f in filter_list or []:
        if not isinstance(f, dict):
            continue
        steps = [s for s in f.get("filter") or [] if isinstance(s, dict)]
        regex = [s for s in steps if s.get("function") == "regex"]
        other = [s.get("function") for s in steps if s.get("function") not in ("regex", "take_first")]
        if other or len(regex) != 1:
            problems.append(
                Problem(
                    f"filter {f.get('name')!r} of task {task!r} uses {other or [s.get('function') for s in steps]}; "
                    "audit reproduces regex + take_first filters only",
                    file=claim_file,
                    field="task.lm_eval",
                    fix="name built-in or claim-defined scorers in perturbations.scorings instead of this filter",
                )
            )
            continue
        step = regex[0]
        pattern = step.get("regex_pattern", r"#### (\-?[0-9\.\,]+)")  # lm-eval's default
        try:
            groups = re.compile(pattern).groups
        except (re.error, TypeError) as exc:
            problems.append(
                Problem(
                    f"filter {f.get('name')!r} of task {task!r} has an invalid regex_pattern: {exc}",
                    file=claim_file,
                    field="task.lm_eval",
                    value=pattern,
                    fix="fix the regex_pattern in the task YAML",
                )
            )
            continue
        # lm-eval takes re.findall(): the first group when the pattern has groups, else the whole match.
        scorers[str(f.get("name"))] = RegexScorer(
            regex=pattern,
            group=1 if groups else 0,
            select="last" if step.get("group_select", 0) == -1 else "first",
            ignore_case=ignore_case,
        )
    return scorers, problems
