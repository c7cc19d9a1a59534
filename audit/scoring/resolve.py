"""Resolve a scoring name to a scorer: claim-defined scorers (regex, extract, evaluate, code_exec), built-ins, and
Hugging Face ``evaluate`` modules (shipped in :mod:`audit.scoring.metrics`, by local path, or by Hub name).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from audit.errors import InputError, Problem
from audit.scoring.builtin import EVALUATE_PREFIX, KINDS, SCORERS, Kind, Scorer

# ---------------------------------------------------------------------------------------------------------------
# Claim-defined scorers


def _extract(pattern: re.Pattern, select: str, group: int, output: str) -> str | None:
    matches = list(pattern.finditer(output or ""))
    if not matches:
        return None
    m = matches[0] if select == "first" else matches[-1]
    try:
        return m.group(group)
    except IndexError:
        return None


def regex_scorer(spec) -> Scorer:
    """A claim-defined scorer (``scorers:`` in the claim): extract like lm-eval's regex filter, then compare
    (:func:`audit.scoring.answers.compare`; no match scores 0)."""
    from audit.scoring.answers import compare, step_extractor

    extract = step_extractor(spec)

    def score(output: str, target: str) -> float:
        return compare(spec.compare, extract(output), target)

    score.__doc__ = (
        f"regex {spec.regex!r}, {spec.select} match, "
        + ("up to the balancing brace" if getattr(spec, "braces", False) else f"group {spec.group}")
        + f", {spec.compare} comparison"
    )
    return score


def answer_scorer(spec) -> Scorer:
    """``kind: answer``: the first extraction step that finds an answer, then the comparison."""
    from audit.scoring.answers import chain, compare, step_extractor

    extract = chain([step_extractor(st) for st in spec.steps])

    def score(output: str, target: str) -> float:
        return compare(spec.compare, extract(output), target)

    score.__doc__ = f"{len(spec.steps)} extraction step(s), then {spec.compare} comparison"
    return score


def extractor_of(name: str, defined: dict | None):
    """The answer extractor of a claim-defined scorer that extracts one (regex, ``kind: extract``, ``kind:
    answer``): ``output -> answer | None``; None for scorers that compare the whole output."""
    spec = (defined or {}).get(name)
    if spec is None:
        return None
    spec = _as_spec(name, spec)
    kind = getattr(spec, "kind", None)
    from audit.scoring.answers import chain, step_extractor

    if kind is None:
        return step_extractor(spec)
    if kind == "extract":
        pattern = re.compile(spec.regex, re.IGNORECASE if spec.ignore_case else 0)
        return lambda output: _extract(pattern, spec.select, spec.group, output)
    if kind == "answer":
        return chain([step_extractor(st) for st in spec.steps])
    return None


def logged_spec(name: str, defined: dict | None):
    """The ``kind: logged`` spec called ``name``, or None."""
    spec = (defined or {}).get(name)
    if spec is None:
        return None
    spec = _as_spec(name, spec)
    return spec if getattr(spec, "kind", None) == "logged" else None


def extract_scorer(spec) -> Scorer:
    """``kind: extract``: take the answer out of the output with a regex, then score it with a built-in scorer.

    Lets a continuous metric see only the answer (``The answer is 1234`` → ``1234`` vs ``1243``) rather than the
    whole output. No match compares the empty string (0 under every built-in unless the target is empty too).
    """
    pattern = re.compile(spec.regex, re.IGNORECASE if spec.ignore_case else 0)
    compare = SCORERS[spec.compare]

    def score(output: str, target: str) -> float:
        got = _extract(pattern, spec.select, spec.group, output)
        return compare(got or "", target or "")

    score.__doc__ = f"regex {spec.regex!r} ({spec.select} match, group {spec.group}), then {spec.compare}"
    return score


def resolve(name: str, defined: dict | None = None) -> Scorer | None:
    """The scorer called ``name``: one defined in the claim's ``scorers:`` first, else a built-in, else an
    ``evaluate:<module>`` name, else None.

    Always a callable ``(output, target) -> float``. For ``kind: code_exec`` the output is the model's completion
    and the target carries the tests (see :mod:`audit.code_exec`). Raises :class:`InputError` when the scorer
    exists but cannot be used here (code execution not enabled, an ``evaluate`` module that cannot be loaded).
    """
    if defined and name in defined:
        if logged_spec(name, defined) is not None:
            return _logged_placeholder(name)
        return _from_spec(name, defined[name])
    if name in SCORERS:
        return SCORERS[name]
    if name.startswith(EVALUATE_PREFIX):
        return evaluate_scorer(name[len(EVALUATE_PREFIX) :].strip(), scorer_name=name)
    return None


def kind_of(name: str, defined: dict | None = None) -> Kind | None:
    """Whether the scorer ``name`` is discontinuous or continuous; None when that is not known (a scoring that
    only exists in the logs, or an ``evaluate`` module that does not declare it)."""
    if defined and name in defined:
        spec = _as_spec(name, defined[name])
        kind = getattr(spec, "kind", None)
        if kind == "extract":
            return KINDS.get(spec.compare)
        if kind == "evaluate":
            return spec.continuity or _evaluate_kind(spec.module)
        if kind == "logged":
            return spec.continuity or ("discontinuous" if spec.field == "extracted" else "continuous")
        return "discontinuous"  # regex extraction + comparison, code execution pass/fail
    if name in KINDS:
        return KINDS[name]
    if name.startswith(EVALUATE_PREFIX):
        return _evaluate_kind(name[len(EVALUATE_PREFIX) :].strip())
    return None


def _as_spec(name: str, spec: Any):
    """Accept a validated spec object, or a plain mapping (validated here, as the claim file would be)."""
    if not isinstance(spec, dict):
        return spec
    from pydantic import TypeAdapter, ValidationError

    from audit.scoring.specs import RegexScorer, scorer_spec

    try:
        return TypeAdapter(scorer_spec(RegexScorer)).validate_python(spec)
    except ValidationError as err:
        raise InputError(
            [
                Problem(
                    e["msg"],
                    field=f"scorers.{name}." + ".".join(str(x) for x in e["loc"] if "[" not in str(x)),
                    fix="see `audit schema` for the scorer kinds",
                )
                for e in err.errors()
            ]
        ) from None


def _from_spec(name: str, spec: Any) -> Scorer:
    spec = _as_spec(name, spec)
    kind = getattr(spec, "kind", None)
    if kind is None:
        return regex_scorer(spec)
    if kind == "extract":
        return extract_scorer(spec)
    if kind == "evaluate":
        return evaluate_scorer(spec.module, key=spec.key, kwargs=spec.kwargs, scorer_name=name)
    if kind == "code_exec":
        from audit.code_exec import code_exec_scorer

        return code_exec_scorer(spec, name=name)
    if kind == "answer":
        return answer_scorer(spec)
    raise InputError(
        [
            Problem(
                f"unknown scorer kind {kind!r}",
                field=f"scorers.{name}.kind",
                value=kind,
                fix="use regex: (no kind), kind: extract, evaluate, code_exec, answer or logged",
            )
        ]
    )


def _logged_placeholder(name: str) -> Scorer:
    def score(output: str, target: str) -> float:  # pragma: no cover - the importers score logged kinds themselves
        raise RuntimeError(
            f"scorer {name!r} (kind: logged) reads the logged record, not (output, target): "
            "score it with audit.importers.apply_scorings"
        )

    score.__doc__ = "a score read from the logged record (kind: logged)"
    return score


# ---------------------------------------------------------------------------------------------------------------
# Hugging Face evaluate modules


def _evaluate_kind(module: str) -> Kind | None:
    from audit.scoring.metrics import KINDS as LOCAL_KINDS
    from audit.scoring.metrics import local_name

    local = local_name(module)
    return LOCAL_KINDS.get(local) if local else None


@lru_cache(maxsize=32)
def load_evaluate_module(module: str):
    """``evaluate.load`` a module: one shipped in :mod:`audit.scoring.metrics` by its name, a local folder or ``.py``
    file, or a Hub name (online only). Loaded in memory (no arrow cache files), once per process."""
    from pathlib import Path

    from audit.scoring.metrics import MODULES, path_of

    local = path_of(module)
    target = str(local) if local is not None else module
    is_path = local is not None or Path(module).exists() or module.endswith(".py") or module.startswith((".", "/"))
    try:
        import evaluate
    except ImportError:
        raise InputError(
            [
                Problem(
                    f"scorer 'evaluate:{module}' needs the Hugging Face evaluate package",
                    fix="pip install 'claimaudit[scorers]'",
                )
            ]
        ) from None
    try:
        return evaluate.load(target, keep_in_memory=True)
    except (ConnectionError, FileNotFoundError, OSError) as exc:
        if is_path:
            msg, fix = (
                f"cannot load the evaluate module at {target}: {exc}",
                (
                    "give a folder holding <name>.py (named like the folder) or the .py file itself; relative paths "
                    "resolve against the current directory"
                ),
            )
        else:
            msg = (
                f"evaluate module {module!r} is not a local path, so it would come from the Hugging Face Hub, "
                f"which needs network access (or a copy already in the evaluate cache): {exc}"
            )
            fix = (
                f"run online once to cache it, or use a local module: the ones audit ships are "
                f"{', '.join('evaluate:' + m for m in MODULES)}, or give a path to a folder with <name>.py"
            )
        raise InputError([Problem(msg, field="scorers", value=f"evaluate:{module}", fix=fix)]) from None
    except ImportError as exc:
        raise InputError(
            [
                Problem(
                    f"the evaluate module {module!r} needs a package that is not installed: {exc}",
                    field="scorers",
                    value=f"evaluate:{module}",
                    fix="pip install what the message names",
                )
            ]
        ) from None


def evaluate_scorer(
    module: str, key: str | None = None, kwargs: dict | None = None, scorer_name: str | None = None
) -> Scorer:
    """Score one (output, target) pair with a Hugging Face ``evaluate`` metric:
    ``metric.compute(predictions=[output], references=[target], **kwargs)[key]``.

    ``key`` defaults to the result key named like the metric, else the only numeric one. A module whose
    references are lists of strings (BLEU-style multi-reference) gets ``[[target]]``. The module is loaded when
    the scorer is resolved, so a module that cannot be loaded fails before any item is scored.
    """
    metric = load_evaluate_module(module)
    kwargs = dict(kwargs or {})
    name = scorer_name or f"{EVALUATE_PREFIX}{module}"
    nested = _references_are_lists(metric)

    def score(output: str, target: str) -> float:
        ref: Any = [target or ""] if nested else (target or "")
        result = metric.compute(predictions=[output or ""], references=[ref], **kwargs)
        value = _pick(result, key, metric.name, name)
        return float(value)

    score.__doc__ = f"Hugging Face evaluate module {module!r}" + (f", result key {key!r}" if key else "")
    return score


def _references_are_lists(metric) -> bool:
    feats = metric.features if not isinstance(metric.features, list) else metric.features[0]
    ref = feats.get("references") if hasattr(feats, "get") else None
    return ref is not None and type(ref).__name__ in {"Sequence", "List", "LargeList"}


def _pick(result: dict, key: str | None, metric_name: str, scorer_name: str) -> float:
    def scalar(v):
        if isinstance(v, (list, tuple)) and len(v) == 1:
            v = v[0]
        return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    if key is not None:
        if key not in result or scalar(result[key]) is None:
            raise InputError(
                [
                    Problem(
                        f"{scorer_name}: result key {key!r} is not a number in the module's output",
                        field="scorers",
                        value=key,
                        fix=f"the module returns {sorted(result)}",
                    )
                ]
            )
        return scalar(result[key])
    if metric_name in result and scalar(result[metric_name]) is not None:
        return scalar(result[metric_name])
    numeric = [k for k, v in result.items() if scalar(v) is not None]
    if len(numeric) == 1:
        return scalar(result[numeric[0]])
    raise InputError(
        [
            Problem(
                f"{scorer_name}: cannot tell which result to use; the module returns {sorted(result)}",
                field="scorers",
                fix=f"define it under scorers: with kind: evaluate and key: <one of {numeric}>",
            )
        ]
    )
