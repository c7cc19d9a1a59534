"""settings: were both arms run on the same infrastructure, apart from what the treatment is meant to change?

The effective settings of each arm (``records.settings``: lm-eval's results file — generation kwargs, task config,
model arguments, versions — or a live run's request settings) are put side by side for every budget, after
normalising the names different tools use for one thing (``max_gen_toks``/``max_tokens``, ``until``/``stop``,
``doc_to_text``/``prompt_template``, ``system_instruction``/``system_prompt``, ``num_fewshot``/``fewshot``) and
applying lm-eval's command-line ``--gen_kwargs`` over the task's ``generation_kwargs`` (as lm-eval does). Every
difference not declared in ``claim.treatment_changes`` is flagged: critical when it is a sampling setting
(temperature, top_p, top_k, seed, do_sample, ...), the budget, the stop sequences or a harness version (lm-eval,
llama-cpp-python, git hash); major otherwise (prompt, template, model arguments beyond the model's name, API or
model type). A declared name covers its aliases; a group name (``sampling``, ``budget``, ``stop``, ``harness``,
``prompt``, ``model``) covers the group; declaring ``prompt_template`` also covers lm-eval's task name and task hash,
which follow the template. Differences the scoring check already compares (filter list, metric list, task version,
doc_to_target) are shown and left to it.
When the claim declares no change at all, a prompt difference is still flagged (major) but does not move the
verdict — it presumably is the treatment; declare it.

Never flagged, always shown side by side:

* The model identity — ``MODEL_IDENTITY``: the model name, path, file, alias, revision or hash, and the parts of
  lm-eval's ``model_args`` that only name the model (``pretrained=``, ``model=``, ``peft=``, ``base_url=``, ...).
  Comparing two models is the claim itself, not an infrastructure difference; the table marks it "differs (the
  models compared)". What ``model_args`` says beyond the name (``dtype``, ``max_length``, ...) is still compared.
  lm-eval's top-level ``model`` is its model *type* (``hf``, ``vllm``, ``local-completions``: the backend), shown as
  ``model_type`` and compared like the API.
* Values the importer had to guess — the keys listed in an arm's ``settings["guessed"]``; on lm-eval logs without a
  ``results_*.json`` the task name, which is then derived from the samples file name. They are shown as
  "not compared (guessed)".

Live runs also record whether the one-run budget sweep (greedy generations at the largest budget truncated to the
smaller ones) matched real runs at the smaller budgets (``records.run[arm]["sweep_mismatches"]``); any mismatch is
flagged (major, no verdict impact: the mismatching budgets were re-generated) with the items as evidence.

Without recorded settings (generic JSONL logs, reported counts only) the check returns nothing.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from audit.checks._common import CheckSpec, Context

from audit.check_params import SettingsParams
from audit.findings import Finding, Impact, Outcome, Severity

NAME = "settings"

# Canonical name ← the names tools use for it.
ALIASES = {
    "max_gen_toks": "max_tokens",
    "n_predict": "max_tokens",
    "max_new_tokens": "max_tokens",
    "until": "stop",
    "stop_sequences": "stop",
    "doc_to_text": "prompt_template",
    "prompt": "prompt_template",
    "template": "prompt_template",
    "system_instruction": "system_prompt",
    "system": "system_prompt",
    "num_fewshot": "fewshot",
    "lm_eval_task": "task",  # a live run of an lm-eval task: the arm's task is its prompt variant
    "llama-cpp-python": "llama_cpp_python",
}
GROUPS = {
    "sampling": [
        "temperature",
        "top_p",
        "top_k",
        "min_p",
        "seed",
        "do_sample",
        "num_beams",
        "typical_p",
        "repetition_penalty",
        "presence_penalty",
        "frequency_penalty",
    ],
    "budget": ["max_tokens"],
    "stop": ["stop"],
    "harness": ["lm_eval_version", "git_hash", "llama_cpp_python", "transformers_version", "vllm_version"],
    "prompt": [
        "prompt_template",
        "system_prompt",
        "chat_template",
        "fewshot",
        "task",
        "task_hash",
        "apply_chat_template",
        "fewshot_as_multiturn",
    ],
    "model": [
        "model",
        "model_args",
        "model_name",
        "model_file",
        "pretrained",
        "model_path",
        "model_alias",
        "model_name_sanitized",
        "model_sha",
        "model_revision",
    ],
    "api": ["api", "model_type"],
}
# Keys that only name the model being compared (the claim itself): shown, never an undeclared difference.
MODEL_IDENTITY = frozenset(
    {
        "model",
        "model_name",
        "model_file",
        "pretrained",
        "model_path",
        "model_alias",
        "model_name_sanitized",
        "model_sha",
        "model_revision",
    }
)
# The parts of lm-eval's model_args that only name the model (or where it is served).
MODEL_ARGS_IDENTITY = frozenset(
    {
        "pretrained",
        "model",
        "model_name",
        "path",
        "model_path",
        "peft",
        "delta",
        "revision",
        "tokenizer",
        "base_url",
        "model_alias",
    }
)
IDENTITY_STATUS = "differs (the models compared)"
GUESSED_STATUS = "not compared (guessed)"
CRITICAL_GROUPS = ("sampling", "budget", "stop", "harness")
# A declared name that also covers other keys (lm-eval makes a prompt variant its own task).
IMPLIES = {"prompt_template": ["task", "task_hash"], "model": GROUPS["model"]}
# Bookkeeping that differs between arms by construction, not a setting.
IGNORED = {
    "files",
    "results_file",
    "format",
    "mode",
    "endpoint",
    "replicas",
    "budget_source",
    "generation_kwargs",
    "gen_kwargs_cli",
    "sweep_checked",
    "sweep_mismatches",
    "guessed",
}


Params = SettingsParams


def canonical(key: str) -> str:
    k = str(key).strip().lower().replace("-", "_")
    return ALIASES.get(k, ALIASES.get(str(key), k))


def group_of(key: str) -> str:
    from audit.checks.scoring import _COMPARED

    for g, keys in GROUPS.items():
        if key in keys:
            return g
    return "scoring" if key in _COMPARED else "other"


def effective(settings: dict[str, Any]) -> dict[str, Any]:
    """Flatten one arm's settings at one budget into canonical name → value.

    Top-level keys first, then the task's ``generation_kwargs`` over them, then lm-eval's command-line
    ``gen_kwargs`` over those (lm-eval applies ``--gen_kwargs`` on top of the task's generation kwargs).
    """
    out: dict[str, Any] = {}
    lmeval = settings.get("format") == "lm-eval"
    for k, v in settings.items():
        if k in IGNORED or v is None:
            continue
        # lm-eval's --model is the model type (hf, vllm, local-completions), not the model's name.
        out["model_type" if lmeval and k == "model" else canonical(k)] = v
    gk = settings.get("generation_kwargs")
    if isinstance(gk, dict):
        out.update({canonical(k): v for k, v in gk.items() if v is not None})
    cli = settings.get("gen_kwargs_cli")
    if isinstance(cli, str) and cli.strip():
        for part in cli.split(","):
            if "=" in part:
                k, v = part.split("=", 1)
                out[canonical(k)] = _parse_scalar(v.strip())
    elif isinstance(cli, dict):
        out.update({canonical(k): v for k, v in cli.items()})
    return out


def guessed(settings: dict[str, Any]) -> set[str]:
    """Canonical keys whose values the importer guessed rather than read: ``settings["guessed"]`` when the importer
    marks them; on lm-eval logs without a results file, the task name (derived from the samples file name)."""
    keys = {canonical(k) for k in settings.get("guessed") or []}
    if settings.get("format") == "lm-eval" and not settings.get("results_file"):
        keys.add("task")
    return keys


def model_args_rest(v: Any) -> Any:
    """lm-eval ``model_args`` without the parts that only name the model: what is left is a setting to compare."""
    if isinstance(v, str):
        parts = [p.split("=", 1) for p in v.split(",") if p.strip()]
        if not all(len(p) == 2 for p in parts):
            return v
        return {k.strip(): _parse_scalar(x.strip()) for k, x in parts if k.strip().lower() not in MODEL_ARGS_IDENTITY}
    if isinstance(v, dict):
        return {k: x for k, x in v.items() if str(k).lower() not in MODEL_ARGS_IDENTITY}
    return v


def is_identity_difference(key: str, vb: Any, vt: Any) -> bool:
    """The two values differ only in what names the model being compared."""
    if key in MODEL_IDENTITY:
        return True
    if key == "model_args":
        return _norm(model_args_rest(vb)) == _norm(model_args_rest(vt))
    return False


def _parse_scalar(v: str) -> Any:
    low = v.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    try:
        f = float(v)
    except ValueError:
        return v
    return int(f) if f.is_integer() else f


def _norm(v: Any) -> str:
    """A comparable form: numbers by value (0 == 0.0 == "0"), lists and dicts by their JSON."""
    if isinstance(v, bool):
        return json.dumps(v)
    if isinstance(v, (int, float)):
        return repr(float(v)) if math.isfinite(float(v)) else str(v)
    if isinstance(v, str):
        p = _parse_scalar(v.strip())
        if isinstance(p, (int, float)) and not isinstance(p, bool):
            return repr(float(p))
        return json.dumps(v)
    if isinstance(v, tuple):
        v = list(v)
    try:
        return json.dumps(v, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(v)


def _show(v: Any, n: int = 80) -> str:
    s = v if isinstance(v, str) else json.dumps(v, default=str)
    s = s.replace("\n", "\\n")
    return s if len(s) <= n else s[:n] + "…"


def _covered_one(name: str) -> set[str]:
    c = canonical(name)
    return {c, *GROUPS.get(c, []), *IMPLIES.get(c, [])}


def covered(declared: list[str]) -> tuple[set[str], list[str]]:
    """The canonical keys covered by claim.treatment_changes, and the declared names that match nothing known."""
    keys: set[str] = set()
    unknown = []
    known = {k for ks in GROUPS.values() for k in ks}
    for d in declared:
        keys |= _covered_one(d)
        if canonical(d) not in known and canonical(d) not in GROUPS:
            unknown.append(d)
    return keys, unknown


def run(ctx: Context, params: Params) -> list[Finding]:
    rec = ctx.records
    if rec is None:
        return []
    findings = _compare(ctx, params)
    findings.extend(_sweep(ctx, params))
    return findings


@dataclass(frozen=True)
class _SideBySide:
    """Both arms' effective settings per budget, each row with its status."""

    budgets: list  # the budgets both arms record settings for
    table: list[dict]  # every setting of either arm per budget, with its status
    diffs: dict[str, list[dict]]  # undeclared differences: setting → its rows
    seen_any: bool  # some setting was compared (not only shown as guessed)
    declared_seen: dict[str, bool]  # declared setting recorded in both arms → whether it differs at some budget


def _compare(ctx: Context, params: Params) -> list[Finding]:
    """The arms' effective settings side by side: every undeclared difference, declared changes the settings do not
    show, declared names that match nothing, and the table."""
    declared = list(ctx.claim.claim.treatment_changes)
    cov, unknown_declared = covered(declared)
    sbs = _side_by_side(ctx, params, cov)
    if not sbs.seen_any:
        return []
    prov = ctx.provenance(
        source="each arm's recorded effective settings (lm-eval results_*.json or the live run)",
        treatment_changes=declared,
        aliases=ALIASES,
    )
    findings = _undeclared(sbs.diffs, declared, prov)
    findings.extend(_declared_absent(declared, sbs, prov))
    if unknown_declared:
        findings.append(
            Finding(
                NAME,
                "unknown_declared_change",
                Outcome.info,
                f"claim.treatment_changes names {unknown_declared}, which match no setting this check knows",
                detail=f"Known names: {sorted({k for ks in GROUPS.values() for k in ks})}; groups: {sorted(GROUPS)}.",
                provenance=prov,
            )
        )
    findings.append(_side_by_side_finding(sbs, prov))
    return findings


def _status(k: str, vb: Any, vt: Any, cov: set[str], scoring_keys) -> str:
    """How one recorded setting compares between the arms: same, unknown in one arm, or which kind of difference."""
    if vb is None or vt is None:
        return "unknown in one arm"
    if _norm(vb) == _norm(vt):
        return "same"
    if k in scoring_keys:
        return "differs (see the scoring check)"
    if k in cov:
        return "differs (declared)"
    if is_identity_difference(k, vb, vt):
        return IDENTITY_STATUS
    return "differs"


def _side_by_side(ctx: Context, params: Params, cov: set[str]) -> _SideBySide:
    """Compare every setting either arm records at each budget both record, after normalising names."""
    from audit.checks.scoring import _COMPARED as SCORING_KEYS

    st = ctx.samples.settings or {}
    base, treat = st.get("baseline") or {}, st.get("treatment") or {}
    budgets = sorted(set(base) & set(treat), key=lambda b: (b is None, b))
    ignore = IGNORED | {canonical(k) for k in params.ignore}
    table: list[dict] = []
    diffs: dict[str, list[dict]] = {}
    seen_any = False
    declared_seen: dict[str, bool] = {}
    for b in budgets:
        eb, et = effective(base[b] or {}), effective(treat[b] or {})
        guesses = guessed(base[b] or {}) | guessed(treat[b] or {})
        keys = [k for k in dict.fromkeys([*eb, *et]) if k not in ignore]
        for k in keys:
            vb, vt = eb.get(k), et.get(k)
            if vb is None and vt is None:
                continue
            g = group_of(k)
            if k in guesses:
                table.append(
                    {"budget": b, "setting": k, "group": g, "baseline": vb, "treatment": vt, "status": GUESSED_STATUS}
                )
                continue
            seen_any = True
            status = _status(k, vb, vt, cov, SCORING_KEYS)
            if status == "differs":
                diffs.setdefault(k, []).append({"budget": b, "setting": k, "group": g, "baseline": vb, "treatment": vt})
            if k in cov and vb is not None and vt is not None:
                declared_seen[k] = declared_seen.get(k, False) or status.startswith("differs")
            table.append({"budget": b, "setting": k, "group": g, "baseline": vb, "treatment": vt, "status": status})
    return _SideBySide(budgets, table, diffs, seen_any, declared_seen)


def _undeclared(diffs: dict[str, list[dict]], declared: list[str], prov: dict) -> list[Finding]:
    """One flag per undeclared difference: critical for sampling, budget, stop and harness settings, else major."""
    findings: list[Finding] = []
    for k, rows in sorted(diffs.items(), key=lambda kv: (kv[1][0]["group"] not in CRITICAL_GROUPS, kv[0])):
        g = rows[0]["group"]
        critical = g in CRITICAL_GROUPS
        impact = Impact.fragile if critical or declared else Impact.none
        vals = f"baseline {_show(rows[0]['baseline'])} vs treatment {_show(rows[0]['treatment'])}"
        where = f"at budget {rows[0]['budget']}" if len(rows) == 1 else f"at {len(rows)} budgets"
        detail = (
            f"{k} ({g}) is not among the declared treatment changes "
            f"{declared if declared else '(claim.treatment_changes is empty)'}. "
        )
        if critical:
            detail += (
                "Sampling, budget, stop sequences and harness versions change scores by themselves: re-run one "
                "arm with the other's setting."
            )
        elif declared:
            detail += "Either declare it in claim.treatment_changes or re-run with matched settings."
        else:
            detail += "Declare the treatment's intended changes in claim.treatment_changes so the rest can be checked."
        findings.append(
            Finding(
                NAME,
                "undeclared_difference",
                Outcome.flag,
                f"The arms differ in {k} {where}: {vals}",
                detail=detail,
                severity=Severity.critical if critical else Severity.major,
                impact=impact,
                statistic={"setting": k, "group": g, "budgets": [r["budget"] for r in rows]},
                rows=rows,
                provenance=prov,
            )
        )
    return findings


def _declared_absent(declared: list[str], sbs: _SideBySide, prov: dict) -> list[Finding]:
    """Declared treatment changes that both arms record and that are the same in both (minor)."""
    findings: list[Finding] = []
    for d in declared:
        keys = _covered_one(d)
        known = {k: v for k, v in sbs.declared_seen.items() if k in keys}
        if known and not any(known.values()):
            findings.append(
                Finding(
                    NAME,
                    "declared_change_absent",
                    Outcome.flag,
                    f"{d} is declared as the treatment's change but is the same in both arms",
                    detail="The recorded settings show no difference where the claim says the treatment differs: check "
                    "that the treatment run really used the changed setting.",
                    severity=Severity.minor,
                    impact=Impact.none,
                    rows=[r for r in sbs.table if r["setting"] in keys],
                    provenance=prov,
                )
            )
    return findings


def _side_by_side_finding(sbs: _SideBySide, prov: dict) -> Finding:
    """The table of both arms' settings: info when some difference is undeclared, else the pass that they match."""
    table, diffs = sbs.table, sbs.diffs
    if diffs:
        return Finding(
            NAME,
            "side_by_side",
            Outcome.info,
            f"Effective settings of both arms at {len(sbs.budgets)} budget(s); {len(diffs)} undeclared difference(s)",
            detail="The model identity is the comparison itself and is not counted; values the "
            "importer had to guess are shown, not compared.",
            rows=table,
            provenance=prov,
        )
    n_decl = len({r["setting"] for r in table if r["status"] == "differs (declared)"})
    n_id = len({r["setting"] for r in table if r["status"] == IDENTITY_STATUS})
    excepts = [
        *([f"the {n_decl} declared change(s)"] if n_decl else []),
        *(["the names of the models compared"] if n_id else []),
    ]
    return Finding(
        NAME,
        "matched",
        Outcome.passed,
        "The arms' effective settings match" + (f" except {' and '.join(excepts)}" if excepts else ""),
        detail="Rows: every recorded setting of both arms, per budget. The model identity is the comparison "
        "itself; values the importer had to guess are shown, not compared.",
        rows=table,
        provenance=prov,
    )


def _sweep(ctx: Context, params: Params) -> list[Finding]:
    run_info = ctx.samples.run or {}
    findings = []
    for arm in ("baseline", "treatment"):
        mism = list((run_info.get(arm) or {}).get("sweep_mismatches") or [])
        if not mism:
            continue
        budgets = sorted({m.get("budget") for m in mism if m.get("budget") is not None})
        ev = [
            {
                "item_id": m.get("item_id"),
                "budget": m.get("budget"),
                "derived_output": _clip(m.get("derived")),
                "real_output": _clip(m.get("real")),
                "reason": m.get("reason"),
            }
            for m in mism[: params.max_evidence]
        ]
        findings.append(
            Finding(
                NAME,
                "sweep_mismatch",
                Outcome.flag,
                f"{arm}: the one-run budget sweep did not match real runs at budget(s) {budgets} "
                f"({len(mism)} mismatch(es))",
                detail="Generations at the largest budget truncated to a smaller one differed from a real run at the "
                "smaller budget (non-deterministic server, or tokenisation that does not round-trip). Those "
                "budgets were generated for real instead, so the numbers stand; the sweep shortcut is not safe on "
                "this server.",
                severity=Severity.major,
                impact=Impact.none,
                statistic={
                    "arm": arm,
                    "budgets": budgets,
                    "mismatches": len(mism),
                    "checked": (run_info.get(arm) or {}).get("sweep_checked"),
                },
                evidence=ev,
                provenance=ctx.provenance(source="records.run (live mode sweep check)"),
            )
        )
    return findings


def _clip(s: Any, n: int = 600) -> Any:
    if not isinstance(s, str):
        return s
    return s if len(s) <= n else s[:n] + " …"


SPEC = CheckSpec(
    NAME,
    run,
    Params,
    needs_samples=True,
    description="the arms' effective settings side by side; differences not declared as treatment "
    "changes; budget-sweep derivation mismatches",
)
"""This check in the registry (:data:`audit.checks.REGISTRY`)."""
