"""Live mode: generate both arms on their endpoints and turn the generations into Records.

The plan is arms × variants × budgets. With greedy decoding a budget sweep costs one run per arm: generate at the
largest budget (asking for token logprobs, which carry the token boundaries) and derive every smaller budget by
cutting the token sequence (DESIGN.md, "Cost"). A few items per arm are also generated for real at each smaller
budget and compared with the derived text; any mismatch is recorded and shown by the `infrastructure` finding, and
the derived generations are then replaced by real runs for the whole budget. Sampled decoding runs every budget.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np
import pandas as pd

from audit.claim import Claim
from audit.errors import InputError, Problem
from audit.records import ARMS, DEFAULT_VARIANT, Records, Source, build_records

ProgressFactory = Callable[[str, int], Callable[[int, int], None]]


@dataclass(frozen=True)
class Item:
    id: str
    row: dict[str, Any]
    line: int


@dataclass
class RunStats:
    """What the live run cost, per arm (for the report and the sweep benchmark)."""

    requests: int = 0
    cached: int = 0
    completion_tokens: int = 0
    derived: int = 0
    sweep_checked: int = 0
    sweep_mismatches: list[dict] = field(default_factory=list)


def load_dataset(claim: Claim) -> list[Item]:
    task = claim.task
    path = claim.base_dir / task.dataset
    problems: list[Problem] = []
    items: list[Item] = []
    seen: dict[str, int] = {}
    with open(path, encoding="utf-8") as fh:
        for i, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except json.JSONDecodeError as exc:
                problems.append(Problem(f"not valid JSON ({exc.msg})", file=str(path), line=i,
                                        fix="one JSON object per line"))
                continue
            if not isinstance(row, dict) or task.id_field not in row:
                problems.append(Problem(f"row has no {task.id_field!r} field", file=str(path), line=i,
                                        fix=f"add an id to every row, or set task.id_field"))
                continue
            rid = str(row[task.id_field])
            if rid in seen:
                problems.append(Problem(f"id {rid!r} repeats line {seen[rid]}", file=str(path), line=i,
                                        fix="item ids must be unique"))
                continue
            seen[rid] = i
            items.append(Item(rid, row, i))
            if task.limit and len(items) >= task.limit:
                break
    if problems:
        raise InputError(problems[:20])
    if not items:
        raise InputError([Problem("the dataset has no items", file=str(path))])
    return items


def _endpoint(claim: Claim, arm: str):
    from audit.runner import Endpoint

    a = claim.arm(arm)
    return Endpoint(url=a.endpoint, model=a.model, api=a.api, replicas=tuple(a.replicas), api_key_env=a.api_key_env,
                    max_concurrency=a.max_concurrency, timeout_s=a.timeout_s, max_retries=a.max_retries,
                    model_path=a.model_path, n_threads=a.n_threads, n_batch=a.n_batch)


def run_live(claim: Claim, cache=None, progress: ProgressFactory | None = None) -> tuple[Records, dict[str, RunStats]]:
    """Generate every arm × budget (cache first) and return Records plus what it cost."""
    from audit.prompts import render_all
    from audit.runner import GenerationRequest, TruncationError, public_url, run_generations, truncate_to_tokens

    task = claim.task
    items = load_dataset(claim)
    ds_path = str(claim.base_dir / task.dataset)
    lines = [it.line for it in items]
    rows = [it.row for it in items]
    targets = render_all(task.target, rows, "task.target", ds_path, lines)
    budgets = claim.budgets()
    top = budgets[-1]
    greedy = task.temperature == 0.0
    frames, sources, settings, stats, run = [], [], {}, {}, {}
    for arm in ARMS:
        a = claim.arm(arm)
        endpoint = _endpoint(claim, arm)
        template = a.prompt or task.prompt
        prompts = render_all(template, rows, f"arms.{arm}.prompt" if a.prompt else "task.prompt", ds_path, lines)
        st = RunStats()
        stats[arm] = st

        def requests_at(budget: int, logprobs: int | None, subset=None) -> list:
            idx = range(len(items)) if subset is None else subset
            return [GenerationRequest(item_id=items[i].id, prompt=prompts[i], system_prompt=a.system_prompt,
                                      max_tokens=budget, temperature=task.temperature, top_p=task.top_p,
                                      stop=tuple(task.stop), seed=task.seed, logprobs=logprobs) for i in idx]

        def generate(reqs: list, label: str) -> list:
            cb = progress(label, len(reqs)) if progress else None
            gens = run_generations(endpoint, reqs, cache, progress=cb, label=label, seed=claim.options.seed)
            st.requests += sum(not g.cached for g in gens)
            st.cached += sum(g.cached for g in gens)
            st.completion_tokens += sum((g.completion_tokens or 0) for g in gens if not g.cached)
            return gens

        by_budget: dict[int, list] = {}
        how: dict[int, str] = {}
        if greedy and len(budgets) > 1:
            by_budget[top] = generate(requests_at(top, 1), f"{arm}/{DEFAULT_VARIANT}/{top}")
            how[top] = "generated"
            rng = np.random.default_rng([claim.options.seed, 7])
            check_idx = sorted(rng.choice(len(items), size=min(task.sweep_check, len(items)), replace=False).tolist())
            for b in budgets[:-1]:
                try:
                    derived = [truncate_to_tokens(g, b, endpoint, request=r)
                               for g, r in zip(by_budget[top], requests_at(top, 1))]
                except TruncationError as exc:
                    st.sweep_mismatches.append({"budget": b, "item_id": None, "reason": str(exc).splitlines()[0]})
                    derived = None
                if derived is not None and check_idx:
                    real = generate(requests_at(b, None, check_idx), f"{arm}/{DEFAULT_VARIANT}/{b} (sweep check)")
                    st.sweep_checked += len(check_idx)
                    for i, g in zip(check_idx, real):
                        if g.text != derived[i].text:
                            st.sweep_mismatches.append({"budget": b, "item_id": items[i].id,
                                                        "derived": derived[i].text, "real": g.text})
                if derived is None or any(m["budget"] == b for m in st.sweep_mismatches):
                    by_budget[b] = generate(requests_at(b, None), f"{arm}/{DEFAULT_VARIANT}/{b}")
                    how[b] = "generated (derivation failed the check)"
                else:
                    by_budget[b] = derived
                    st.derived += len(derived)
                    how[b] = f"derived from the {top}-token run"
        else:
            for b in budgets:
                by_budget[b] = generate(requests_at(b, None), f"{arm}/{DEFAULT_VARIANT}/{b}")
                how[b] = "generated"
        label = f"live:{public_url(endpoint.url) if not endpoint.is_embedded else 'embedded'}"
        settings[arm] = {}
        for b in budgets:
            gens = by_budget[b]
            frames.append(pd.DataFrame({
                "arm": arm, "item_id": [it.id for it in items], "variant": DEFAULT_VARIANT, "budget": b,
                "text": [g.text for g in gens], "target": targets,
                "finish_reason": [g.finish_reason for g in gens],
                "completion_tokens": [g.completion_tokens for g in gens],
                "prompt_hash": [hashlib.sha256(p.encode()).hexdigest() for p in prompts],
                "doc_hash": [hashlib.sha256(json.dumps(it.row, sort_keys=True).encode()).hexdigest() for it in items],
                "source": f"{label} {arm}@{b}", "line": lines,
            }))
            sources.append(Source(arm, b, f"{label} ({endpoint.model}, {how[b]})",
                                  hashlib.sha256("".join(g.text for g in gens).encode()).hexdigest(), len(gens)))
            settings[arm][b] = {
                "mode": "live", "endpoint": "embedded" if endpoint.is_embedded else public_url(endpoint.url),
                "replicas": [public_url(r) for r in endpoint.replicas], "model": endpoint.model, "api": endpoint.api,
                "max_tokens": b, "temperature": task.temperature, "top_p": task.top_p, "seed": task.seed,
                "stop": list(task.stop), "prompt_template": template, "system_prompt": a.system_prompt,
                "budget_source": how[b], **_versions(endpoint),
            }
        run[arm] = {"requests": st.requests, "cached": st.cached,
                                "completion_tokens_generated": st.completion_tokens, "derived": st.derived,
                                "sweep_checked": st.sweep_checked, "sweep_mismatches": st.sweep_mismatches}
    table = pd.concat(frames, ignore_index=True)
    from audit.importers import apply_scorings

    names = claim.scorings() or ["exact"]
    table["extracted"] = None
    table["scoring"] = "__raw__"
    table["score"] = np.nan
    table, probs = apply_scorings(table.assign(scores=[{}] * len(table)), names, "jsonl", str(claim.path),
                                  claim.scorers)
    if probs:
        raise InputError(probs)
    where = {(arm, DEFAULT_VARIANT, b): f"live run of {arm}" for arm in ARMS for b in budgets}
    return build_records([table], sources, settings, where, run), stats


def _versions(endpoint) -> dict[str, Any]:
    from importlib import metadata

    out: dict[str, Any] = {}
    if endpoint.is_embedded:
        try:
            out["llama_cpp_python"] = metadata.version("llama-cpp-python")
        except metadata.PackageNotFoundError:
            pass
        try:
            from audit.embedded import model_identity

            out["model_file"] = model_identity(endpoint.model_path)
        except Exception:  # identity is provenance, not a precondition
            pass
    return out
