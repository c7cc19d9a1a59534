"""The claim file: what the authors report, where the evidence is, and which perturbations to apply.

Validated with pydantic (extra="forbid") at the edge; every problem is reported at once with the YAML line, the
field path, the bad value and a did-you-mean hint (see :func:`load_claim`).
"""

from __future__ import annotations

import difflib
import glob
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from audit.bounds import RESAMPLES_MAX, RESAMPLES_MIN, SEED_MAX
from audit.check_params import CheckParams
from audit.errors import InputError, Problem
from audit.scoring.specs import RegexScorer, scorer_spec

Test = Literal["fisher", "mcnemar", "bootstrap", "ttest", "ztest", "chi2", "boschloo", "wilcoxon", "unknown"]


MAX_BUDGET = 1 << 20
"""Largest generation budget accepted (tokens); no model generates a million tokens per item."""
MAX_ITEMS = 10_000_000
"""Largest item count a reported score may give (the exact tests' cost grows with n)."""


class _Strict(BaseModel):
    # allow_inf_nan=False: .inf / .nan in a claim is a mistake (a reported delta of .inf crashed the precision parser)
    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)


class Counts(_Strict):
    """A rate given as passes out of n, e.g. ``{passes: 6, n: 89}``."""

    passes: int = Field(ge=0, description="items scored correct")
    n: int = Field(gt=0, le=MAX_ITEMS, description="items evaluated")

    @model_validator(mode="after")
    def _passes_le_n(self) -> "Counts":
        if self.passes > self.n:
            raise ValueError(f"passes ({self.passes}) exceeds n ({self.n})")
        return self

    @property
    def rate(self) -> float:
        return self.passes / self.n


class Reported(_Strict):
    """What the authors report. Every key is optional; the checks use what is there."""

    baseline: float | Counts | None = Field(None, description="baseline score: a rate in [0, 1] or {passes, n}")
    treatment: float | Counts | None = Field(None, description="treatment score: a rate in [0, 1] or {passes, n}")
    delta: float | None = Field(None, description="treatment − baseline as reported")
    n: int | None = Field(None, gt=0, le=MAX_ITEMS, description="items per arm")
    p_value: float | None = Field(None, ge=0, le=1, description="the reported p-value")
    test: Test | None = Field(None, description="the test the authors say they used")
    ci: tuple[float, float] | None = Field(None, description="the reported CI of the delta, if any")

    @field_validator("baseline", "treatment")
    @classmethod
    def _rate_in_unit(cls, v: Any) -> Any:
        if isinstance(v, float) and not 0.0 <= v <= 1.0:
            raise ValueError("a rate must lie in [0, 1]; give percentages as fractions (0.15, not 15)")
        return v

    @field_validator("ci")
    @classmethod
    def _ci_in_order(cls, v: Any) -> Any:
        if v is not None and v[0] > v[1]:
            raise ValueError(f"the CI [{v[0]}, {v[1]}] is reversed: give [low, high]")
        return v

    def counts(self, arm: str) -> Counts | None:
        """The arm's score as counts, using ``n`` and the granularity of k/n when only a rate is given."""
        v = getattr(self, arm)
        if isinstance(v, Counts):
            return v
        if isinstance(v, float) and self.n:
            k = round(v * self.n)
            return Counts(passes=k, n=self.n)
        return None

    def rate(self, arm: str) -> float | None:
        v = getattr(self, arm)
        if isinstance(v, Counts):
            return v.rate
        return v

    def delta_or_difference(self) -> float | None:
        """The reported delta, else treatment − baseline of the reported rates, else the midpoint of the reported CI;
        None when none of those is there."""
        if self.delta is not None:
            return self.delta
        b, t = self.rate("baseline"), self.rate("treatment")
        if b is not None and t is not None:
            return t - b
        if self.ci is not None:
            return (self.ci[0] + self.ci[1]) / 2.0
        return None

    def delta_source(self) -> str | None:
        """Where :meth:`delta_or_difference` comes from, in words (for findings and the report)."""
        if self.delta is not None:
            return "the reported delta"
        if self.rate("baseline") is not None and self.rate("treatment") is not None:
            return "treatment − baseline of the reported rates"
        if self.ci is not None:
            return "the midpoint of the reported CI"
        return None

    def delta_tolerance(self, places: int | None = None, ci_places: int | None = None) -> float:
        """The rounding tolerance of :meth:`delta_or_difference`: half a unit in the last reported digit of the
        number(s) it comes from; counts are exact. ``places`` / ``ci_places``: the decimals as written in the claim
        file (:func:`written_places`), else the table's precision read off the floats
        (:func:`audit.rounding.table_places`). 0 when nothing is reported."""
        from audit.rounding import half_unit, table_places

        places = places if places is not None else table_places(self.baseline, self.treatment, self.delta)
        if self.delta is not None:
            return half_unit(self.delta, places)
        b, t = self.rate("baseline"), self.rate("treatment")
        if b is not None and t is not None:
            return sum(half_unit(v, places) for v in (self.baseline, self.treatment) if isinstance(v, float))
        if self.ci is not None:
            ci_places = ci_places if ci_places is not None else table_places(*self.ci)
            return sum(half_unit(v, ci_places) for v in self.ci) / 2.0
        return 0.0


class Settings(_Strict):
    """The setting the claim was made under."""

    max_tokens: int | None = Field(
        None,
        gt=0,
        le=MAX_BUDGET,
        validation_alias=AliasChoices("max_tokens", "n_predict", "max_gen_toks"),
        description="generation budget (aliases: n_predict, max_gen_toks)",
    )
    scoring: str | None = Field(
        None, description="the scoring the headline number used (an lm-eval filter name or built-in scorer)"
    )
    temperature: float | None = Field(None, ge=0)


class ClaimInfo(_Strict):
    title: str
    metric: str = Field("exact_match", description="the headline metric key in the logs")
    direction: Literal["greater", "less"] = Field(
        "greater", description="greater: the claim is that treatment scores higher (use less for error rates)"
    )
    reported: Reported = Field(default_factory=Reported)
    settings: Settings = Field(default_factory=Settings)
    treatment_changes: list[str] = Field(
        default_factory=list,
        description="the settings the treatment is meant to change (e.g. prompt_template, model); any other "
        "difference between the arms' effective settings is flagged",
    )


class VariantLogs(_Strict):
    """Replay logs of both arms under one prompt variant (an OOD set or a perturbed prompt), keyed by budget."""

    baseline: dict[int, str | list[str]]
    treatment: dict[int, str | list[str]]

    @field_validator("baseline", "treatment")
    @classmethod
    def _budget_keys(cls, v: dict) -> dict:
        return _check_budget_keys(v)


def _check_budget_keys(v: dict) -> dict:
    bad = [b for b in v if not 1 <= b <= MAX_BUDGET]
    if bad:
        raise ValueError(
            f"logs are keyed by generation budget, a positive number of tokens (at most {MAX_BUDGET}); got {bad[0]}"
        )
    return v


REDUCTION_HELP = (
    "mean (over the samples), first, any (any-of-n correct / best-of-n), majority (self-consistency "
    "vote over the extracted answers), or pass@<k> (the unbiased estimator, Chen et al. 2021)"
)


def _check_reduction(v: str) -> str:
    import re

    if v not in ("mean", "first", "any", "majority") and not re.fullmatch(r"pass@[1-9]\d*", v):
        raise ValueError(f"unknown reduction {v!r}: use {REDUCTION_HELP}")
    return v


class PerArmReduce(_Strict):
    """How each arm's several outputs per item are reduced to one score per item."""

    baseline: str
    treatment: str

    @field_validator("baseline", "treatment")
    @classmethod
    def _known(cls, v: str) -> str:
        return _check_reduction(v)


class PerArmField(_Strict):
    """One generic key read from a different record key per arm (both arms side by side in one file)."""

    baseline: str = Field(min_length=1)
    treatment: str = Field(min_length=1)


SAMPLE_KEYS = ("id", "output", "target", "prompt", "finish_reason", "completion_tokens", "extracted")
"""The generic keys ``samples.fields`` maps (besides ``scores.<name>`` and the claim's cluster field)."""


class Samples(_Strict):
    """Replay mode: per-arm sample logs keyed by generation budget. Values are paths or globs, relative to the claim."""

    format: Literal["lm-eval", "inspect", "jsonl", "json", "csv", "parquet", "lm-eval-results"] = Field(
        "lm-eval",
        description="lm-eval (--log_samples), inspect, a generic export (jsonl, json, csv, parquet), or "
        "lm-eval-results: results_*.json files only, audited from the rates and n they publish",
    )
    task: str | None = Field(
        None, min_length=1, description="lm-eval-results: the task to read when a results file holds several"
    )
    reduce: str | PerArmReduce | None = Field(
        None,
        description="several outputs per item (an output field holding a list, repeated item ids, inspect "
        "epochs): how each item's samples become one score, for both arms or {baseline: ..., "
        "treatment: ...}: " + REDUCTION_HELP + ". The paired tests run on the per-item reduced "
        "scores",
    )
    epoch: int | None = Field(
        None,
        ge=1,
        description="inspect logs with several epochs: the epoch to audit (repeats "
        "of one sample are not independent items)",
    )
    fields: dict[str, str | PerArmField] = Field(
        default_factory=dict,
        description="generic key (id, output, target, prompt, finish_reason, completion_tokens, extracted, "
        "scores.<name>) → the record's key: a name, a dotted path (a.b.c; a number indexes a list: "
        "output.0 is the first element of a list output), or {baseline: ..., treatment: ...} when the "
        "arms sit side by side in one record. Unmapped keys are read under their own name",
    )
    target_regex: str | None = Field(
        None,
        description="the reference answer inside a longer target: the last match of this regex in each "
        "target (its first group, else the whole match), e.g. '####\\s*(.+?)\\s*$' for a GSM8K "
        "worked solution ending in '#### 42'. A target it does not match is an error",
    )
    baseline: dict[int, str | list[str]]
    treatment: dict[int, str | list[str]]
    variants: dict[str, VariantLogs] = Field(
        default_factory=dict, description="more prompt variants (OOD sets, perturbed prompts) by name"
    )

    @field_validator("target_regex")
    @classmethod
    def _target_regex_compiles(cls, v: str | None) -> str | None:
        import re

        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return v

    @field_validator("baseline", "treatment")
    @classmethod
    def _budget_keys(cls, v: dict) -> dict:
        return _check_budget_keys(v)

    @field_validator("reduce")
    @classmethod
    def _reduce_rule(cls, v: Any) -> Any:
        return _check_reduction(v) if isinstance(v, str) else v

    def reduction(self, arm: str) -> str | None:
        """The arm's reduction rule (None: one output per item)."""
        if self.reduce is None or isinstance(self.reduce, str):
            return self.reduce
        return getattr(self.reduce, arm)

    @field_validator("fields")
    @classmethod
    def _mapped_keys(cls, v: dict) -> dict:
        for key, path in v.items():
            if key.startswith("scores.") and len(key) > len("scores."):
                continue
            if key not in SAMPLE_KEYS and key != "cluster":
                close = difflib.get_close_matches(key, [*SAMPLE_KEYS, "scores.<name>"], n=1)
                raise ValueError(
                    f"unknown generic key {key!r}"
                    + (f"; did you mean {close[0]!r}?" if close else "")
                    + f" (keys: {', '.join(SAMPLE_KEYS)}, scores.<name>, cluster)"
                )
            if isinstance(path, str) and not path:
                raise ValueError(f"fields.{key}: the record key is empty")
        return v

    @model_validator(mode="after")
    def _fields_need_generic_format(self) -> "Samples":
        if self.fields and self.format in ("lm-eval", "inspect", "lm-eval-results"):
            raise ValueError(
                f"samples.fields maps the keys of a generic export; {self.format} logs have a fixed "
                "shape. Set samples.format: jsonl, json, csv or parquet, or remove fields"
            )
        if self.task is not None and self.format != "lm-eval-results":
            raise ValueError(
                "samples.task names the task of lm-eval results files; set samples.format: "
                "lm-eval-results or remove it (lm-eval samples files name their task)"
            )
        if self.epoch is not None and self.format != "inspect":
            raise ValueError("samples.epoch picks an epoch of inspect logs; set samples.format: inspect or remove it")
        if self.epoch is not None and self.reduce is not None:
            raise ValueError("give samples.epoch (audit one epoch) or samples.reduce (reduce the epochs), not both")
        if self.reduce is not None and self.format in ("lm-eval", "lm-eval-results"):
            raise ValueError(
                f"samples.reduce reduces several outputs per item; {self.format} logs hold one score per "
                "document (lm-eval aggregates its repeats itself)"
            )
        return self

    @model_validator(mode="after")
    def _same_budgets(self) -> "Samples":
        if set(self.baseline) != set(self.treatment):
            raise ValueError(
                f"baseline budgets {sorted(self.baseline)} and treatment budgets {sorted(self.treatment)} differ; "
                "give logs for the same budgets in both arms"
            )
        return self


class Perturbations(_Strict):
    scorings: list[str] = Field(
        default_factory=list, description="re-score both arms under each (lm-eval filter names or built-in scorers)"
    )
    max_tokens: list[int] = Field(
        default_factory=list,
        validation_alias=AliasChoices("max_tokens", "n_predict", "max_gen_toks"),
        description="live mode: the budget sweep (the claimed budget is always included)",
    )
    ood: "Ood | None" = Field(None, description="out-of-distribution prompt variants")
    higher_is_better: dict[str, bool] = Field(
        default_factory=dict,
        description="polarity of a scoring, by name (true: higher is better). Needed only where audit cannot tell: "
        "built-in scorers, evaluate modules and lm-eval filters of the claimed metric are known; a score "
        "carried in the logs under another name is read in the claimed metric's direction unless set here",
    )

    @field_validator("max_tokens")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if any(b < 1 for b in v):
            raise ValueError("every budget must be a positive number of tokens")
        return v

    @field_validator("max_tokens")
    @classmethod
    def _bounded(cls, v: list[int]) -> list[int]:
        if any(b > MAX_BUDGET for b in v):
            raise ValueError(f"a budget of more than {MAX_BUDGET} tokens")
        return v


class OodSet(_Strict):
    """A user-supplied out-of-distribution variant: a second dataset, or per-item rewrites joined by id."""

    name: str
    dataset: str | None = Field(None, description="JSONL items of a second dataset (same fields as task.dataset)")
    rewrites: str | None = Field(None, description="JSONL of {id, <fields to replace>} rewriting the task's own items")
    prompt: str | None = Field(None, description="jinja2 prompt template for this variant (default: the arm's)")

    @model_validator(mode="after")
    def _one_source(self) -> "OodSet":
        if (self.dataset is None) == (self.rewrites is None) and self.prompt is None:
            raise ValueError("give exactly one of dataset or rewrites (or a prompt template)")
        return self


class Ood(_Strict):
    """Out-of-distribution prompts (live mode): user-supplied sets and built-in seeded prompt perturbations."""

    sets: list[OodSet] = Field(default_factory=list)
    builtin: list[str] = Field(
        default_factory=list,
        description="built-in prompt perturbations: separator, casing, "
        "spacing, field_names, typos, contractions, whitespace, fewshot_order",
    )
    seed: int = Field(0, ge=0, lt=2**63, description="seeds every built-in perturbation")
    question: Literal["holds_everywhere", "find_breaks"] = Field(
        "holds_everywhere",
        description="holds_everywhere: the gain must survive every variant (intersection–union, no adjustment); "
        "find_breaks: which variants break it, Holm-adjusted",
    )


class Probes(_Strict):
    """Per-item probe scores and labels, in-distribution and OOD (CSV or JSONL by file suffix)."""

    in_distribution: str = Field(description="file with one row per item: id, score, label (0/1)")
    ood: dict[str, str] = Field(description="OOD sets by name → file of the same shape")
    claimed_auc: float | None = Field(None, ge=0, le=1, description="the in-distribution AUC the authors report")
    id_column: str = "id"
    score_column: str = "score"
    label_column: str = "label"


class Arm(_Strict):
    """Live mode: where one arm's generations come from."""

    model: str = Field("gemma-3-270m", description="model name sent to the server")
    endpoint: str = Field("embedded", description="'embedded' (llama.cpp in-process) or an OpenAI-compatible base URL")
    api: Literal["completions", "chat"] = "completions"
    replicas: list[str] = Field(default_factory=list, description="more base URLs serving the same model")
    api_key_env: str | None = Field(None, description="NAME of the environment variable holding the API key")
    system_prompt: str | None = Field(None, description="chat only: the system message")
    prompt: str | None = Field(None, description="jinja2 template overriding task.prompt for this arm")
    lm_eval_task: str | None = Field(
        None, description="with task.lm_eval: this arm's lm-eval task (its prompt variant)"
    )
    max_concurrency: int = Field(4, ge=1, le=1024, description="concurrent requests per base URL")
    timeout_s: float = Field(
        120.0, gt=0, le=86_400, description="total time one request may take (a deadline, not a per-read timeout)"
    )
    max_retries: int = Field(4, ge=0, le=100)
    model_path: str | None = Field(None, description="embedded only: a GGUF file instead of the packaged Gemma 3 270M")
    n_threads: int | None = Field(None, ge=1, le=1024, description="embedded only: CPU threads")
    n_batch: int | None = Field(
        None,
        ge=1,
        le=1 << 20,
        description="embedded only: prompt batch size; 1 makes greedy outputs match a llama.cpp"
        " server started with --n_batch 1 exactly (batching changes the float rounding)",
    )


class LmEvalTask(_Strict):
    """Prompts, targets, stop sequences and regex filters taken from an lm-eval task YAML (lm-eval's own loader)."""

    task: str = Field(description="the task name (arms.<arm>.lm_eval_task overrides it per arm)")
    include_path: str | None = Field(None, description="folder of task YAMLs, relative to the claim")
    data_root: str = Field(
        ".",
        description="folder the task YAML's relative data_files resolve against, relative "
        "to the claim (lm-eval itself resolves them against the working directory)",
    )


class Task(_Strict):
    """Live mode: the items, the prompt and the target (or an lm-eval task that supplies them)."""

    dataset: str | None = Field(None, description="JSONL file of items (relative to the claim), one object per line")
    id_field: str = Field("id", description="the key of each row that identifies the item")
    prompt: str | None = Field(
        None, description="jinja2 template of the prompt (StrictUndefined: a missing field is an error)"
    )
    lm_eval: LmEvalTask | None = Field(None, description="instead of dataset/prompt/target: an lm-eval task")

    @model_validator(mode="after")
    def _one_source(self) -> "Task":
        if self.lm_eval is None and (self.dataset is None or self.prompt is None):
            raise ValueError("give dataset and prompt, or lm_eval: {task: ..., include_path: ...}")
        if self.lm_eval is not None and (self.dataset is not None or self.prompt is not None):
            raise ValueError("give either dataset/prompt or lm_eval, not both")
        return self

    target: str = Field("{{ answer }}", description="jinja2 template of the reference answer")
    stop: list[str] = Field(default_factory=list, description="stop sequences")
    temperature: float = Field(0.0, ge=0.0, le=100.0, description="0 = greedy; a budget sweep then costs one run")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    seed: int | None = Field(0, ge=0, lt=2**63, description="sampling seed sent to the server")
    limit: int | None = Field(None, ge=1, description="use only the first N items")
    sweep_check: int = Field(
        3, ge=0, le=100_000, description="items per arm re-run at each smaller budget to verify the one-run sweep"
    )


Perturbations.model_rebuild()


class Sequential(_Strict):
    """A sequential audit (`audit.stopping`): live, items are generated batch by batch in a seeded random order and
    generation stops once every decision the verdict needs is settled by anytime-valid tests; replayed, the report
    says after how many items a live re-run would have stopped."""

    batch: int = Field(50, ge=1, le=1_000_000, description="items per look (the default variant's items)")
    n_max: int | None = Field(
        None, ge=1, description="the most items to generate (default: every item of the task; more resumes a stop)"
    )


class Options(_Strict):
    """Statistical options; every one is recorded in the report."""

    seed: int = Field(0, ge=0, le=SEED_MAX, description="seeds every resampling")
    resamples: int = Field(
        10_000,
        ge=RESAMPLES_MIN,
        le=RESAMPLES_MAX,
        description="bootstrap resamples (at least 1000; the bootstrap CIs are shown beside the "
        "decision intervals, no verdict rests on them)",
    )
    level: float = Field(0.95, gt=0.5, lt=1.0, description="confidence level of every interval; must equal 1 − alpha")
    alpha: float = Field(0.05, gt=0.0, lt=0.5, description="significance level of every test (two-sided)")
    power: float = Field(0.8, gt=0.5, lt=1.0)
    margin: float | None = Field(
        None,
        gt=0,
        description="materiality margin in metric units: a perturbation makes the claim fragile only "
        "when it is shown to shrink the gain by more than this, and 'holds' is shown by an "
        "equivalence test (TOST) within ±margin. Default: half the reported delta, or half "
        "the measured delta when none is reported",
    )

    @model_validator(mode="before")
    @classmethod
    def _level_is_one_minus_alpha(cls, data: Any) -> Any:
        # A decision's p-value and the interval shown beside it must never disagree: the interval inverts the test,
        # so its level is 1 − alpha. Either may be given; both must agree.
        if not isinstance(data, dict):
            return data
        level, alpha = data.get("level"), data.get("alpha")
        num = (int, float)
        if (
            isinstance(level, num)
            and isinstance(alpha, num)
            and not isinstance(level, bool)
            and not isinstance(alpha, bool)
        ):
            if abs(level + alpha - 1.0) > 1e-9:
                raise ValueError(
                    f"level {level} and alpha {alpha} disagree: every interval inverts its test, so "
                    f"level must be 1 − alpha (give one of them, e.g. alpha: {alpha})"
                )
        elif isinstance(level, num) and alpha is None and not isinstance(level, bool):
            data = {**data, "alpha": round(1.0 - level, 12)}
        elif isinstance(alpha, num) and level is None and not isinstance(alpha, bool):
            data = {**data, "level": round(1.0 - alpha, 12)}
        return data

    cluster_field: str | None = Field(
        None,
        description="the item field that groups items sharing a passage or template (lm-eval: a key of the "
        "logged doc; jsonl: a top-level key; live: a dataset field); deltas then use cluster-robust "
        "standard errors (Liang–Zeger, Miller 2024) instead of treating items as independent",
    )
    score_bounds: tuple[float, float] | None = Field(
        None,
        description="the range every score of the claimed metric lies in, e.g. [0, 100] for chrF or BLEU "
        "(default: [0, 1], the range of every scorer the audit computes, widened to the observed "
        "scores). Continuous scores too skewed for their number are also tested with a betting "
        "test for a bounded mean, which needs the range; a score outside it is an error",
    )

    sequential: Sequential | None = Field(
        None,
        description="stop a live audit once its verdict is settled (anytime-valid tests after each batch of items); "
        "on replayed logs, say after how many items a live re-run would have stopped. {} for the defaults",
    )

    @field_validator("score_bounds")
    @classmethod
    def _bounds_in_order(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not (math.isfinite(v[0]) and math.isfinite(v[1]) and v[0] < v[1]):
            raise ValueError(f"score_bounds {list(v)}: need two finite numbers, the lower first, e.g. [0, 1]")
        return v


class Claim(_Strict):
    claim: ClaimInfo
    samples: Samples | None = None
    arms: dict[Literal["baseline", "treatment"], Arm] | None = Field(None, description="live mode: the two arms")
    task: Task | None = Field(None, description="live mode: items, prompt, target")
    scorers: dict[str, scorer_spec(RegexScorer)] = Field(  # type: ignore[valid-type]  # a runtime-built Union
        default_factory=dict,
        description="scorers usable as scorings: regex (no kind:), or kind: extract | evaluate | code_exec",
    )
    probes: Probes | None = Field(None, description="probe AUCs in-distribution vs OOD")
    perturbations: Perturbations = Field(default_factory=Perturbations)
    options: Options = Field(default_factory=Options)
    checks: CheckParams = Field(
        default_factory=CheckParams, description="per-check parameters, by check name (`audit checks` lists them)"
    )

    # Not part of the file: where it was read from (relative paths resolve against its folder).
    path: Path | None = Field(None, exclude=True)
    # Not part of the file: a results-only claim (samples.format: lm-eval-results) as read, per arm: the results
    # file, task, filter, metric, published value, the counts derived from it, n, and the run's settings.
    results_only: dict[str, Any] | None = Field(None, exclude=True)

    @field_serializer("checks")
    def _checks_as_written(self, checks: CheckParams) -> dict[str, Any]:
        # The parameters the claim sets, not every default of every check.
        return checks.model_dump(mode="json", exclude_unset=True)

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path else Path.cwd()

    @property
    def live(self) -> bool:
        return self.task is not None

    @property
    def claimed_budget(self) -> int | None:
        if self.claim.settings.max_tokens is not None:
            return self.claim.settings.max_tokens
        if self.samples and len(self.samples.baseline) == 1:
            return next(iter(self.samples.baseline))
        if self.live and len(self.perturbations.max_tokens) == 1:
            return self.perturbations.max_tokens[0]
        return None

    def budgets(self) -> list[int]:
        """Live mode: every budget to generate at (the sweep plus the claimed one), ascending."""
        out = set(self.perturbations.max_tokens)
        if self.claim.settings.max_tokens is not None:
            out.add(self.claim.settings.max_tokens)
        return sorted(out)

    def arm(self, name: str) -> "Arm":
        return (self.arms or {}).get(name) or Arm()  # type: ignore[call-overload]  # any str looks up; not an arm: Arm()

    @model_validator(mode="after")
    def _lmeval_scoring_names(self) -> "Claim":
        # lm-eval names a number "<metric>,<filter>" (its results keys, e.g. exact_match,strict-match); a scoring
        # of the logs is the filter, under the claim's one metric. Generic logs may use commas in their own names.
        if self.samples is not None and self.samples.format != "lm-eval":
            return self
        metric = self.claim.metric
        bad: list[str] = []

        def filter_of(name: str, where: str) -> str:
            if not isinstance(name, str) or "," not in name or name in self.scorers:
                return name
            m, _, f = name.partition(",")
            if m.strip() == metric and f.strip() and "," not in f:
                return f.strip()
            bad.append(
                f"{where}: {name!r} names the lm-eval metric {m.strip()!r}, but claim.metric is {metric!r}"
                if f.strip() and "," not in f
                else f"{where}: {name!r} is not an lm-eval '<metric>,<filter>' name"
            )
            return name

        st = self.claim.settings
        st.scoring = filter_of(st.scoring, "claim.settings.scoring") if st.scoring is not None else None
        pert = self.perturbations
        pert.scorings = [filter_of(n, f"perturbations.scorings[{i}]") for i, n in enumerate(pert.scorings)]
        pert.higher_is_better = {
            filter_of(k, f"perturbations.higher_is_better.{k}"): v for k, v in pert.higher_is_better.items()
        }
        if bad:
            raise ValueError(
                "; ".join(bad) + f". A scoring of lm-eval logs is a filter name (strict-match), or "
                f"'{metric},<filter>' for the claim's metric; audit one metric per claim (set "
                "claim.metric to audit another)"
            )
        return self

    @model_validator(mode="after")
    def _metric_is_not_a_perturbation(self) -> "Claim":
        # Without claim.settings.scoring the first perturbation scoring is the claimed one (`scorings`): with
        # `metric: toy` and `scorings: [starts-with]`, starts-with would silently replace the logged toy scores as
        # the claim. Exempt: lm-eval logs, where the metric is read under every scoring (a filter), so it is never one
        # of them and the first filter as the claimed one is the documented default; and the default metric
        # (exact_match), which claims write as a label of the headline number — when the logs do carry it as a score,
        # audit.importers.load_records says so (claimed_scoring_problem).
        if not _perturbation_claimed(self) or self.claim.metric == ClaimInfo.model_fields["metric"].default:
            return self
        raise _located_error(
            ("perturbations", "scorings", 0), self.perturbations.scorings[0], *claimed_scoring_message(self)
        )

    def scorings(self) -> list[str]:
        """The claimed scoring first, then every perturbation scoring, without repeats."""
        out: list[str] = []
        for s in [self.claim.settings.scoring, *self.perturbations.scorings]:
            if s and s not in out:
                out.append(s)
        return out


def _perturbation_claimed(claim: Claim) -> bool:
    """Whether a perturbation scoring, not the explicitly set claim.metric, would be the claimed scoring of logs."""
    pert, metric = claim.perturbations.scorings, claim.claim.metric
    return (
        claim.samples is not None
        and claim.samples.format not in ("lm-eval", "lm-eval-results")
        and claim.claim.settings.scoring is None
        and bool(pert)
        and "metric" in claim.claim.model_fields_set
        and metric != pert[0]
    )


def claimed_scoring_message(claim: Claim) -> tuple[str, str]:
    """(message, fix) when the first perturbation scoring would silently replace claim.metric as the claimed one."""
    first, metric = claim.perturbations.scorings[0], claim.claim.metric
    return (
        f"claim.metric is {metric!r} but claim.settings.scoring is not set, so the first of "
        f"perturbations.scorings, {first!r}, would silently become the claimed scoring in place of {metric!r}",
        f"set claim.settings.scoring to the claimed scoring, e.g. `scoring: {metric}` for the logged scores, and "
        f"keep {first} as a perturbation",
    )


def claimed_scoring_problem(claim: Claim, logged: Callable[[str], bool]) -> Problem | None:
    """The claimed-scoring trap when claim.metric names a scoring the logs carry (``logged(name)``), else None."""
    if not _perturbation_claimed(claim) or not logged(claim.claim.metric):
        return None
    message, fix = claimed_scoring_message(claim)
    return Problem(
        message + f" (the logs carry {claim.claim.metric} as a score)",
        file=str(claim.path),
        line=line_of(claim, ("perturbations", "scorings", 0)),
        field="perturbations.scorings[0]",
        value=claim.perturbations.scorings[0],
        fix=fix,
    )


def _located_error(loc: tuple, value: Any, message: str, fix: str) -> ValidationError:
    """A model validator's error located at ``loc`` below the model, so it is reported with that field's line."""
    from pydantic_core import InitErrorDetails, PydanticCustomError

    # The message goes in as context (a brace in a name must not be read as a placeholder); the fix too, for _fix_for.
    err = PydanticCustomError("value_error", "{message}", {"message": message, "fix": fix})
    return ValidationError.from_exception_data("Claim", [InitErrorDetails(type=err, loc=loc, input=value)])


# ---------------------------------------------------------------------------------------------------------------
# Loading with located errors


MAX_CLAIM_BYTES = 4 << 20
"""A claim file is a few KB of YAML; anything past 4 MiB is the wrong file."""
MAX_YAML_DEPTH = 64
"""Deepest nesting a claim may have (the deepest real claim has 6 levels): deeper documents are refused before
they are built, so neither the YAML composer nor validation can hit Python's recursion limit."""
MAX_YAML_NODES = 100_000
"""Most values a claim may hold once its aliases are expanded: a "billion laughs" document of a few hundred bytes
expands to billions of values, and is refused before anything walks or validates the expanded tree."""
MAX_NUMBER_DIGITS = 1000


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps the anchors of the document (the composer forgets them) for error messages."""

    def compose_document(self):  # noqa: D102 - PyYAML's own method, with the anchors kept
        self.get_event()
        node = self.compose_node(None, None)
        self.get_event()
        self.kept_anchors = self.anchors
        self.anchors = {}
        return node


def _yaml_error(exc: yaml.YAMLError, file: str, text: str) -> Problem:
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark else None
    if isinstance(exc, yaml.reader.ReaderError):  # a character YAML does not allow (a control byte)
        pos = exc.position
        col = pos - (text.rfind("\n", 0, pos) + 1) + 1
        char = chr(exc.character) if isinstance(exc.character, int) else exc.character
        return Problem(
            f"YAML does not allow the character {char!r} (column {col})",
            file=file,
            line=text.count("\n", 0, pos) + 1,
            fix="remove the control character; write it as an escape in a double-quoted string if it is really wanted",
        )
    what = getattr(exc, "problem", None) or str(exc)
    ctx = getattr(exc, "context", None)
    msg = f"YAML syntax error: {what}" + (f" ({ctx})" if ctx else "")
    return Problem(msg, file=file, line=line, fix="check indentation and quoting on this line and the one before it")


def _check_events(text: str, file: str) -> None:
    """Refuse a document nested deeper than MAX_YAML_DEPTH, from the event stream (which PyYAML produces without
    recursion), before the recursive composer sees it."""
    depth = 0
    for ev in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(ev, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                raise InputError(
                    [
                        Problem(
                            f"the YAML is nested more than {MAX_YAML_DEPTH} levels deep",
                            file=file,
                            line=ev.start_mark.line + 1 if ev.start_mark is not None else None,
                            fix="a claim file is a few levels of keys; check the file is the claim",
                        )
                    ]
                )
        elif isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [x for kv in node.value for x in kv]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _expansion(root: yaml.Node) -> dict[int, tuple[int, int]]:
    """(values, depth) of every node once aliases are expanded, computed on the alias graph in linear time
    (memoised, iterative); raises ``ValueError`` naming the node when an alias refers to its own ancestor."""
    done: dict[int, tuple[int, int]] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        nid = id(node)
        if expanded:
            kids = _children(node)
            size = 1 + sum(done[id(k)][0] for k in kids)
            depth = 1 + max((done[id(k)][1] for k in kids), default=0)
            done[nid] = (min(size, 1 << 62), depth)
            on_path.discard(nid)
            continue
        if nid in done:
            continue
        if nid in on_path:
            raise ValueError(node)
        on_path.add(nid)
        stack.append((node, True))
        for k in _children(node):
            if id(k) in on_path:
                raise ValueError(k)
            if id(k) not in done:
                stack.append((k, False))
    return done


def _compose(text: str, file: str) -> tuple[Any, dict[tuple, int], list[Problem]]:
    """Parse the YAML under bounds; return the data, the line map and the duplicate-key problems."""
    _check_events(text, file)
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        anchors = getattr(loader, "kept_anchors", {})
        if root is None:
            return None, {}, []
        try:
            sizes = _expansion(root)
        except ValueError as exc:
            node = exc.args[0]
            name = next((a for a, n in anchors.items() if n is node), None)
            raise InputError(
                [
                    Problem(
                        "a YAML alias refers to the value that contains it (a recursive structure)"
                        + (f": anchor &{name}" if name else ""),
                        file=file,
                        line=node.start_mark.line + 1,
                        fix="claims never need recursive aliases; write the value out",
                    )
                ]
            ) from None
        total, depth = sizes[id(root)]
        if total > MAX_YAML_NODES or depth > MAX_YAML_DEPTH:
            worst = max(anchors.items(), key=lambda kv: sizes.get(id(kv[1]), (0, 0)), default=None)
            where = f"; the largest is anchor &{worst[0]}" if worst else ""
            what = (
                f"more than {MAX_YAML_NODES:,} values"
                if total > MAX_YAML_NODES
                else f"more than {MAX_YAML_DEPTH} levels deep"
            )
            raise InputError(
                [
                    Problem(
                        f"the YAML aliases (*name) expand to {what}{where} (a 'billion laughs' document?)",
                        file=file,
                        line=worst[1].start_mark.line + 1 if worst else None,
                        fix="write the values out instead of nesting aliases; a claim is a few dozen values",
                    )
                ]
            )
        lines, problems = _line_map_of(root, file)
        if problems and any(p.message.startswith("a number with more") for p in problems):
            raise InputError([p for p in problems if p.message.startswith("a number with more")])
        data = loader.construct_document(root)
    finally:
        loader.dispose()
    return data, lines, problems


def _key_of(k: yaml.Node) -> Any:
    key: Any = k.value if isinstance(k, yaml.ScalarNode) else None
    if isinstance(k, yaml.ScalarNode) and k.tag.endswith(":int"):
        try:
            key = int(k.value.replace("_", ""), 0) if k.value[:2].lower() in ("0x", "0o", "0b") else int(k.value)
        except ValueError:
            pass
    return key


def _line_map_of(root: yaml.Node, file: str) -> tuple[dict[tuple, int], list[Problem]]:
    """Map each field path (tuple of keys / indices) to its 1-based line; also the duplicate keys and overlong
    numbers found on the way. A node reached again through an alias is not walked again: a path inside an alias
    maps to the line of the key that uses the alias."""
    lines: dict[tuple, int] = {}
    problems: list[Problem] = []
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, tuple]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        lines.setdefault(path, node.start_mark.line + 1)
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            if node.tag.endswith((":int", ":float")) and len(node.value) > MAX_NUMBER_DIGITS:
                problems.append(
                    Problem(
                        f"a number with more than {MAX_NUMBER_DIGITS} digits",
                        file=file,
                        line=node.start_mark.line + 1,
                        field=".".join(map(str, path)) or None,
                        fix="give a number of sensible size",
                    )
                )
        elif isinstance(node, yaml.MappingNode):
            first: dict[Any, int] = {}
            for k, v in node.value:
                if k.tag == "tag:yaml.org,2002:merge":
                    stack.append((v, path))
                    continue
                key = _key_of(k)
                line = k.start_mark.line + 1
                if isinstance(key, (str, int)):
                    if key in first:
                        problems.append(
                            Problem(
                                f"duplicate key {key!r} (lines {first[key]} and {line}): YAML would silently keep only "
                                f"the value on line {line}",
                                file=file,
                                line=line,
                                field=".".join(str(x) for x in path + (key,)),
                                fix=f"remove one of the two (line {first[key]} or line {line})",
                            )
                        )
                    else:
                        first[key] = line
                lines[path + (key,)] = line
                stack.append((v, path + (key,)))
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                stack.append((v, path + (i,)))
    return lines, problems


def _fields_of(model: type[BaseModel], path: tuple) -> list[str]:
    """The allowed keys at ``path`` inside ``model`` (for did-you-mean hints)."""
    current: Any = model
    for key in path:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        f = current.model_fields.get(key) if isinstance(key, str) else None
        if f is None:
            return []
        ann = f.annotation
        current = next(
            (a for a in getattr(ann, "__args__", (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)), ann
        )
    if isinstance(current, type) and issubclass(current, BaseModel):
        names = []
        for name, f in current.model_fields.items():
            if name == "path":
                continue
            names.append(name)
            va = f.validation_alias
            if isinstance(va, AliasChoices):
                names.extend(c for c in va.choices if isinstance(c, str))
        return names
    return []


def _problems_from_validation(
    err: ValidationError, file: str, lines: dict[tuple, int], root: type[BaseModel] | None = None
) -> list[Problem]:
    problems = []
    for e in err.errors():
        loc = tuple(
            x for x in e["loc"] if not (isinstance(x, str) and x in {"float", "Counts", "str", "list[str]", "int"})
        )
        # Pydantic adds union member names to locations; keep only real keys.
        loc = tuple(x for x in loc if not (isinstance(x, str) and ("[" in x or x.startswith("function-"))))
        line = None
        for cut in range(len(loc), -1, -1):
            if loc[:cut] in lines:
                line = lines[loc[:cut]]
                break
        field_path = ".".join(str(x) for x in loc) or "<top level>"
        fix = None
        kind = e["type"]
        if kind == "extra_forbidden":
            allowed = _fields_of(root or Claim, loc[:-1])
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            fix = (f"did you mean '{close[0]}'? " if close else "") + (
                f"allowed keys here: {', '.join(sorted(allowed))}" if allowed else "remove this key"
            )
            msg = "unknown check" if len(loc) == 2 and loc[0] == "checks" else "unknown key"
            value = None
        elif kind == "missing":
            msg = "required key is missing"
            fix = f"add '{loc[-1]}'" if loc else None
            value = None
        else:
            msg = e["msg"].removeprefix("Value error, ")
            value = e.get("input")
            if isinstance(value, (dict, list)):
                value = None
            fix = _fix_for(kind, e.get("ctx") or {})
        problems.append(Problem(message=msg, file=file, line=line, field=field_path, value=value, fix=fix))
    # Unions report one error per member; collapse exact repeats.
    seen, unique = set(), []
    for p in problems:
        k = (p.line, p.field, p.message)
        if k not in seen:
            seen.add(k)
            unique.append(p)
    return unique


def _fix_for(kind: str, ctx: dict) -> str:
    """The fix line of a validation error, by pydantic's error type (the message already states the rule); a
    validator's own fix when it gives one (:func:`_located_error`)."""
    if isinstance(ctx.get("fix"), str):
        return ctx["fix"]
    bounds = {
        "greater_than": "more than {gt}",
        "greater_than_equal": "at least {ge}",
        "less_than": "less than {lt}",
        "less_than_equal": "at most {le}",
    }
    if kind in bounds:
        try:
            return "give a value " + bounds[kind].format(**ctx)
        except (KeyError, IndexError):
            return "give a value within the bounds above"
    if kind == "finite_number":
        return "give a finite number (.inf and .nan are not values a claim can use)"
    if kind.startswith(("int_", "float_")) or kind in ("int_from_float",):
        return "give a " + ("whole number" if kind.startswith("int") else "number") + ", without quotes"
    if kind.startswith("bool_"):
        return "use true or false"
    if kind.startswith("string_"):
        return "give text (quote it if YAML reads it as something else)"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "give a mapping (key: value lines) here"
    if kind in ("list_type", "tuple_type", "too_short", "too_long"):
        return "give a list like [a, b]" + (" of the right length" if kind.startswith("too_") else "")
    if kind in ("literal_error", "enum", "union_tag_invalid", "unknown_scorer_kind"):
        return "use one of the values named in the message"
    return "correct the value as the message says (see `audit schema` for every field)"


def load_claim(path: str | Path, check_files: bool = True) -> Claim:
    """Read and validate a claim file; raise :class:`InputError` listing every problem found.

    The file must be UTF-8 (a byte-order mark is dropped; UTF-16, Latin-1 and binary files are refused with the
    line of the first bad byte) and YAML within bounds (:data:`MAX_CLAIM_BYTES`, :data:`MAX_YAML_DEPTH`,
    :data:`MAX_YAML_NODES` after alias expansion); a key given twice in one mapping is an error naming both lines.
    """
    from audit.jsonlines import read_text

    path = Path(path)
    file = str(path)
    text = read_text(path, "claim file", max_bytes=MAX_CLAIM_BYTES)
    try:
        data, lines, problems = _compose(text, file)
    except yaml.YAMLError as exc:
        raise InputError([_yaml_error(exc, file, text)]) from None
    except (ValueError, OverflowError) as exc:  # a value the YAML constructor cannot build (e.g. a bad date)
        raise InputError(
            [
                Problem(
                    f"YAML value cannot be read: {exc}",
                    file=file,
                    fix="check the values' syntax; quote a value meant as text",
                )
            ]
        ) from None
    if not isinstance(data, dict):
        raise InputError(
            problems
            + [
                Problem(
                    "a claim file must be a YAML mapping with a 'claim:' section",
                    file=file,
                    line=1,
                    fix="see `audit schema` or the README for the format",
                )
            ]
        )
    try:
        claim = Claim.model_validate(data)
    except ValidationError as err:
        raise InputError(problems + _problems_from_validation(err, file, lines)) from None
    claim = claim.model_copy(update={"path": path.resolve()})
    problems += _semantic_problems(claim, file, lines, check_files)
    if problems:
        raise InputError(problems)
    if claim.samples is not None and claim.samples.format == "lm-eval-results" and check_files:
        claim = _from_results_files(claim, file, lines)
    return claim


def _from_results_files(claim: Claim, file: str, lines: dict[tuple, int]) -> Claim:
    """A results-only claim (``samples.format: lm-eval-results``): each arm's published rate and n read from its
    ``results_*.json`` and written as the reported ``{passes, n}`` (k = rate × n, checked to be a whole number of
    items), so the claim is audited from counts with no hand arithmetic; the files, counts and each run's settings
    are kept in ``Claim.results_only`` for the ``results_config`` check, and ``samples`` is cleared (there are no
    per-item samples to replay)."""
    from audit.importers.lmeval import results_counts

    s, rep = claim.samples, claim.claim.reported
    if s is None:  # the caller reads results files only for samples.format: lm-eval-results
        return claim
    problems: list[Problem] = []
    for arm in ("baseline", "treatment"):
        if getattr(rep, arm) is not None:
            problems.append(
                Problem(
                    f"claim.reported.{arm} is read from the results file (samples.format: lm-eval-results)",
                    file=file,
                    line=lines.get(("claim", "reported", arm)),
                    field=f"claim.reported.{arm}",
                    fix="remove it: the results files are the published numbers (reported delta, p_value and ci may "
                    "stay)",
                )
            )
    budget = claim.claimed_budget
    read: dict[str, Any] = {}
    counts: dict[str, Counts] = {}
    for arm in ("baseline", "treatment"):
        pattern = getattr(s, arm).get(budget) if budget is not None else None
        paths = resolve_paths(claim, pattern) if pattern is not None else []
        where = f"samples.{arm}.{budget}"
        if len(paths) != 1:
            problems.append(
                Problem(
                    f"{where} must name one results_*.json (it matches {len(paths)} files)",
                    file=file,
                    line=lines.get(("samples", arm, budget)),
                    field=where,
                    fix="point it at the run's results_<date>.json",
                )
            )
            continue
        got, probs = results_counts(paths[0], s.task, claim.claim.metric, claim.claim.settings.scoring)
        problems += probs
        if got is not None:
            read[arm] = got
            counts[arm] = Counts(passes=got["passes"], n=got["n"])
            if rep.n is not None and rep.n != got["n"]:
                problems.append(
                    Problem(
                        f"claim.reported.n ({rep.n}) disagrees with the {arm} results file's n ({got['n']})",
                        file=file,
                        line=lines.get(("claim", "reported", "n")),
                        field="claim.reported.n",
                        fix="remove claim.reported.n",
                    )
                )
    if problems:
        raise InputError(problems)
    new_rep = rep.model_copy(update={"baseline": counts["baseline"], "treatment": counts["treatment"]})
    return claim.model_copy(
        update={"claim": claim.claim.model_copy(update={"reported": new_rep}), "samples": None, "results_only": read}
    )


MAX_GLOB_ENTRIES = 200_000


def _has_magic(p: str) -> bool:
    return glob.has_magic(p)


def _walk_glob(full: str) -> list[str]:
    """``glob(full, recursive=True)`` for a pattern with ``**``, without following links to folders: Python's own
    recursive glob follows them, so two link loops make it walk 2**40 paths. Hidden names match only a pattern
    part that starts with a dot, as in glob."""
    import fnmatch
    import os
    from functools import lru_cache

    parts = Path(full).parts
    cut = next(i for i, x in enumerate(parts) if _has_magic(x))
    top, pats = Path(*parts[:cut]) if cut else Path("."), parts[cut:]

    def matches(rel: tuple[str, ...]) -> bool:
        @lru_cache(maxsize=None)
        def m(i: int, j: int) -> bool:
            if j == len(pats):
                return i == len(rel)
            if pats[j] == "**":
                return m(i, j + 1) or (i < len(rel) and not rel[i].startswith(".") and m(i + 1, j))
            return (
                i < len(rel)
                and (not rel[i].startswith(".") or pats[j].startswith("."))
                and fnmatch.fnmatchcase(rel[i], pats[j])
                and m(i + 1, j + 1)
            )

        return m(0, 0)

    out: list[str] = []
    seen = 0
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        seen += len(dirnames) + len(filenames)
        if seen > MAX_GLOB_ENTRIES:
            raise InputError(
                [
                    Problem(
                        f"the pattern {full!r} walks more than {MAX_GLOB_ENTRIES:,} files and folders",
                        fix="narrow the ** pattern to the run's folder",
                    )
                ]
            )
        rel_dir = Path(dirpath).relative_to(top).parts
        for name in filenames + dirnames:
            if matches(rel_dir + (name,)):
                out.append(str(Path(dirpath) / name))
    return sorted(out)


def _expand(claim: Claim, p: str) -> list[str]:
    full = p if Path(p).is_absolute() else str(claim.base_dir / p)
    if "**" in full:
        return _walk_glob(full)
    return sorted(glob.glob(full))


def resolve_paths(claim: Claim, pattern: str | list[str]) -> list[Path]:
    """Expand a path or glob (or list of them) relative to the claim's folder, sorted; regular files only
    (:func:`explain_no_match` says why a pattern gave none)."""
    patterns = [pattern] if isinstance(pattern, str) else pattern
    found: list[Path] = []
    for p in patterns:
        found.extend(Path(m) for m in _expand(claim, p) if Path(m).is_file())
    return found


def explain_no_match(claim: Claim, pattern: str | list[str]) -> tuple[str, str]:
    """(message, fix) for a log pattern that matched no regular file: a folder, a link loop, a broken link, a FIFO,
    device or socket, or nothing at all."""
    import errno
    import os

    from audit.jsonlines import regular_file_problem

    patterns = [pattern] if isinstance(pattern, str) else pattern
    where = f"relative paths resolve against {claim.base_dir}"
    for p in patterns:
        for m in _expand(claim, p) if _has_magic(p) else [p if Path(p).is_absolute() else str(claim.base_dir / p)]:
            if os.path.isdir(m):
                return (f"{m} is a folder, not a file", f"name the files inside it, e.g. {p.rstrip('/')}/*.jsonl")
            if os.path.exists(m):  # exists, yet not a regular file: say what it is (a FIFO, a device, a socket)
                problem = regular_file_problem(m, m)
                if problem is not None:
                    return problem.message, problem.fix or "give the path of a regular file"
            if os.path.islink(m):
                try:
                    os.stat(m)
                except OSError as exc:
                    if exc.errno == errno.ELOOP:
                        return f"{m} is a symbolic link loop", "point the link at the log file itself"
                    return (
                        f"{m} is a symbolic link to a missing file ({os.readlink(m)})",
                        "point the link at an existing log file",
                    )
    return (
        f"no file matches {pattern!r} ({where})",
        "check the path; globs like runs/base_16/samples_*.jsonl are allowed",
    )


def _semantic_problems(claim: Claim, file: str, lines: dict[tuple, int], check_files: bool) -> list[Problem]:
    """Every problem of a claim that validates field by field but not as a whole, in the order the file reads."""
    problems = _reported_problems(claim, file, lines)
    if claim.samples is not None:
        problems += _samples_problems(claim, file, lines, check_files)
    if claim.samples is not None and (claim.task is not None or claim.arms is not None):
        problems.append(
            Problem(
                "give either samples: (replay logs) or arms:/task: (a live run), not both",
                file=file,
                line=lines.get(("samples",)),
                field="samples",
                fix="remove samples: to re-run the models, or arms:/task: to replay the logs",
            )
        )
    if claim.arms is not None and claim.task is None:
        problems.append(
            Problem(
                "arms: needs a task: (dataset, prompt, target) to generate from",
                file=file,
                line=lines.get(("arms",)),
                field="task",
                fix="add task: {dataset: ..., prompt: ...}",
            )
        )
    if claim.task is not None:
        problems += _live_problems(claim, file, lines, check_files)
    rep = claim.claim.reported
    if (
        claim.samples is None
        and claim.task is None
        and claim.probes is None
        and rep.baseline is None
        and rep.treatment is None
    ):
        problems.append(
            Problem(
                "nothing to audit: no samples and no reported baseline/treatment scores",
                file=file,
                line=lines.get(("claim",)),
                field="claim.reported",
                fix="add samples: (per-arm logs) or claim.reported.baseline/treatment as {passes, n}",
            )
        )
    if claim.perturbations.ood is not None:
        problems += _ood_problems(claim, file, lines, check_files)
    if claim.samples is not None and "default" in claim.samples.variants:
        problems.append(
            Problem(
                "the variant name 'default' is reserved for samples.baseline/treatment",
                file=file,
                line=lines.get(("samples", "variants", "default")),
                field="samples.variants.default",
                fix="rename the variant",
            )
        )
    return problems


def _reported_problems(claim: Claim, file: str, lines: dict[tuple, int]) -> list[Problem]:
    """An arm's reported n that disagrees with claim.reported.n."""
    problems: list[Problem] = []
    rep = claim.claim.reported
    for arm in ("baseline", "treatment"):
        v = getattr(rep, arm)
        if isinstance(v, Counts) and rep.n is not None and v.n != rep.n:
            problems.append(
                Problem(
                    f"{arm}.n ({v.n}) disagrees with reported n ({rep.n})",
                    file=file,
                    line=lines.get(("claim", "reported", arm)),
                    field=f"claim.reported.{arm}.n",
                    fix="give n once, or make both agree",
                )
            )
    return problems


def _samples_problems(claim: Claim, file: str, lines: dict[tuple, int], check_files: bool) -> list[Problem]:
    """Replay mode: the claimed budget among the logged ones, and (``check_files``) every log pattern matching."""
    problems: list[Problem] = []
    if claim.samples is None:
        return problems
    budgets = sorted(claim.samples.baseline)
    cb = claim.claim.settings.max_tokens
    if cb is not None and cb not in budgets:
        problems.append(
            Problem(
                f"the claimed budget {cb} has no logs (samples are keyed by budgets {budgets})",
                file=file,
                line=lines.get(("claim", "settings", "max_tokens")) or lines.get(("claim", "settings")),
                field="claim.settings.max_tokens",
                value=cb,
                fix="add logs for the claimed budget under samples.baseline/treatment, or correct max_tokens",
            )
        )
    if cb is None and len(budgets) > 1:
        problems.append(
            Problem(
                "several budgets are given but the claim does not say which one it was made at",
                file=file,
                line=lines.get(("claim", "settings")) or lines.get(("claim",)),
                field="claim.settings.max_tokens",
                fix=f"add claim.settings.max_tokens: one of {budgets}",
            )
        )
    if check_files:
        for arm in ("baseline", "treatment"):
            for budget, pattern in getattr(claim.samples, arm).items():
                if not resolve_paths(claim, pattern):
                    msg, fix = explain_no_match(claim, pattern)
                    problems.append(
                        Problem(
                            msg,
                            file=file,
                            line=lines.get(("samples", arm, budget)),
                            field=f"samples.{arm}.{budget}",
                            fix=fix,
                        )
                    )
    return problems


def _live_problems(claim: Claim, file: str, lines: dict[tuple, int], check_files: bool) -> list[Problem]:
    """Live mode: the budgets, the dataset file, each arm's endpoint and templates, the task's templates."""
    problems: list[Problem] = []
    task = claim.task
    if task is None:
        return problems
    if not claim.budgets():
        problems.append(
            Problem(
                "a live run needs a generation budget",
                file=file,
                line=lines.get(("claim", "settings")) or lines.get(("claim",)),
                field="claim.settings.max_tokens",
                fix="set claim.settings.max_tokens (and perturbations.max_tokens for a sweep)",
            )
        )
    elif claim.claimed_budget is None:
        problems.append(
            Problem(
                "several budgets are swept but the claim does not say which one it was made at",
                file=file,
                line=lines.get(("perturbations", "max_tokens")),
                field="claim.settings.max_tokens",
                fix=f"add claim.settings.max_tokens: one of {claim.budgets()}",
            )
        )
    if check_files and task.dataset is not None:
        ds = claim.base_dir / task.dataset
        if not ds.is_file():
            what = "is a folder, not a file" if ds.is_dir() else "not found"
            problems.append(
                Problem(
                    f"dataset {what}: {ds}",
                    file=file,
                    line=lines.get(("task", "dataset")),
                    field="task.dataset",
                    value=task.dataset,
                    fix="give the JSONL file of items; paths resolve against the claim file's folder",
                )
            )
    for arm_name, arm in (claim.arms or {}).items():
        problems += _arm_problems(arm_name, arm, file, lines)
    if task.prompt is not None:
        problems.extend(_template_problems(task.prompt, file, lines.get(("task", "prompt")), "task.prompt"))
    problems.extend(_template_problems(task.target, file, lines.get(("task", "target")), "task.target"))
    return problems


def _arm_problems(arm_name: str, arm: Arm, file: str, lines: dict[tuple, int]) -> list[Problem]:
    """One live arm: its endpoint, its replicas' URLs and its prompt template."""
    problems: list[Problem] = []
    if arm.endpoint != "embedded" and not arm.endpoint.startswith(("http://", "https://")):
        problems.append(
            Problem(
                "endpoint must be 'embedded' or an http(s) base URL",
                file=file,
                line=lines.get(("arms", arm_name, "endpoint")),
                field=f"arms.{arm_name}.endpoint",
                value=arm.endpoint,
                fix="e.g. endpoint: http://127.0.0.1:8000/v1",
            )
        )
    urls = [("endpoint", arm.endpoint)] if arm.endpoint != "embedded" else []
    for name, url in urls + [(f"replicas[{i}]", r) for i, r in enumerate(arm.replicas)]:
        why = url_problem(url)
        if why is not None and (name != "endpoint" or url.startswith(("http://", "https://"))):
            key = ("arms", arm_name) + (("endpoint",) if name == "endpoint" else ("replicas", int(name[9:-1])))
            problems.append(
                Problem(
                    why,
                    file=file,
                    line=lines.get(key),
                    field=f"arms.{arm_name}.{name}",
                    value=url_public(url),
                    fix="e.g. http://127.0.0.1:8000/v1 (ports run from 1 to 65535)",
                )
            )
    for tmpl_field, tmpl in (("prompt", arm.prompt),):
        if tmpl is not None:
            problems.extend(
                _template_problems(
                    tmpl, file, lines.get(("arms", arm_name, tmpl_field)), f"arms.{arm_name}.{tmpl_field}"
                )
            )
    return problems


def _ood_problems(claim: Claim, file: str, lines: dict[tuple, int], check_files: bool) -> list[Problem]:
    """perturbations.ood: a live run, known built-in perturbations, distinct names, existing files."""
    from audit.perturb import PERTURBATIONS

    problems: list[Problem] = []
    ood = claim.perturbations.ood
    if ood is None:
        return problems
    if not claim.live:
        problems.append(
            Problem(
                "perturbations.ood generates new prompts, so it needs a live run (arms:/task:)",
                file=file,
                line=lines.get(("perturbations", "ood")),
                field="perturbations.ood",
                fix="for replayed logs of OOD prompts, list them under samples.variants.<name>",
            )
        )
    for i, name in enumerate(ood.builtin):
        if name not in PERTURBATIONS:
            close = difflib.get_close_matches(name, list(PERTURBATIONS), n=1)
            problems.append(
                Problem(
                    "unknown built-in perturbation",
                    file=file,
                    line=lines.get(("perturbations", "ood", "builtin", i)),
                    field=f"perturbations.ood.builtin[{i}]",
                    value=name,
                    fix=(f"did you mean '{close[0]}'? " if close else "") + f"built-in: {', '.join(PERTURBATIONS)}",
                )
            )
    names = [s_.name for s_ in ood.sets] + list(ood.builtin)
    for dup in sorted({n for n in names if names.count(n) > 1} | ({"default"} & set(names))):
        problems.append(
            Problem(
                f"variant name {dup!r} is used twice or is reserved",
                file=file,
                line=lines.get(("perturbations", "ood")),
                field="perturbations.ood",
                fix="give every OOD set a distinct name other than 'default'",
            )
        )
    if check_files:
        for i, s_ in enumerate(ood.sets):
            for key in ("dataset", "rewrites"):
                rel = getattr(s_, key)
                if rel and not (claim.base_dir / rel).is_file():
                    problems.append(
                        Problem(
                            f"file not found: {claim.base_dir / rel}",
                            file=file,
                            line=lines.get(("perturbations", "ood", "sets", i, key)),
                            field=f"perturbations.ood.sets[{i}].{key}",
                            value=rel,
                            fix="paths resolve against the claim file's folder",
                        )
                    )
    return problems


def url_public(url: str) -> str:
    from audit.generation.types import public_url

    return public_url(url)


def url_problem(url: str) -> str | None:
    """Why ``url`` is not a usable http(s) base URL (the runner's own check, so both agree), or None."""
    from audit.generation.types import url_problem as check

    return check(url)


def _template_problems(template: str, file: str, line: int | None, field: str) -> list[Problem]:
    from jinja2 import TemplateSyntaxError

    from audit.prompts import environment

    try:
        environment().from_string(template)
    except TemplateSyntaxError as exc:
        return [
            Problem(
                f"jinja2 syntax error: {exc.message}",
                file=file,
                line=line,
                field=field,
                fix="check the {{ }} / {% %} pairs in the template",
            )
        ]
    except (RecursionError, MemoryError):
        return [
            Problem(
                "the template is nested too deeply to compile",
                file=file,
                line=line,
                field=field,
                fix="simplify the template",
            )
        ]
    return []


def json_schema() -> dict:
    """JSON Schema of the claim file, for editors (yaml-language-server) and `audit schema`."""
    schema = Claim.model_json_schema(by_alias=False)
    schema["properties"].pop("path", None)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "audit claim file"
    return schema


def written_places(claim: "Claim") -> tuple[int | None, int | None]:
    """The decimals the reported numbers were *written* to in the claim file: (the table of baseline, treatment and
    delta; the CI). YAML reads "0.10" as 0.1, which would make its rounding tolerance ±0.05 instead of ±0.005; the text
    keeps the precision. (None, None) for a claim not read from a file, or numbers not written as plain decimals."""
    from decimal import Decimal, InvalidOperation

    if claim.path is None:
        return None, None
    try:
        text = Path(claim.path).read_text(encoding="utf-8-sig")
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
    except Exception:  # the file changed or went away since it was loaded: read the precision off the numbers
        return None, None

    def child(node, key):
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == key:
                    return v
        return None

    def places(node) -> int | None:
        if not isinstance(node, yaml.ScalarNode):
            return None
        try:
            exp = Decimal(node.value.strip().replace("_", "")).as_tuple().exponent
        except (InvalidOperation, ValueError):
            return None
        return max(0, -int(exp)) if isinstance(exp, int) else None

    rep = child(child(root, "claim"), "reported")
    table = [d for d in (places(child(rep, k)) for k in ("baseline", "treatment", "delta")) if d]
    ci = child(rep, "ci")
    ci_places = [d for d in (places(v) for v in ci.value) if d] if isinstance(ci, yaml.SequenceNode) else []
    return (max(table) if table else None), (max(ci_places) if ci_places else None)


def line_of(claim: "Claim", path: tuple) -> int | None:
    """The 1-based line of field ``path`` in the file the claim was read from (None when unknown)."""
    if claim.path is None:
        return None
    try:
        text = Path(claim.path).read_text(encoding="utf-8-sig")
        _, lines, _ = _compose(text, str(claim.path))
    except Exception:  # the file changed or went away since it was loaded: no line, the field still names it
        return None
    for cut in range(len(path), 0, -1):
        if path[:cut] in lines:
            return lines[path[:cut]]
    return None
