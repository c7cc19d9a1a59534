"""The claim file: what the authors report, where the evidence is, and which perturbations to apply.

Validated with pydantic (extra="forbid") at the edge; every problem is reported at once with the YAML line, the
field path, the bad value and a did-you-mean hint (see :func:`load_claim`).
"""
from __future__ import annotations

import difflib
import glob
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from audit.errors import InputError, Problem
from audit.scorer_specs import Regex, scorer_spec

Test = Literal["fisher", "mcnemar", "bootstrap", "ttest", "ztest", "chi2", "boschloo", "wilcoxon", "unknown"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Counts(_Strict):
    """A rate given as passes out of n, e.g. ``{passes: 6, n: 89}``."""

    passes: int = Field(ge=0, description="items scored correct")
    n: int = Field(gt=0, description="items evaluated")

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
    n: int | None = Field(None, gt=0, description="items per arm")
    p_value: float | None = Field(None, ge=0, le=1, description="the reported p-value")
    test: Test | None = Field(None, description="the test the authors say they used")
    ci: tuple[float, float] | None = Field(None, description="the reported CI of the delta, if any")

    @field_validator("baseline", "treatment")
    @classmethod
    def _rate_in_unit(cls, v: Any) -> Any:
        if isinstance(v, float) and not 0.0 <= v <= 1.0:
            raise ValueError("a rate must lie in [0, 1]; give percentages as fractions (0.15, not 15)")
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


class Settings(_Strict):
    """The setting the claim was made under."""

    max_tokens: int | None = Field(
        None, gt=0, validation_alias=AliasChoices("max_tokens", "n_predict", "max_gen_toks"),
        description="generation budget (aliases: n_predict, max_gen_toks)",
    )
    scoring: str | None = Field(None, description="the scoring the headline number used (an lm-eval filter name or built-in scorer)")
    temperature: float | None = None


class ClaimInfo(_Strict):
    title: str
    metric: str = Field("exact_match", description="the headline metric key in the logs")
    direction: Literal["greater", "less"] = Field(
        "greater", description="greater: the claim is that treatment scores higher (use less for error rates)")
    reported: Reported = Field(default_factory=Reported)
    settings: Settings = Field(default_factory=Settings)
    treatment_changes: list[str] = Field(
        default_factory=list,
        description="the settings the treatment is meant to change (e.g. prompt_template, model); any other "
                    "difference between the arms' effective settings is flagged")


class VariantLogs(_Strict):
    """Replay logs of both arms under one prompt variant (an OOD set or a perturbed prompt), keyed by budget."""

    baseline: dict[int, str | list[str]]
    treatment: dict[int, str | list[str]]


class Samples(_Strict):
    """Replay mode: per-arm sample logs keyed by generation budget. Values are paths or globs, relative to the claim."""

    format: Literal["lm-eval", "jsonl"] = "lm-eval"
    baseline: dict[int, str | list[str]]
    treatment: dict[int, str | list[str]]
    variants: dict[str, VariantLogs] = Field(
        default_factory=dict, description="more prompt variants (OOD sets, perturbed prompts) by name")

    @model_validator(mode="after")
    def _same_budgets(self) -> "Samples":
        if set(self.baseline) != set(self.treatment):
            raise ValueError(
                f"baseline budgets {sorted(self.baseline)} and treatment budgets {sorted(self.treatment)} differ; "
                "give logs for the same budgets in both arms")
        return self


class Perturbations(_Strict):
    scorings: list[str] = Field(default_factory=list, description="re-score both arms under each (lm-eval filter names or built-in scorers)")
    max_tokens: list[int] = Field(
        default_factory=list, validation_alias=AliasChoices("max_tokens", "n_predict", "max_gen_toks"),
        description="live mode: the budget sweep (the claimed budget is always included)")
    ood: "Ood | None" = Field(None, description="out-of-distribution prompt variants")

    @field_validator("max_tokens")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if any(b < 1 for b in v):
            raise ValueError("every budget must be a positive number of tokens")
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
    builtin: list[str] = Field(default_factory=list, description="built-in prompt perturbations (`audit perturbations`)")
    seed: int = Field(0, description="seeds every built-in perturbation")
    question: Literal["holds_everywhere", "find_breaks"] = Field(
        "holds_everywhere",
        description="holds_everywhere: the gain must survive every variant (intersection–union, no adjustment); "
                    "find_breaks: which variants break it, Holm-adjusted")


class Probes(_Strict):
    """Per-item probe scores and labels, in-distribution and OOD (CSV or JSONL by file suffix)."""

    in_distribution: str = Field(description="file with one row per item: id, score, label (0/1)")
    ood: dict[str, str] = Field(description="OOD sets by name → file of the same shape")
    claimed_auc: float | None = Field(None, ge=0, le=1, description="the in-distribution AUC the authors report")
    id_column: str = "id"
    score_column: str = "score"
    label_column: str = "label"


class RegexScorer(_Strict):
    """A scorer defined in the claim: extract with a regex (like lm-eval's regex filter), compare with the target."""

    regex: Regex = Field(description="Python regular expression; the group below is the extracted answer")
    group: int = Field(1, ge=0)
    select: Literal["first", "last"] = Field("first", description="which match to take when there are several")
    compare: Literal["exact", "numeric"] = Field("exact", description="numeric: 12 == 12.0 == 1,2 is not; exact: normalised text")
    ignore_case: bool = False


class Arm(_Strict):
    """Live mode: where one arm's generations come from."""

    model: str = Field("gemma-3-270m", description="model name sent to the server")
    endpoint: str = Field("embedded", description="'embedded' (llama.cpp in-process) or an OpenAI-compatible base URL")
    api: Literal["completions", "chat"] = "completions"
    replicas: list[str] = Field(default_factory=list, description="more base URLs serving the same model")
    api_key_env: str | None = Field(None, description="NAME of the environment variable holding the API key")
    system_prompt: str | None = Field(None, description="chat only: the system message")
    prompt: str | None = Field(None, description="jinja2 template overriding task.prompt for this arm")
    lm_eval_task: str | None = Field(None, description="with task.lm_eval: this arm's lm-eval task (its prompt variant)")
    max_concurrency: int = Field(4, ge=1, description="concurrent requests per base URL")
    timeout_s: float = Field(120.0, gt=0)
    max_retries: int = Field(4, ge=0)
    model_path: str | None = Field(None, description="embedded only: a GGUF file instead of the packaged Gemma 3 270M")
    n_threads: int | None = Field(None, ge=1, description="embedded only: CPU threads")
    n_batch: int | None = Field(
        None, ge=1, description="embedded only: prompt batch size; 1 makes greedy outputs match a llama.cpp server "
                                "started with --n_batch 1 exactly (batching changes the float rounding)")


class LmEvalTask(_Strict):
    """Prompts, targets, stop sequences and regex filters taken from an lm-eval task YAML (lm-eval's own loader)."""

    task: str = Field(description="the task name (arms.<arm>.lm_eval_task overrides it per arm)")
    include_path: str | None = Field(None, description="folder of task YAMLs, relative to the claim")
    data_root: str = Field(".", description="folder the task YAML's relative data_files resolve against, relative "
                                            "to the claim (lm-eval itself resolves them against the working directory)")


class Task(_Strict):
    """Live mode: the items, the prompt and the target (or an lm-eval task that supplies them)."""

    dataset: str | None = Field(None, description="JSONL file of items (relative to the claim), one object per line")
    id_field: str = Field("id", description="the key of each row that identifies the item")
    prompt: str | None = Field(None, description="jinja2 template of the prompt (StrictUndefined: a missing field is an error)")
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
    temperature: float = Field(0.0, ge=0.0, description="0 = greedy; a budget sweep then costs one run")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    seed: int | None = Field(0, description="sampling seed sent to the server")
    limit: int | None = Field(None, ge=1, description="use only the first N items")
    sweep_check: int = Field(3, ge=0, description="items per arm re-run at each smaller budget to verify the one-run sweep")


Perturbations.model_rebuild()


class Options(_Strict):
    """Statistical options; every one is recorded in the report."""

    seed: int = 0
    resamples: int = Field(10_000, ge=100)
    level: float = Field(0.95, gt=0.5, lt=1.0)
    alpha: float = Field(0.05, gt=0.0, lt=0.5)
    power: float = Field(0.8, gt=0.5, lt=1.0)
    cluster_field: str | None = Field(
        None, description="the item field that groups items sharing a passage or template (lm-eval: a key of the "
                          "logged doc; jsonl: a top-level key; live: a dataset field); deltas then use cluster-robust "
                          "standard errors (Liang–Zeger, Miller 2024) instead of treating items as independent")


class Claim(_Strict):
    claim: ClaimInfo
    samples: Samples | None = None
    arms: dict[Literal["baseline", "treatment"], Arm] | None = Field(None, description="live mode: the two arms")
    task: Task | None = Field(None, description="live mode: items, prompt, target")
    scorers: dict[str, scorer_spec(RegexScorer)] = Field(  # type: ignore[valid-type]
        default_factory=dict, description="scorers usable as scorings: regex (no kind:), or kind: extract | evaluate | code_exec")
    probes: Probes | None = Field(None, description="probe AUCs in-distribution vs OOD")
    perturbations: Perturbations = Field(default_factory=Perturbations)
    options: Options = Field(default_factory=Options)
    checks: dict[str, dict[str, Any]] = Field(default_factory=dict, description="per-check parameters, by check name")

    # Not part of the file: where it was read from (relative paths resolve against its folder).
    path: Path | None = Field(None, exclude=True)

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
        return (self.arms or {}).get(name) or Arm()

    def scorings(self) -> list[str]:
        """The claimed scoring first, then every perturbation scoring, without repeats."""
        out: list[str] = []
        for s in [self.claim.settings.scoring, *self.perturbations.scorings]:
            if s and s not in out:
                out.append(s)
        return out


# ---------------------------------------------------------------------------------------------------------------
# Loading with located errors


def _line_map(text: str) -> dict[tuple, int]:
    """Map each field path (tuple of keys / indices) to its 1-based line in the YAML text."""
    lines: dict[tuple, int] = {}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return lines

    def walk(node: yaml.Node, path: tuple) -> None:
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key: Any = k.value
                if k.tag.endswith(":int"):
                    try:
                        key = int(k.value)
                    except ValueError:
                        pass
                lines[path + (key,)] = k.start_mark.line + 1
                walk(v, path + (key,))
                lines[path + (key,)] = k.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                walk(v, path + (i,))

    if root is not None:
        walk(root, ())
    return lines


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
        current = next((a for a in getattr(ann, "__args__", (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)), ann)
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


def _problems_from_validation(err: ValidationError, file: str, lines: dict[tuple, int],
                              root: type[BaseModel] | None = None) -> list[Problem]:
    problems = []
    for e in err.errors():
        loc = tuple(x for x in e["loc"] if not (isinstance(x, str) and x in {"float", "Counts", "str", "list[str]", "int"}))
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
                f"allowed keys here: {', '.join(sorted(allowed))}" if allowed else "remove this key")
            msg = "unknown key"
            value = None
        elif kind == "missing":
            msg = "required key is missing"
            fix = f"add '{loc[-1]}'" if loc else None
            value = None
        else:
            msg = e["msg"]
            value = e.get("input")
            if isinstance(value, (dict, list)):
                value = None
        problems.append(Problem(message=msg, file=file, line=line, field=field_path, value=value, fix=fix))
    # Unions report one error per member; collapse exact repeats.
    seen, unique = set(), []
    for p in problems:
        k = (p.line, p.field, p.message)
        if k not in seen:
            seen.add(k)
            unique.append(p)
    return unique


def load_claim(path: str | Path, check_files: bool = True) -> Claim:
    """Read and validate a claim file; raise :class:`InputError` listing every problem found."""
    path = Path(path)
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError([Problem("claim file not found", file=file, fix="check the path")]) from None
    except OSError as exc:
        raise InputError([Problem(f"cannot read claim file: {exc.strerror}", file=file)]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        what = getattr(exc, "problem", None) or str(exc)
        ctx = getattr(exc, "context", None)
        msg = f"YAML syntax error: {what}" + (f" ({ctx})" if ctx else "")
        raise InputError([Problem(msg, file=file, line=line,
                                  fix="check indentation and quoting on this line and the one before it")]) from None
    if not isinstance(data, dict):
        raise InputError([Problem("a claim file must be a YAML mapping with a 'claim:' section", file=file, line=1,
                                  fix="see `audit schema` or the README for the format")])
    lines = _line_map(text)
    try:
        claim = Claim.model_validate(data)
    except ValidationError as err:
        raise InputError(_problems_from_validation(err, file, lines)) from None
    claim = claim.model_copy(update={"path": path.resolve()})
    problems = _semantic_problems(claim, file, lines, check_files)
    if problems:
        raise InputError(problems)
    return claim


def resolve_paths(claim: Claim, pattern: str | list[str]) -> list[Path]:
    """Expand a path or glob (or list of them) relative to the claim's folder, sorted."""
    patterns = [pattern] if isinstance(pattern, str) else pattern
    found: list[Path] = []
    for p in patterns:
        full = p if Path(p).is_absolute() else str(claim.base_dir / p)
        matches = sorted(glob.glob(full, recursive=True))
        found.extend(Path(m) for m in matches if Path(m).is_file())
    return found


def _semantic_problems(claim: Claim, file: str, lines: dict[tuple, int], check_files: bool) -> list[Problem]:
    problems: list[Problem] = []
    rep = claim.claim.reported
    for arm in ("baseline", "treatment"):
        v = getattr(rep, arm)
        if isinstance(v, Counts) and rep.n is not None and v.n != rep.n:
            problems.append(Problem(f"{arm}.n ({v.n}) disagrees with reported n ({rep.n})", file=file,
                                    line=lines.get(("claim", "reported", arm)), field=f"claim.reported.{arm}.n",
                                    fix="give n once, or make both agree"))
    if claim.samples is not None:
        budgets = sorted(claim.samples.baseline)
        cb = claim.claim.settings.max_tokens
        if cb is not None and cb not in budgets:
            problems.append(Problem(
                f"the claimed budget {cb} has no logs (samples are keyed by budgets {budgets})", file=file,
                line=lines.get(("claim", "settings", "max_tokens")) or lines.get(("claim", "settings")),
                field="claim.settings.max_tokens", value=cb,
                fix="add logs for the claimed budget under samples.baseline/treatment, or correct max_tokens"))
        if cb is None and len(budgets) > 1:
            problems.append(Problem(
                "several budgets are given but the claim does not say which one it was made at", file=file,
                line=lines.get(("claim", "settings")) or lines.get(("claim",)), field="claim.settings.max_tokens",
                fix=f"add claim.settings.max_tokens: one of {budgets}"))
        if check_files:
            for arm in ("baseline", "treatment"):
                for budget, pattern in getattr(claim.samples, arm).items():
                    if not resolve_paths(claim, pattern):
                        problems.append(Problem(
                            f"no file matches {pattern!r} (relative paths resolve against {claim.base_dir})",
                            file=file, line=lines.get(("samples", arm, budget)), field=f"samples.{arm}.{budget}",
                            fix="check the path; globs like runs/base_16/samples_*.jsonl are allowed"))
    if claim.samples is not None and (claim.task is not None or claim.arms is not None):
        problems.append(Problem("give either samples: (replay logs) or arms:/task: (a live run), not both", file=file,
                                line=lines.get(("samples",)), field="samples",
                                fix="remove samples: to re-run the models, or arms:/task: to replay the logs"))
    if claim.arms is not None and claim.task is None:
        problems.append(Problem("arms: needs a task: (dataset, prompt, target) to generate from", file=file,
                                line=lines.get(("arms",)), field="task", fix="add task: {dataset: ..., prompt: ...}"))
    if claim.task is not None:
        if not claim.budgets():
            problems.append(Problem("a live run needs a generation budget", file=file,
                                    line=lines.get(("claim", "settings")) or lines.get(("claim",)),
                                    field="claim.settings.max_tokens",
                                    fix="set claim.settings.max_tokens (and perturbations.max_tokens for a sweep)"))
        elif claim.claimed_budget is None:
            problems.append(Problem("several budgets are swept but the claim does not say which one it was made at",
                                    file=file, line=lines.get(("perturbations", "max_tokens")),
                                    field="claim.settings.max_tokens",
                                    fix=f"add claim.settings.max_tokens: one of {claim.budgets()}"))
        if check_files and claim.task.dataset is not None:
            ds = claim.base_dir / claim.task.dataset
            if not ds.is_file():
                problems.append(Problem(f"dataset not found: {ds}", file=file, line=lines.get(("task", "dataset")),
                                        field="task.dataset", value=claim.task.dataset,
                                        fix="paths resolve against the claim file's folder"))
        for arm_name, arm in (claim.arms or {}).items():
            if arm.endpoint != "embedded" and not arm.endpoint.startswith(("http://", "https://")):
                problems.append(Problem("endpoint must be 'embedded' or an http(s) base URL", file=file,
                                        line=lines.get(("arms", arm_name, "endpoint")),
                                        field=f"arms.{arm_name}.endpoint", value=arm.endpoint,
                                        fix="e.g. endpoint: http://127.0.0.1:8000/v1"))
            for tmpl_field, tmpl in (("prompt", arm.prompt),):
                if tmpl is not None:
                    problems.extend(_template_problems(tmpl, file, lines.get(("arms", arm_name, tmpl_field)),
                                                       f"arms.{arm_name}.{tmpl_field}"))
        if claim.task.prompt is not None:
            problems.extend(_template_problems(claim.task.prompt, file, lines.get(("task", "prompt")), "task.prompt"))
        problems.extend(_template_problems(claim.task.target, file, lines.get(("task", "target")), "task.target"))
    if (claim.samples is None and claim.task is None and claim.probes is None and rep.baseline is None
            and rep.treatment is None):
        problems.append(Problem(
            "nothing to audit: no samples and no reported baseline/treatment scores", file=file,
            line=lines.get(("claim",)), field="claim.reported",
            fix="add samples: (per-arm logs) or claim.reported.baseline/treatment as {passes, n}"))
    ood = claim.perturbations.ood
    if ood is not None:
        from audit.perturb import PERTURBATIONS

        if not claim.live:
            problems.append(Problem("perturbations.ood generates new prompts, so it needs a live run (arms:/task:)",
                                    file=file, line=lines.get(("perturbations", "ood")), field="perturbations.ood",
                                    fix="for replayed logs of OOD prompts, list them under samples.variants.<name>"))
        for i, name in enumerate(ood.builtin):
            if name not in PERTURBATIONS:
                close = difflib.get_close_matches(name, list(PERTURBATIONS), n=1)
                problems.append(Problem("unknown built-in perturbation", file=file,
                                        line=lines.get(("perturbations", "ood", "builtin", i)),
                                        field=f"perturbations.ood.builtin[{i}]", value=name,
                                        fix=(f"did you mean '{close[0]}'? " if close else "")
                                        + f"built-in: {', '.join(PERTURBATIONS)}"))
        names = [s_.name for s_ in ood.sets] + list(ood.builtin)
        for dup in sorted({n for n in names if names.count(n) > 1} | ({"default"} & set(names))):
            problems.append(Problem(f"variant name {dup!r} is used twice or is reserved", file=file,
                                    line=lines.get(("perturbations", "ood")), field="perturbations.ood",
                                    fix="give every OOD set a distinct name other than 'default'"))
        if check_files:
            for i, s_ in enumerate(ood.sets):
                for key in ("dataset", "rewrites"):
                    rel = getattr(s_, key)
                    if rel and not (claim.base_dir / rel).is_file():
                        problems.append(Problem(f"file not found: {claim.base_dir / rel}", file=file,
                                                line=lines.get(("perturbations", "ood", "sets", i, key)),
                                                field=f"perturbations.ood.sets[{i}].{key}", value=rel,
                                                fix="paths resolve against the claim file's folder"))
    if claim.samples is not None and "default" in claim.samples.variants:
        problems.append(Problem("the variant name 'default' is reserved for samples.baseline/treatment", file=file,
                                line=lines.get(("samples", "variants", "default")), field="samples.variants.default",
                                fix="rename the variant"))
    from audit.checks import REGISTRY  # local: the registry imports this module

    for name, params in claim.checks.items():
        if name not in REGISTRY:
            close = difflib.get_close_matches(name, list(REGISTRY), n=1)
            problems.append(Problem("unknown check", file=file, line=lines.get(("checks", name)), field=f"checks.{name}",
                                    fix=(f"did you mean '{close[0]}'? " if close else "") + f"known checks: {', '.join(REGISTRY)}"))
            continue
        model = REGISTRY[name].params
        try:
            model.model_validate(params or {})
        except ValidationError as err:
            for p in _problems_from_validation(err, file, {}, root=model):
                problems.append(Problem(p.message, file=file, line=lines.get(("checks", name)),
                                        field=f"checks.{name}.{p.field}", value=p.value, fix=p.fix))
    return problems


def _template_problems(template: str, file: str, line: int | None, field: str) -> list[Problem]:
    from jinja2 import TemplateSyntaxError

    from audit.prompts import environment

    try:
        environment().parse(template)
    except TemplateSyntaxError as exc:
        return [Problem(f"jinja2 syntax error: {exc.message}", file=file, line=line, field=field,
                        fix="check the {{ }} / {% %} pairs in the template")]
    return []


def json_schema() -> dict:
    """JSON Schema of the claim file, for editors (yaml-language-server) and `audit schema`."""
    schema = Claim.model_json_schema(by_alias=False)
    schema["properties"].pop("path", None)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "audit claim file"
    return schema
