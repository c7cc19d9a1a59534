"""Several outputs per item, reduced to one score per item by the arm's rule (``samples.reduce``).

Published code and reasoning results often hold n samples or candidates per item (pass@k, best-of-n, inspect epochs,
self-consistency). They are not independent items: every paired test of the audit runs on one score per item, the
reduction of that item's samples, so the item stays the unit of analysis. The per-item variance of the reduced score
then holds both the spread between items and the sampling noise within an item (for a mean over k samples,
Var = σ²_between + σ²_within / k), which the paired test estimates from the reduced scores themselves — more
samples per item narrow the interval only through σ²_within / k (Miller 2024, arXiv:2411.00640, §2.3).

Rules (per arm; each a function of one item's samples ``s_1 .. s_n`` in their logged order):

* ``mean`` — the mean score (the expected score of one sample);
* ``first`` — the first sample's score;
* ``any`` — the best score (any-of-n correct for 0/1 scores; the oracle best-of-n);
* ``pass@k`` — the unbiased estimator of Chen et al. (2021, arXiv:2107.03374, eq. 1): with c of n samples correct,
  1 − C(n − c, k) / C(n, k); needs 0/1 scores and n ≥ k;
* ``majority`` — self-consistency (Wang et al. 2023): the score of the most frequent answer (the extracted answer,
  or the whole output for a scoring that does not extract; ties go to the answer seen first); an item none of
  whose samples has an answer scores its first sample and counts as unanswered.

The representative output of an item (shown in the report, read by the truncation and mimicry checks) is its first
sample's (``majority``: the first sample with the winning answer). An item counts as answered when any of its
samples was (``first``: when the first was; ``majority``: when some sample had an answer).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from audit.errors import Problem

RULES = ("mean", "first", "any", "majority")
KEYS = ["arm", "variant", "budget", "scoring", "item_id"]
_PASS = re.compile(r"^pass@([1-9]\d*)$")


def parse_rule(rule: str) -> tuple[str, int | None]:
    """("mean" | "first" | "any" | "majority" | "pass@k", k) — raises ValueError for anything else."""
    m = _PASS.match(rule)
    if m:
        return "pass@k", int(m.group(1))
    if rule in RULES:
        return rule, None
    raise ValueError(f"unknown reduction {rule!r}: use mean, first, any, majority or pass@<k> (e.g. pass@5)")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Chen et al. (2021), eq. 1: 1 − C(n − c, k) / C(n, k), computed as a stable product."""
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def _key(answer) -> str | None:
    if answer is None or (isinstance(answer, float) and math.isnan(answer)):
        return None
    a = " ".join(str(answer).split()).lower()
    return a if a and a != "[invalid]" else None


def _numbered(table: pd.DataFrame) -> pd.DataFrame:
    """Decides each row's sample number (the logged order where none is given) and sorts by item, then sample."""
    t = table.copy()
    if "sample" not in t.columns:
        t["sample"] = np.nan
    missing = t["sample"].isna()
    if missing.any():  # repeated ids in a log: the samples in their logged order
        order = t[missing].groupby(KEYS, sort=False, dropna=False).cumcount()
        t.loc[missing, "sample"] = order
    t["sample"] = t["sample"].astype(int)
    return t.sort_values(KEYS + ["sample"], kind="stable")


def _arm_rule(arm: str, rules: dict[str, str | None]) -> tuple[str, int]:
    """Decides an arm's rule and its k (1 unless pass@k); RuntimeError when the claim names no rule for it."""
    text = rules[arm]
    if text is None:  # a validated claim that reduces names a rule for each arm
        raise RuntimeError(f"samples.reduce names no rule for the {arm} arm")
    rule, parsed_k = parse_rule(text)
    return rule, parsed_k if parsed_k is not None else 1  # only pass@k reads k, and it always has one


def _pass_at_k_problem(arm: str, text: str | None, k: int, sub: pd.DataFrame, sizes: pd.Series) -> Problem | None:
    """Decides whether pass@k cannot reduce this arm (scores not 0/1, or an item with fewer than k samples)."""
    vals = sub["score"].to_numpy(dtype=float)
    if not np.all(np.isin(vals, (0.0, 1.0))):
        return Problem(
            f"samples.reduce {text} ({arm}) needs 0/1 scores; the scores include "
            f"{sorted(set(vals[~np.isin(vals, (0.0, 1.0))].tolist()))[:3]}",
            field="samples.reduce",
            fix="use mean or any for continuous scores",
        )
    if int(sizes.min()) < k:
        return Problem(
            f"samples.reduce {text} ({arm}) needs at least {k} samples per item; some item has {int(sizes.min())}",
            field="samples.reduce",
            fix=f"use pass@{int(sizes.min())} or fewer, or give every item {k} samples",
        )
    return None


def _majority(g: pd.DataFrame, answered: np.ndarray) -> tuple[int, bool, bool]:
    """Decides the majority vote: (index of the first sample with the winning answer, whether the scoring extracts
    answers, whether any sample had an answer)."""
    extracted = g["extracted"].tolist()
    extracts = bool(np.isfinite(answered).any())
    keys = [
        _key(a) if extracts else (" ".join(x.split()).lower() if isinstance(x, str) and x.strip() else None)
        for a, x in zip(extracted, g["text"].tolist())
    ]
    counts: dict[str, int] = {}
    for key in keys:
        if key is not None:
            counts[key] = counts.get(key, 0) + 1
    rep = 0
    if counts:
        best = max(counts.values())
        winner = next(key for key in keys if key is not None and counts[key] == best)
        rep = keys.index(winner)
    return rep, extracts, bool(counts)


def _reduce_item(g: pd.DataFrame, rule: str, k: int) -> pd.Series:
    """Decides one item's reduced row under the rule: its score, representative sample and answered flag."""
    scores = g["score"].to_numpy(dtype=float)
    answered = g["answered"].to_numpy(dtype=float)
    rep = 0
    extracts = False
    voted = False
    if rule == "mean":
        score = float(scores.mean())
    elif rule == "first":
        score = float(scores[0])
    elif rule == "any":
        score = float(scores.max())
    elif rule == "pass@k":
        score = pass_at_k(len(scores), int(scores.sum()), k)
    else:  # majority
        rep, extracts, voted = _majority(g, answered)
        score = float(scores[rep])
    row = g.iloc[rep].copy()
    row["score"] = score
    if rule == "majority" and extracts:
        row["answered"] = 1.0 if voted else 0.0
    if rule in ("mean", "any", "pass@k"):
        known = answered[np.isfinite(answered)]
        row["answered"] = float(known.max()) if len(known) else math.nan
    return row


def reduce_samples(
    table: pd.DataFrame, rules: dict[str, str | None]
) -> tuple[pd.DataFrame, pd.DataFrame, dict, list[Problem]]:
    """One row per arm × variant × budget × scoring × item, by each arm's rule. Returns (reduced table, per-sample
    table, {arm: {"rule", "samples_min", "samples_max"}}, problems)."""
    t = _numbered(table)
    per_sample = t[KEYS + ["sample", "score", "answered", "extracted", "text"]].reset_index(drop=True)
    problems: list[Problem] = []
    info: dict = {}
    out_rows = []
    for arm, sub in t.groupby("arm", sort=False):
        rule, k = _arm_rule(arm, rules)
        sizes = sub.groupby(KEYS, sort=False, dropna=False).size()
        info[arm] = {"rule": rules[arm], "samples_min": int(sizes.min()), "samples_max": int(sizes.max())}
        if rule == "pass@k":
            problem = _pass_at_k_problem(arm, rules[arm], k, sub, sizes)
            if problem is not None:
                problems.append(problem)
                continue
        for _, g in sub.groupby(KEYS, sort=False, dropna=False):
            out_rows.append(_reduce_item(g, rule, k))
    reduced = pd.DataFrame(out_rows).drop(columns=["sample"]) if out_rows else t.iloc[:0].drop(columns=["sample"])
    return reduced.reset_index(drop=True), per_sample, info, problems


def reduce_frame(per_sample: pd.DataFrame, rule: str) -> pd.DataFrame:
    """Per-item scores of a per-sample table (one arm × cell) under ``rule`` (for the like-for-like comparison):
    columns item_id, score."""
    reduced, _, _, problems = reduce_samples(
        per_sample.assign(finish_reason=None), {a: rule for a in per_sample["arm"].unique()}
    )
    if problems:
        raise ValueError(problems[0].message)
    return reduced[["item_id", "score"]]
