"""Records: the single meeting point of replayed logs and live runs.

One row per arm × item × variant × budget × scoring, with the output text, finish_reason, completion_tokens and the
score. Pairing of baseline and treatment happens here and only here (:meth:`Records.paired`); checks ask for paired
arrays and never join on their own.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from audit.errors import InputError, Problem

ARMS = ("baseline", "treatment")
COLUMNS = [
    "arm", "item_id", "variant", "budget", "scoring", "score", "text", "target", "finish_reason",
    "completion_tokens", "prompt_hash", "doc_hash", "source", "line", "extracted", "cluster", "answered",
]
# extracted: the answer an extracting scorer took from the output (lm-eval's filtered response, a regex scorer's
# match, a logged extraction); answered: 1.0 when it found one, 0.0 when it found none ("[invalid]", no match,
# null), NaN when the scoring does not extract (it compares the whole output) or the log does not say.
DEFAULT_VARIANT = "default"


@dataclass(frozen=True)
class Source:
    """One input file (or live run) that contributed rows."""

    arm: str
    budget: int | None
    path: str
    sha256: str
    rows: int


@dataclass(frozen=True)
class Paired:
    """Baseline and treatment joined on item id for one variant × budget × scoring, sorted by item id."""

    variant: str
    budget: int | None
    scoring: str
    # columns: item_id, score_b, score_t, text_b, text_t, finish_b, finish_t, tokens_b, tokens_t, answered_b,
    # answered_t (1 answer extracted, 0 none, NaN the scoring does not extract), cluster
    frame: pd.DataFrame

    @property
    def n(self) -> int:
        return len(self.frame)

    @property
    def item_ids(self) -> np.ndarray:
        return self.frame["item_id"].to_numpy()

    @property
    def baseline(self) -> np.ndarray:
        return self.frame["score_b"].to_numpy(dtype=float)

    @property
    def treatment(self) -> np.ndarray:
        return self.frame["score_t"].to_numpy(dtype=float)

    @property
    def clusters(self) -> np.ndarray | None:
        """Cluster label per item (from options.cluster_field), or None when items are independent."""
        c = self.frame["cluster"] if "cluster" in self.frame else None
        if c is None or c.isna().all():
            return None
        return c.astype(str).to_numpy()

    @property
    def binary(self) -> bool:
        vals = np.concatenate([self.baseline, self.treatment])
        return bool(np.all((vals == 0) | (vals == 1)))


@dataclass(frozen=True)
class Records:
    table: pd.DataFrame
    sources: tuple[Source, ...] = ()
    # Effective settings per arm (generation kwargs, task config, versions), keyed arm -> budget -> dict.
    settings: dict[str, dict[Any, dict[str, Any]]] = field(default_factory=dict)
    # Live mode: what generating cost per arm (requests, cached, tokens, sweep derivation and its check).
    run: dict[str, dict[str, Any]] = field(default_factory=dict)
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Records built in memory (tests, simulations, other tools) may leave out optional columns: add them empty,
        # so a new optional column never breaks a caller that predates it.
        for c in COLUMNS:
            if c not in self.table.columns:
                self.table[c] = np.nan if c in ("answered", "completion_tokens", "score") else None

    # --- what is there -------------------------------------------------------------------------------------
    def budgets(self) -> list[int]:
        if "budgets" not in self._cache:
            self._cache["budgets"] = sorted(int(b) for b in self.table["budget"].dropna().unique())
        return self._cache["budgets"]

    def variants(self) -> list[str]:
        if "variants" not in self._cache:
            vs = [str(v) for v in self.table["variant"].unique()]
            self._cache["variants"] = sorted(vs, key=lambda v: (v != DEFAULT_VARIANT, v))
        return self._cache["variants"]

    def scorings(self) -> list[str]:
        """Scoring names in first-seen order (the claimed scoring first when the importer put it first)."""
        if "scorings" not in self._cache:
            self._cache["scorings"] = [str(s) for s in self.table["scoring"].unique()]
        return self._cache["scorings"]

    def has(self, variant: str, budget: int | None, scoring: str) -> bool:
        return (variant, budget, scoring) in self._groups()

    def _groups(self) -> dict:
        if "groups" not in self._cache:
            t = self.table
            keys = {}
            for key, idx in t.groupby(["variant", "budget", "scoring", "arm"], sort=False, dropna=False).indices.items():
                v, b, s, a = key
                b = None if pd.isna(b) else int(b)
                keys.setdefault((v, b, s), {})[a] = idx
            self._cache["groups"] = keys
        return self._cache["groups"]

    # --- pairing --------------------------------------------------------------------------------------------
    def paired(self, scoring: str, budget: int | None, variant: str = DEFAULT_VARIANT) -> Paired:
        """Join the arms on item id. Raises KeyError when the cell does not exist (ids are validated at build)."""
        key = ("paired", variant, budget, scoring)
        if key in self._cache:
            return self._cache[key]
        groups = self._groups().get((variant, budget, scoring))
        if not groups or set(groups) != set(ARMS):
            raise KeyError(f"no paired records for variant={variant!r} budget={budget} scoring={scoring!r}")
        cols = ["item_id", "score", "text", "finish_reason", "completion_tokens", "answered"]
        b = self.table.iloc[groups["baseline"]][cols + ["cluster"]].set_index("item_id")
        t = self.table.iloc[groups["treatment"]][cols].set_index("item_id")
        f = b.merge(t, how="inner", left_index=True, right_index=True, suffixes=("_b", "_t")).sort_index()
        f = f.rename(columns={"finish_reason_b": "finish_b", "finish_reason_t": "finish_t",
                              "completion_tokens_b": "tokens_b", "completion_tokens_t": "tokens_t"})
        f = f.reset_index()
        p = Paired(variant, budget, scoring, f)
        self._cache[key] = p
        return p

    def texts(self, arm: str, variant: str = DEFAULT_VARIANT) -> pd.DataFrame:
        """Wide table of one arm's output text per item (rows) and budget (columns), first scoring only."""
        return self.column_wide(arm, "text", variant)

    def column_wide(self, arm: str, column: str, variant: str = DEFAULT_VARIANT) -> pd.DataFrame:
        """Wide table of one arm's ``column`` per item (rows) and budget (columns), first scoring only (cached)."""
        key = ("wide", arm, column, variant)
        if key not in self._cache:
            t = self.table
            first = self.scorings()[0]
            sub = t[(t["arm"] == arm) & (t["variant"] == variant) & (t["scoring"] == first)]
            self._cache[key] = sub.pivot(index="item_id", columns="budget", values=column).sort_index()
        return self._cache[key]


def build_records(frames: list[pd.DataFrame], sources: list[Source], settings: dict | None = None,
                  where: dict[tuple, str] | None = None, run: dict | None = None) -> Records:
    """Concatenate per-file frames into Records and validate the pairing.

    ``where`` maps (arm, variant, budget) to a human description of the input (file paths) used in error messages.
    Raises :class:`InputError` when an item appears twice in one cell or the arms' item ids differ.
    """
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    for c in COLUMNS:
        if c not in table.columns:
            table[c] = None
    table = table[COLUMNS]
    table["score"] = table["score"].astype(float)
    table["completion_tokens"] = pd.to_numeric(table["completion_tokens"], errors="coerce")
    table["answered"] = pd.to_numeric(table["answered"], errors="coerce").astype(float)
    table["item_id"] = table["item_id"].astype(str)
    where = where or {}
    problems: list[Problem] = []

    dup = table.duplicated(["arm", "variant", "budget", "scoring", "item_id"], keep=False)
    if dup.any():
        d = table[dup].iloc[0]
        problems.append(Problem(
            f"item {d['item_id']!r} appears more than once for arm {d['arm']}, budget {d['budget']}, scoring "
            f"{d['scoring']!r} ({int(dup.sum())} duplicate rows)", file=str(d["source"]), line=_int(d["line"]),
            fix="each item id must appear once per arm, budget and scoring; remove repeated runs or give them distinct ids"))

    ids = table.groupby(["variant", "budget", "arm"], dropna=False)["item_id"].agg(lambda s: frozenset(s))
    for (variant, budget) in {(v, b) for v, b, _ in ids.index}:
        try:
            b_ids, t_ids = ids[(variant, budget, "baseline")], ids[(variant, budget, "treatment")]
        except KeyError:
            problems.append(Problem(f"only one arm has records for budget {budget}, variant {variant!r}",
                                    fix="give both arms logs for every budget"))
            continue
        if b_ids != t_ids:
            only_b, only_t = sorted(b_ids - t_ids), sorted(t_ids - b_ids)
            bw = where.get(("baseline", variant, _int(budget)), "baseline logs")
            tw = where.get(("treatment", variant, _int(budget)), "treatment logs")
            problems.append(Problem(
                f"the arms' item ids do not match at budget {_int(budget)}: {len(only_b)} only in baseline "
                f"({_preview(only_b)}), {len(only_t)} only in treatment ({_preview(only_t)})",
                file=f"{bw} vs {tw}",
                fix="both arms must be evaluated on the same items (same dataset, same limit); re-run with identical "
                    "--limit / dataset, or remove the extra items"))
    if problems:
        raise InputError(problems)
    return Records(table=table, sources=tuple(sources), settings=settings or {}, run=run or {})


def _preview(ids: list, k: int = 5) -> str:
    shown = ", ".join(repr(i) for i in ids[:k])
    return shown + (", …" if len(ids) > k else "") if ids else "none"


def _int(x: Any) -> int | None:
    try:
        return None if x is None or pd.isna(x) else int(x)
    except (TypeError, ValueError):
        return None
