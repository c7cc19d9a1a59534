"""Live mode: generate both arms on their endpoints and turn the generations into Records.

The plan is arms × variants × budgets. With greedy decoding a budget sweep costs one run per arm: generate at the
largest budget and derive every smaller budget by cutting the token sequence (DESIGN.md, "Cost"). A few items per
arm are also generated for real at each smaller budget and compared with the derived text; a mismatch is recorded
(the `settings` check shows it) and the whole budget is then generated for real. Sampled decoding runs every budget.

Out-of-distribution variants (``perturbations.ood``: second datasets, per-item rewrites, built-in prompt
perturbations) are generated at the claimed budget only.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from audit.claim import Claim, OodSet, Task
from audit.errors import InputError, Problem
from audit.jsonlines import Fields, json_objects
from audit.plan import Plan, build_plan
from audit.records import ARMS, DEFAULT_VARIANT, Records, LogSource, build_records

ProgressFactory = Callable[[str, int], Callable[[int, int], None]]


@dataclass(frozen=True)
class Item:
    id: str
    row: dict[str, Any]
    line: int


@dataclass(frozen=True)
class Variant:
    """One prompt variant: its items, and per arm the rendered prompts (same order as the items)."""

    name: str
    items: list[Item]
    source: str  # the dataset file the items came from
    prompts: dict[str, list[str]]
    targets: list[str]
    budgets: list[int]
    how: str  # human description, for the report
    stop: tuple[str, ...] = ()


@dataclass
class RunStats:
    """What the live run cost, per arm (for the report and the sweep benchmark)."""

    requests: int = 0
    cached: int = 0
    completion_tokens: int = 0
    derived: int = 0
    sweep_checked: int = 0
    sweep_mismatches: list[dict] = field(default_factory=list)


def load_items(path: Path, id_field: str, limit: int | None = None) -> list[Item]:
    """JSONL rows with an id; every problem (bad JSON, missing or repeated id) reported with its line."""
    problems: list[Problem] = []
    items: list[Item] = []
    seen: dict[str, int] = {}
    objects = list(json_objects(path, problems, example=f'{{"{id_field}": "q1", "question": "..."}}', what="dataset"))
    for i, row in objects:
        if id_field not in row:
            problems.append(
                Problem(
                    f"row has no {id_field!r} field",
                    file=str(path),
                    line=i,
                    fix="add an id to every row, or set task.id_field",
                )
            )
            continue
        rid = Fields(row, str(path), i, problems).ident(id_field, fix="item ids are strings or integers")
        if rid is None:
            continue
        if rid in seen:
            problems.append(
                Problem(f"id {rid!r} repeats line {seen[rid]}", file=str(path), line=i, fix="item ids must be unique")
            )
            continue
        seen[rid] = i
        items.append(Item(rid, row, i))
        if limit and len(items) >= limit:
            break
    if problems:
        raise InputError(problems[:20])
    if not items:
        raise InputError([Problem("the dataset has no items", file=str(path))])
    return items


def _live_task(claim: Claim) -> Task:
    """The claim's task: every live claim has one (``claim.live``)."""
    if claim.task is None:
        raise RuntimeError("live mode needs a claim with a task")
    return claim.task


def _live_budgets(plan: Plan, variant: str) -> list[int]:
    """A variant's planned budgets: every live run has one (the claim's validation requires a budget)."""
    budgets = plan.budgets(variant)
    out = [b for b in budgets if b is not None]
    if len(out) != len(budgets):
        raise RuntimeError(f"live variant {variant!r} was planned without a budget")
    return out


def _dataset_path(claim: Claim) -> Path:
    """The task's dataset file: a task described natively (not by lm-eval) always names one."""
    dataset = _live_task(claim).dataset
    if dataset is None:
        raise RuntimeError("a task described natively has a dataset (task.dataset)")
    return claim.base_dir / dataset


def load_dataset(claim: Claim) -> list[Item]:
    task = _live_task(claim)
    return load_items(_dataset_path(claim), task.id_field, task.limit)


def _render(claim: Claim, items: list[Item], source: str, override: str | None = None) -> tuple[dict, list[str]]:
    from audit.prompts import render_all

    task = _live_task(claim)
    rows = [it.row for it in items]
    lines = [it.line for it in items]
    prompts = {}
    for arm in ARMS:
        a = claim.arm(arm)
        template = override or a.prompt or task.prompt
        if template is None:
            raise RuntimeError("a task described natively has a prompt template (task.prompt)")
        where = "the OOD prompt" if override else (f"arms.{arm}.prompt" if a.prompt else "task.prompt")
        prompts[arm] = render_all(template, rows, where, source, lines)
    return prompts, render_all(task.target, rows, "task.target", source, lines)


def _from_lm_eval(claim: Claim, plan: Plan) -> tuple[Variant, dict, dict]:
    """The default variant from lm-eval task(s): one task for both arms, or one per arm (its prompt variant)."""
    from audit.lmeval_task import load_task

    task = _live_task(claim)
    spec = task.lm_eval
    if spec is None:
        raise RuntimeError("_from_lm_eval needs task.lm_eval")
    base = claim.base_dir
    loaded = {}
    for arm in ARMS:
        name = claim.arm(arm).lm_eval_task or spec.task
        if name not in loaded:
            loaded[name] = load_task(
                name,
                base / spec.include_path if spec.include_path else None,
                base / spec.data_root,
                task.limit,
                str(claim.path),
            )
    per_arm = {arm: loaded[claim.arm(arm).lm_eval_task or spec.task] for arm in ARMS}
    first = loaded[spec.task] if spec.task in loaded else next(iter(loaded.values()))
    for arm, t in per_arm.items():
        if len(t.docs) != len(first.docs) or t.targets != first.targets:
            raise InputError(
                [
                    Problem(
                        f"lm-eval tasks {first.name!r} and {t.name!r} do not have the same documents and targets",
                        file=str(claim.path),
                        field=f"arms.{arm}.lm_eval_task",
                        fix="the arms' tasks must read the same dataset in the same order",
                    )
                ]
            )
    items = [Item(str(i), d, i + 1) for i, d in enumerate(first.docs)]
    stop = tuple(task.stop) or tuple(first.until)
    variant = Variant(
        DEFAULT_VARIANT,
        items,
        f"lm-eval task {first.name}",
        {a: t.prompts for a, t in per_arm.items()},
        first.targets,
        _live_budgets(plan, DEFAULT_VARIANT),
        "prompts built by lm-eval from the task YAML",
        stop,
    )
    return variant, first.scorers, {arm: t.settings for arm, t in per_arm.items()}


def _native_default(claim: Claim, plan: Plan, task: Task) -> Variant:
    """The default variant of a task described natively: its dataset rendered with its own prompts."""
    items = load_dataset(claim)
    source = str(_dataset_path(claim))
    prompts, targets = _render(claim, items, source)
    return Variant(
        DEFAULT_VARIANT,
        items,
        source,
        prompts,
        targets,
        _live_budgets(plan, DEFAULT_VARIANT),
        "the task's own prompts",
        tuple(task.stop),
    )


def _ood_set_variant(claim: Claim, plan: Plan, task: Task, s: OodSet, default: Variant) -> Variant:
    """One OOD set's variant: a second dataset, per-item rewrites, or the task's items with another prompt."""
    items, source = default.items, default.source
    if s.dataset:
        path = claim.base_dir / s.dataset
        v_items = load_items(path, task.id_field, task.limit)
        how = f"second dataset {s.dataset}"
    elif s.rewrites:
        path = claim.base_dir / s.rewrites
        rewrites = {it.id: it for it in load_items(path, task.id_field)}
        unknown = sorted(set(rewrites) - {it.id for it in items})
        if unknown:
            raise InputError(
                [
                    Problem(
                        f"rewrites for ids not in the task's dataset: {unknown[:5]}",
                        file=str(path),
                        fix="rewrite rows must use ids of task.dataset",
                    )
                ]
            )
        v_items = [
            Item(it.id, {**it.row, **rewrites[it.id].row}, rewrites[it.id].line) for it in items if it.id in rewrites
        ]
        how = f"per-item rewrites {s.rewrites}"
    else:
        path, v_items, how = Path(source), items, "the task's items"
    v_prompts, v_targets = _render(claim, v_items, str(path), s.prompt)
    return Variant(
        s.name,
        v_items,
        str(path),
        v_prompts,
        v_targets,
        _live_budgets(plan, s.name),
        how + (" with its own prompt template" if s.prompt else ""),
        default.stop,
    )


def _builtin_variant(plan: Plan, name: str, seed: int, default: Variant) -> Variant:
    """A built-in perturbation's variant: the default variant's prompts perturbed item by item."""
    from audit.perturb import PERTURBATIONS

    p = PERTURBATIONS[name]
    items = default.items
    v_prompts = {arm: [p.apply(pr, seed, it.id) for pr, it in zip(default.prompts[arm], items)] for arm in ARMS}
    return Variant(
        name,
        items,
        default.source,
        v_prompts,
        default.targets,
        _live_budgets(plan, name),
        f"built-in perturbation '{name}' ({p.family}), seed {seed}",
        default.stop,
    )


def plan_variants(claim: Claim, plan: Plan | None = None) -> tuple[list[Variant], dict, dict]:
    """The planned variants (:func:`audit.plan.build_plan`: the default variant at every budget, each OOD variant at
    the claimed budget) with their items and prompts; plus the scorers and settings an lm-eval task contributes
    (empty otherwise)."""
    plan = plan if plan is not None else build_plan(claim)
    task = _live_task(claim)

    if task.lm_eval is not None:
        default, scorers, task_settings = _from_lm_eval(claim, plan)
    else:
        scorers, task_settings = {}, {}
        default = _native_default(claim, plan, task)
    out = [default]
    ood = claim.perturbations.ood
    if ood is None:
        return out, scorers, task_settings
    if task.lm_eval is not None and ood.sets:
        raise InputError(
            [
                Problem(
                    "OOD sets need task.dataset/prompt (they are rendered with the task's templates); "
                    "with task.lm_eval use built-in perturbations",
                    file=str(claim.path),
                    field="perturbations.ood.sets",
                    fix="remove the sets, or describe the task natively",
                )
            ]
        )
    for s in ood.sets:
        out.append(_ood_set_variant(claim, plan, task, s, default))
    for name in ood.builtin:
        out.append(_builtin_variant(plan, name, ood.seed, default))
    return out, scorers, task_settings


def _endpoint(claim: Claim, arm: str):
    from audit.generation.types import Endpoint

    a = claim.arm(arm)
    return Endpoint(
        url=a.endpoint,
        model=a.model,
        api=a.api,
        replicas=tuple(a.replicas),
        api_key_env=a.api_key_env,
        max_concurrency=a.max_concurrency,
        timeout_s=a.timeout_s,
        max_retries=a.max_retries,
        model_path=a.model_path,
        n_threads=a.n_threads,
        n_batch=a.n_batch,
    )


def _frame(claim: Claim, arm: str, v: Variant, b: int, gens: list, label: str) -> pd.DataFrame:
    """The table rows of one arm × variant × budget's generations."""
    return pd.DataFrame(
        {
            "arm": arm,
            "item_id": [it.id for it in v.items],
            "variant": v.name,
            "budget": b,
            "text": [g.text for g in gens],
            "target": v.targets,
            "finish_reason": [g.finish_reason for g in gens],
            "no_output": [g.no_output for g in gens],
            "served_by": [g.served_by for g in gens],
            "completion_tokens": [g.completion_tokens for g in gens],
            "prompt_hash": [hashlib.sha256(p.encode()).hexdigest() for p in v.prompts[arm]],
            "doc_hash": [hashlib.sha256(json.dumps(it.row, sort_keys=True).encode()).hexdigest() for it in v.items],
            "source": f"live:{label} {arm}/{v.name}@{b}",
            "line": [it.line for it in v.items],
            "cluster": [
                it.row.get(claim.options.cluster_field) if claim.options.cluster_field else None for it in v.items
            ],
        }
    )


def _budget_settings(
    claim: Claim, arm: str, endpoint, label: str, v: Variant, b: int, how: str, task_settings: dict
) -> dict[str, Any]:
    """The recorded generation settings of one arm at one budget of the default variant."""
    from audit.generation.types import public_url

    task = _live_task(claim)
    a = claim.arm(arm)
    return {
        "mode": "live",
        "endpoint": label,
        "replicas": [public_url(r) for r in endpoint.replicas],
        "model": endpoint.model,
        "api": endpoint.api,
        "max_tokens": b,
        "temperature": task.temperature,
        "top_p": task.top_p,
        "seed": task.seed,
        "stop": list(v.stop),
        "prompt_template": a.prompt or task.prompt,
        "system_prompt": a.system_prompt,
        "budget_source": how,
        **task_settings.get(arm, {}),
        **_versions(endpoint),
    }


def _run_summary(stats: dict[str, RunStats], variants: list[Variant], frames: list[pd.DataFrame]) -> dict:
    """What the run cost per arm, how each variant was made, and how many outputs each endpoint produced."""
    served: dict[str, dict[str, int]] = {arm: {} for arm in stats}
    for f in frames:
        for (arm, url), count in f.groupby(["arm", "served_by"]).size().items():
            served[arm][url] = served[arm].get(url, 0) + int(count)
    return {
        arm: {
            "served_by": served[arm],
            "requests": s.requests,
            "cached": s.cached,
            "completion_tokens_generated": s.completion_tokens,
            "derived": s.derived,
            "sweep_checked": s.sweep_checked,
            "sweep_mismatches": s.sweep_mismatches,
            "variants": {v.name: v.how for v in variants},
        }
        for arm, s in stats.items()
    }


def _score(claim: Claim, frames: list[pd.DataFrame], task_scorers: dict) -> tuple[pd.DataFrame, dict]:
    """The generations' table with every scoring applied, and the scorings' notes."""
    table = pd.concat(frames, ignore_index=True)
    from audit.importers import apply_scorings

    table["extracted"] = None
    scoring_notes: dict = {}
    table, probs = apply_scorings(
        table.assign(scores=[{}] * len(table)),
        claim.scorings() or list(task_scorers) or ["exact"],
        "jsonl",
        str(claim.path),
        {**task_scorers, **claim.scorers},
        scoring_notes,
    )
    if probs:
        raise InputError(probs)
    return table, scoring_notes


def drawn_subset(v: Variant, k: int, seed: int) -> Variant:
    """The variant restricted to its first ``k`` items in a sequential audit's draw order (`audit.stopping`), in the
    dataset's order."""
    from audit.stopping import drawn_first

    mask = drawn_first([it.id for it in v.items], k, seed)
    idx = np.flatnonzero(mask)
    return Variant(
        v.name,
        [v.items[i] for i in idx],
        v.source,
        {arm: [ps[i] for i in idx] for arm, ps in v.prompts.items()},
        [v.targets[i] for i in idx],
        v.budgets,
        v.how,
        v.stop,
    )


def run_live(
    claim: Claim,
    cache=None,
    progress: ProgressFactory | None = None,
    plan: Plan | None = None,
    upto: int | None = None,
    draw_seed: int | None = None,
    planned: tuple[list[Variant], dict, dict] | None = None,
    executor: Any = None,
) -> tuple[Records, dict[str, RunStats]]:
    """Generate every arm × variant × budget (cache first) and return Records plus what it cost. ``upto`` and
    ``draw_seed`` (a sequential audit's look): only the first ``upto`` drawn items of the default variant and the
    same share of each other variant's (`audit.stopping.share`); the smaller budgets' spot checks are then the first
    drawn items, so every look checks the same ones. ``planned``: `plan_variants`'s result, when the caller has it
    (a sequential audit reads the dataset once, not at every look). ``executor``: where the requests run
    (`audit.generation.http.run_generations`; None, the in-process asyncio client)."""
    from audit.generation.types import public_url

    variants, task_scorers, task_settings = planned if planned is not None else plan_variants(claim, plan)
    if upto is not None and draw_seed is not None:
        from audit.stopping import share

        n0 = len(variants[0].items)
        variants = [drawn_subset(v, share(upto, n0, len(v.items)), draw_seed) for v in variants]
    announce = getattr(progress, "plan", None)
    if announce is not None:  # a progress that reports an overall ETA needs the stages ahead
        announce(planned_stages(claim, variants))
    frames: list[pd.DataFrame] = []
    sources: list[LogSource] = []
    settings: dict[str, dict[int, dict[str, Any]]] = {}
    stats: dict[str, RunStats] = {}
    for arm in ARMS:
        endpoint = _endpoint(claim, arm)
        st = RunStats()
        stats[arm] = st
        settings[arm] = {}
        label = "embedded" if endpoint.is_embedded else public_url(endpoint.url)
        for v in variants:
            by_budget, how = _generate(claim, endpoint, arm, v, st, (cache, progress, executor), draw_seed)
            for b in v.budgets:
                gens = by_budget[b]
                frames.append(_frame(claim, arm, v, b, gens, label))
                sources.append(
                    LogSource(
                        arm,
                        b,
                        f"live:{label} ({endpoint.model}, {v.name}: {how[b]})",
                        hashlib.sha256("\x00".join(g.text for g in gens).encode()).hexdigest(),
                        len(gens),
                    )
                )
            if v.name != DEFAULT_VARIANT:
                continue
            for b in v.budgets:
                settings[arm][b] = _budget_settings(claim, arm, endpoint, label, v, b, how[b], task_settings)
    run = _run_summary(stats, variants, frames)
    table, scoring_notes = _score(claim, frames, task_scorers)
    where = {(arm, v.name, b): f"live run of {arm} ({v.name})" for arm in ARMS for v in variants for b in v.budgets}
    return build_records([table], sources, settings, where, run, scoring_notes=scoring_notes), stats


def planned_stages(claim: Claim, variants: list[Variant]) -> list[tuple[str, int]]:
    """The generation stages :func:`_generate` will run, in order, with their expected item counts (labels as it
    gives them): every budget when sampling or with one budget; else the largest budget, then at each smaller one
    the spot-check items (and any item the tokenizer cannot cut, which is known only then)."""
    task = _live_task(claim)
    out: list[tuple[str, int]] = []
    for arm in ARMS:
        for v in variants:
            n = len(v.items)
            if task.temperature != 0.0 or len(v.budgets) == 1:
                out += [(f"{arm}/{v.name}/{b}", n) for b in v.budgets]
                continue
            out.append((f"{arm}/{v.name}/{v.budgets[-1]}", n))
            check = min(task.sweep_check, n)
            out += [(f"{arm}/{v.name}/{b} (cuts + check)", check) for b in v.budgets[:-1] if check]
    return out


def _requests_at(claim: Claim, arm: str, v: Variant, budget: int, logprobs: int | None, subset=None) -> list:
    """One arm's generation requests for a variant's items (all, or those at the indices in ``subset``)."""
    from audit.generation.types import GenerationRequest

    task = _live_task(claim)
    a = claim.arm(arm)
    idx = range(len(v.items)) if subset is None else subset
    return [
        GenerationRequest(
            item_id=v.items[i].id,
            prompt=v.prompts[arm][i],
            system_prompt=a.system_prompt,
            max_tokens=budget,
            temperature=task.temperature,
            top_p=task.top_p,
            stop=v.stop,
            seed=task.seed,
            logprobs=logprobs,
        )
        for i in idx
    ]


def _generate(claim: Claim, endpoint, arm: str, v: Variant, st: RunStats, aids: tuple, draw_seed=None):
    """Generations of one arm × variant at each of its budgets, and how each budget was obtained. ``aids``: the
    cache, the progress factory and the executor."""
    from audit.generation.http import run_generations, tokenize, truncate_to_tokens
    from audit.generation.types import TruncationError

    task = _live_task(claim)
    cache, progress, executor = aids

    def requests_at(budget: int, logprobs: int | None, subset=None) -> list:
        return _requests_at(claim, arm, v, budget, logprobs, subset)

    def generate(reqs: list, label: str) -> list:
        cb = progress(label, len(reqs)) if progress else None
        gens = run_generations(
            endpoint, reqs, cache, progress=cb, label=label, seed=claim.options.seed, executor=executor
        )
        st.requests += sum(not g.cached for g in gens)
        st.cached += sum(g.cached for g in gens)
        st.completion_tokens += sum((g.completion_tokens or 0) for g in gens if not g.cached)
        return gens

    budgets = v.budgets
    top = budgets[-1]
    by_budget: dict[int, list] = {}
    how: dict[int, str] = {}
    if task.temperature != 0.0 or len(budgets) == 1:
        for b in budgets:
            by_budget[b] = generate(requests_at(b, None), f"{arm}/{v.name}/{b}")
            how[b] = "generated"
        return by_budget, how
    # Token boundaries for the cut come from the endpoint's tokenizer when it has one: asking for logprobs makes
    # llama.cpp compute full-vocabulary logits for every prompt token, many times slower on a 262k vocabulary.
    lp = None if endpoint.is_embedded or tokenize(endpoint, "1 + 1") is not None else 1
    full_reqs = requests_at(top, lp)
    by_budget[top] = generate(full_reqs, f"{arm}/{v.name}/{top}")
    how[top] = "generated"
    check_idx = _check_items(claim, v, draw_seed)
    for b in budgets[:-1]:
        # Derive each item by cutting its longest run; an item whose cut cannot be made exactly (the tokenizer does
        # not round-trip its text) is generated for real, together with the spot-check items.
        derived: list = [None] * len(v.items)
        uncut = []
        for i, (g, r) in enumerate(zip(by_budget[top], full_reqs)):
            try:
                derived[i] = truncate_to_tokens(g, b, endpoint, request=r)
            except TruncationError:
                uncut.append(i)
        checked = [i for i in check_idx if i not in uncut]
        real_idx = sorted(set(uncut) | set(checked))
        real = dict(
            zip(
                real_idx,
                generate(requests_at(b, None, real_idx), f"{arm}/{v.name}/{b} (cuts + check)") if real_idx else [],
            )
        )
        st.sweep_checked += len(checked)
        mismatches = [
            {"budget": b, "variant": v.name, "item_id": v.items[i].id, "derived": derived[i].text, "real": real[i].text}
            for i in checked
            if real[i].text != derived[i].text
        ]
        st.sweep_mismatches.extend(mismatches)
        if mismatches:
            by_budget[b] = generate(requests_at(b, None), f"{arm}/{v.name}/{b}")
            how[b] = "generated (the one-run derivation failed its spot check)"
            continue
        by_budget[b] = [real[i] if i in uncut else derived[i] for i in range(len(v.items))]
        st.derived += len(v.items) - len(uncut)
        how[b] = f"derived from the {top}-token run (spot-checked on {len(checked)} items" + (
            f"; {len(uncut)} item(s) the tokenizer could not cut exactly generated for real)" if uncut else ")"
        )
    return by_budget, how


def _check_items(claim: Claim, v: Variant, draw_seed: int | None) -> list[int]:
    """The items whose smaller-budget cut is checked against a real generation: drawn at random (seeded); in a
    sequential audit the first drawn items, the same at every look."""
    size = min(_live_task(claim).sweep_check, len(v.items))
    if draw_seed is not None:
        from audit.measure import draw_order

        return sorted(draw_order([it.id for it in v.items], draw_seed)[:size].tolist())
    rng = np.random.default_rng([claim.options.seed, 7])
    return sorted(rng.choice(len(v.items), size=size, replace=False).tolist())


def _versions(endpoint) -> dict[str, Any]:
    from importlib import metadata

    out: dict[str, Any] = {}
    if endpoint.is_embedded:
        try:
            out["llama_cpp_python"] = metadata.version("llama-cpp-python")
        except metadata.PackageNotFoundError:
            pass
        try:
            from audit.generation.model_file import model_identity

            out["model_file"] = model_identity(endpoint.model_path)
        except Exception:  # identity is provenance, not a precondition
            pass
    return out
