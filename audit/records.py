"""Records: the single meeting point of replayed logs and live runs.

One row per arm × item × variant × budget × scoring, with the output text, finish_reason, completion_tokens and the
score, and the per-item facts derived from them (``truncated``, ``truncated_by``: :meth:`Records.with_truncation`).
Pairing happens here and only here: :meth:`Records.paired` joins the arms of one cell on item id, and
:meth:`Records.joined` joins cells (budgets, scorings, variants) on item id; checks never join on their own.
:func:`build_records` pairs arms with different items on the items they share, keeps per cell the items each arm
has that the other lacks (``Records.item_sets``), refuses a cell with fewer than 2 shared items (no test can use it),
and names the items any budget lacks (``Records.gaps``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import repeat
from operator import is_, is_not, not_
from typing import Any

import numpy as np
import pandas as pd

from audit.errors import InputError, Problem
from audit.jsonlines import WHITESPACE
from audit.plan import ARMS, DEFAULT_VARIANT

LOG_COLUMNS = [
    "arm",
    "item_id",
    "variant",
    "budget",
    "scoring",
    "score",
    "text",
    "target",
    "finish_reason",
    "completion_tokens",
    "prompt_hash",
    "doc_hash",
    "source",
    "line",
    "extracted",
    "cluster",
    "answered",
    "no_output",
]
COLUMNS = LOG_COLUMNS + ["served_by"]
# extracted: the answer an extracting scorer took from the output (lm-eval's filtered response, a regex scorer's
# match, a logged extraction); answered: 1.0 when it found one, 0.0 when it found none ("[invalid]", no match,
# null), NaN when the scoring does not extract (it compares the whole output) or the log does not say.
# no_output: None when the model produced text; else why there is none ("null content", "null output", "empty
# output"): one rule for live runs and replayed logs (:func:`no_output_causes`). Such an output scores what the
# scoring gives an empty text (0 for every extracting or comparing scorer); the extraction check counts it as
# no answer with its cause, and the truncation rules read it as probable budget exhaustion when the server gave
# no finish reason or said "length". served_by: live runs, which of an arm's endpoints produced the output (its base
# URL without credentials, or "embedded"); None for replayed logs.
DERIVED_COLUMNS = ["truncated", "truncated_by"]
# Facts derived from the rows, not read: truncated, 1.0 the output hit the generation cap, 0.0 it did not, NaN
# unknown; truncated_by, the evidence that decided it (Records.with_truncation, by the rules of truncation_frame).


@dataclass(frozen=True)
class LogSource:
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
    # answered_t (1 answer extracted, 0 none, NaN the scoring does not extract), no_output_b, no_output_t (why an
    # arm produced no output, None when it did), truncated_b, truncated_t, cluster
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
class Joined:
    """Cells' paired frames joined on item id (:meth:`Records.joined`), rows in ``item_ids`` order."""

    cells: tuple[Paired, ...]
    item_ids: np.ndarray
    frames: tuple[pd.DataFrame, ...]  # each cell's paired frame, indexed by item id, reindexed to item_ids
    missing: tuple[str, ...]  # items some cell has and another lacks (inner) / the first lacks (left)

    @property
    def n(self) -> int:
        return len(self.item_ids)

    def take(self, i: int, column: str) -> np.ndarray:
        """Column ``column`` of cell ``i`` on the joined items; ``gain`` is treatment − baseline."""
        f = self.frames[i]
        if column == "gain":
            return (f["score_t"] - f["score_b"]).to_numpy(dtype=float)
        return f[column].to_numpy(dtype=float if column.startswith(("score", "truncated", "tokens")) else object)

    @property
    def clusters(self) -> np.ndarray | None:
        """The first cell's cluster labels on the joined items (None when items are independent)."""
        c = self.frames[0]["cluster"] if "cluster" in self.frames[0] else None
        if c is None or c.isna().all():
            return None
        return c.astype(str).to_numpy()


@dataclass(frozen=True)
class Records:
    table: pd.DataFrame
    sources: tuple[LogSource, ...] = ()
    # Effective settings per arm (generation kwargs, task config, versions), keyed arm -> budget -> dict.
    settings: dict[str, dict[Any, dict[str, Any]]] = field(default_factory=dict)
    # Live mode: what generating cost per arm (requests, cached, tokens, sweep derivation and its check).
    run: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Items some budget of a variant lacks (build_records names them; comparisons use the shared items).
    gaps: tuple["Gap", ...] = ()
    # Per variant × budget where the arms hold different items: the items each arm has that the other lacks (every
    # paired comparison uses the shared items; the item_sets check shows the published unpaired comparison).
    item_sets: tuple["ItemSets", ...] = ()
    # Several outputs per item (samples.reduce): every sample's score (columns arm, variant, budget, scoring,
    # item_id, sample, score, answered, extracted, text) and each arm's rule; the table holds the reduced scores.
    per_sample: pd.DataFrame | None = field(default=None, compare=False, repr=False)
    reductions: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The think markers the truncation flags were derived with (Records.with_truncation); None: not derived yet.
    truncation_rule: tuple[str, str] | None = None
    # What scorers noted while re-scoring, by scoring name: {"unsplittable": [{arm, variant, budget, outputs, of,
    # reasons}]} for a code_exec scorer whose tests could not be split from the program (those outputs scored 0).
    scoring_notes: dict[str, dict[str, Any]] = field(default_factory=dict)
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Records built in memory (tests, simulations, other tools) may leave out optional columns: add them empty,
        # so a new optional column never breaks a caller that predates it.
        for c in COLUMNS + DERIVED_COLUMNS:
            if c not in self.table.columns:
                self.table[c] = np.nan if c in ("answered", "completion_tokens", "score", "truncated") else None

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
            keys: dict[tuple, dict] = {}
            grouped = t.groupby(["variant", "budget", "scoring", "arm"], sort=False, dropna=False)
            for key, idx in grouped.indices.items():
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
        cols = ["item_id", "score", "text", "finish_reason", "completion_tokens", "answered", "truncated", "no_output"]
        at = self.table.columns.get_loc  # only the columns the pair needs are taken
        b = self.table.iloc[groups["baseline"], [at(c) for c in cols + ["cluster"]]].set_index("item_id")
        t = self.table.iloc[groups["treatment"], [at(c) for c in cols]].set_index("item_id")
        if b.index.equals(t.index) and b.index.is_unique:  # the same items in the same order: side by side
            shared = set(cols[1:])
            f = pd.concat(
                [b.rename(columns=lambda c: f"{c}_b" if c in shared else c), t.rename(columns=lambda c: f"{c}_t")],
                axis=1,
            ).sort_index()
        else:
            f = b.merge(t, how="inner", left_index=True, right_index=True, suffixes=("_b", "_t")).sort_index()
        f = f.rename(
            columns={
                "finish_reason_b": "finish_b",
                "finish_reason_t": "finish_t",
                "completion_tokens_b": "tokens_b",
                "completion_tokens_t": "tokens_t",
                "truncated_b": "truncated_b",
                "truncated_t": "truncated_t",
            }
        )
        f = f.reset_index()
        p = Paired(variant, budget, scoring, f)
        self._cache[key] = p
        return p

    def arm_scores(self, arm: str, scoring: str, budget: int | None, variant: str = DEFAULT_VARIANT) -> pd.DataFrame:
        """One arm's rows of a cell on *all* its items (not only those the other arm shares), sorted by item id:
        columns item_id, score, text, answered. The published comparison of arms run on different item sets is
        each arm on its own items (the item_sets check); every paired comparison uses :meth:`paired`."""
        groups = self._groups().get((variant, budget, scoring)) or {}
        if arm not in groups:
            raise KeyError(f"no records of {arm} for variant={variant!r} budget={budget} scoring={scoring!r}")
        at = self.table.columns.get_loc  # only the four columns are taken
        return (
            self.table.iloc[groups[arm], [at(c) for c in ("item_id", "score", "text", "answered")]]
            .sort_values("item_id")
            .reset_index(drop=True)
        )

    def item_set(self, budget: int | None, variant: str = DEFAULT_VARIANT) -> "ItemSets | None":
        """The items each arm alone has at ``budget`` (None when both arms hold the same items)."""
        return next((s for s in self.item_sets if s.variant == variant and s.budget == budget), None)

    def joined(self, cells: list[tuple], how: str = "inner") -> "Joined":
        """Several cells' paired records joined on item id: the one join behind every comparison across budgets,
        scorings or variants. ``cells``: (scoring, budget[, variant]) each. ``how="inner"``: the items every cell
        has; ``"left"``: the first cell's items (None/NaN where another cell lacks one). ``missing`` names the items
        some cell has and another lacks."""
        key = ("joined", tuple(tuple(c) for c in cells), how)
        if key in self._cache:
            return self._cache[key]
        ps = [self.paired(c[0], c[1], c[2] if len(c) > 2 else DEFAULT_VARIANT) for c in cells]
        frames = [p.frame.set_index("item_id") for p in ps]
        index = frames[0].index
        union = index
        for f in frames[1:]:
            union = union.union(f.index)
            if how == "inner":
                index = index.intersection(f.index)
        index = index.sort_values()
        missing = (
            tuple(str(i) for i in union.difference(index).sort_values())
            if how == "inner"
            else tuple(str(i) for i in union.difference(frames[0].index).sort_values())
        )
        j = Joined(tuple(ps), index.to_numpy(), tuple(f.reindex(index) for f in frames), missing)
        self._cache[key] = j
        return j

    def with_truncation(self, think_open: str = "<think>", think_close: str = "</think>") -> "Records":
        """These records with the ``truncated`` / ``truncated_by`` columns derived (:func:`truncation_frame`)."""
        if self.truncation_rule == (think_open, think_close):
            return self
        t = self.table.drop(columns=["truncated", "truncated_by"])
        derived = _truncation_columns(self, think_open, think_close)
        if derived is not None:  # the common case: derived on the rows where they are, no frame to merge
            t = t.assign(truncated=derived[0], truncated_by=derived[1]).reset_index(drop=True)
        else:
            fr = truncation_frame(self, think_open, think_close)
            keys = ["arm", "variant", "budget", "item_id"]
            t = (
                t.merge(fr, on=keys, how="left", validate="many_to_one")
                if len(fr)
                else t.assign(truncated=np.nan, truncated_by=None)
            )
        return Records(
            table=t[COLUMNS + DERIVED_COLUMNS],
            sources=self.sources,
            settings=self.settings,
            run=self.run,
            gaps=self.gaps,
            item_sets=self.item_sets,
            per_sample=self.per_sample,
            reductions=self.reductions,
            truncation_rule=(think_open, think_close),
            scoring_notes=self.scoring_notes,
        )

    def truncation(self, arm: str, variant: str = DEFAULT_VARIANT) -> tuple[np.ndarray, dict, dict]:
        """One arm's truncation flags: (item ids, {budget: flags}, {budget: {evidence: count}}), rows in item-id
        order. Needs :meth:`with_truncation` (``audit.verify`` derives the flags once, with the claim's markers)."""
        if self.truncation_rule is None:
            raise RuntimeError("truncation flags were not derived: call Records.with_truncation() first")
        key = ("truncation", arm, variant)
        if key not in self._cache:
            got = self._truncation_direct(arm, variant)
            if got is None:  # budgets that are not all integers: from the wide tables
                flags = self.column_wide(arm, "truncated", variant)
                by = self.column_wide(arm, "truncated_by", variant)
                out = {b: flags[b].to_numpy(dtype=float) for b in flags.columns}
                counted = {b: by[b].value_counts().to_dict() for b in by.columns}
                got = flags.index.to_numpy(), out, counted
            ids, out, counted = got
            evidence = {
                b: {label: int(c[label]) for label in sorted(c, key=_evidence_order)} for b, c in counted.items()
            }
            self._cache[key] = (ids, out, evidence)
        ids, out, evidence = self._cache[key]
        return ids.copy(), {b: x.copy() for b, x in out.items()}, {b: dict(e) for b, e in evidence.items()}

    def _truncation_direct(self, arm: str, variant: str) -> tuple[np.ndarray, dict, dict] | None:
        """:meth:`truncation` read off the rows of the arm's cells under the first scoring: what the wide tables
        (``column_wide``: the items of every budget, sorted; NaN where a budget lacks one) give, without pivoting."""
        t = self.table
        if t["budget"].dtype.kind not in "iu":
            return None
        rows = self._first_rows(arm, variant)
        if not rows:
            return None
        budgets = sorted(rows)
        item = self._objects("item_id")
        ids = {b: item[rows[b]] for b in budgets}
        b0 = budgets[0]
        same = all(len(ids[b]) == len(ids[b0]) and np.array_equal(ids[b], ids[b0]) for b in budgets)
        if same:
            union = ids[b0]
        else:
            union = pd.Index(np.concatenate([ids[b] for b in budgets])).unique().to_numpy(dtype=object)
        order = np.asarray(pd.Index(union).argsort())  # the pivot's index order (sort_index)
        sorted_ids = union[order]
        flags, by = self._objects("truncated", float), self._objects("truncated_by")
        out, counted = {}, {}
        where = None
        for b in budgets:
            r = rows[b]
            if same:
                x = flags[r][order]
            else:
                if where is None:
                    where = pd.Index(sorted_ids)
                x = np.full(len(sorted_ids), np.nan)
                x[where.get_indexer(ids[b])] = flags[r]
            out[b] = x
            counted[b] = Counter(e for e in by[r].tolist() if isinstance(e, str))
        return sorted_ids, out, counted

    def _first_rows(self, arm: str, variant: str) -> dict:
        """{budget: row positions} of one arm's cells of ``variant`` under the first scoring (cached groups)."""
        first = self.scorings()[0]
        return {b: g[arm] for (v, b, s), g in self._groups().items() if v == variant and s == first and arm in g}

    def _objects(self, column: str, dtype: Any = object) -> np.ndarray:
        """One column as a numpy array (cached; read-only for callers)."""
        key = ("values", column, dtype)
        if key not in self._cache:
            self._cache[key] = self.table[column].to_numpy(dtype=dtype)
        return self._cache[key]

    def texts(self, arm: str, variant: str = DEFAULT_VARIANT) -> pd.DataFrame:
        """Wide table of one arm's output text per item (rows) and budget (columns), first scoring only."""
        return self.column_wide(arm, "text", variant)

    def column_wide(self, arm: str, column: str, variant: str = DEFAULT_VARIANT) -> pd.DataFrame:
        """Wide table of one arm's ``column`` per item (rows) and budget (columns), first scoring only (cached)."""
        key = ("wide", arm, column, variant)
        if key not in self._cache:
            t = self.table
            first = self.scorings()[0]
            # The rows of the arm's cells (from the cached groups), and only the three columns the pivot reads:
            # the same sub-table as filtering the whole table on arm, variant and scoring, without copying it.
            parts = [g[arm] for (v, _b, s), g in self._groups().items() if v == variant and s == first and arm in g]
            rows = np.sort(np.concatenate(parts)) if parts else np.array([], dtype=np.intp)
            sub = t.iloc[rows, [t.columns.get_loc(c) for c in ("item_id", "budget", column)]]
            self._cache[key] = sub.pivot(index="item_id", columns="budget", values=column).sort_index()
        return self._cache[key]


def build_records(
    frames: list[pd.DataFrame],
    sources: list[LogSource],
    settings: dict | None = None,
    where: dict[tuple, str] | None = None,
    run: dict | None = None,
    per_sample: pd.DataFrame | None = None,
    reductions: dict | None = None,
    scoring_notes: dict | None = None,
) -> Records:
    """Concatenate per-file frames into Records and validate the pairing.

    ``where`` maps (arm, variant, budget) to a human description of the input (file paths) used in error messages.
    Raises :class:`InputError` when an item appears twice in one cell, only one arm has a cell, or the arms share
    fewer than :data:`MIN_SHARED` items in a cell. Arms with different items are paired on the shared ones; the
    items each arm alone has are kept in ``Records.item_sets``.
    """
    table = _normalised_table(frames)
    where = where or {}
    codes = _Codes(table)
    problems = _duplicate_problems(table, codes)
    item_sets: list[ItemSets] = []
    if not _same_items(table, codes):
        item_sets, unpaired = _item_sets(table, where)
        problems += unpaired
    if problems:
        raise InputError(problems)
    return Records(
        table=table,
        sources=tuple(sources),
        settings=settings or {},
        run=run or {},
        gaps=() if _budgets_hold_the_same_items(table, codes) else tuple(_budget_gaps(table, where)),
        item_sets=tuple(item_sets),
        per_sample=per_sample,
        reductions=reductions or {},
        scoring_notes=scoring_notes or {},
    )


def _normalised_table(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The frames concatenated, every column of :data:`COLUMNS` present, in order, with its type."""
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    for c in COLUMNS:
        if c not in table.columns:
            table[c] = None
    table = table[COLUMNS]
    table["score"] = table["score"].astype(float)
    tokens = table["completion_tokens"]
    if tokens.dtype == object and not any(map(is_not, tokens.to_numpy(), repeat(None))):  # no log gave a count
        table["completion_tokens"] = pd.Series(np.nan, index=table.index, dtype=float)  # what to_numeric gives
    else:
        table["completion_tokens"] = pd.to_numeric(tokens, errors="coerce")
    table["answered"] = pd.to_numeric(table["answered"], errors="coerce").astype(float)
    table["no_output"] = no_output_causes(table["text"], table["no_output"])
    table["item_id"] = table["item_id"].astype(str)
    return table


class _Codes:
    """The table's columns factorized, each once, on first use."""

    def __init__(self, table: pd.DataFrame) -> None:
        self.table = table
        self.factorized: dict[str, tuple[np.ndarray, int]] = {}

    def __call__(self, name: str) -> tuple[np.ndarray, int]:
        """The column's codes (a missing value being one more value, as duplicated() and groupby(dropna=False)
        have it) and how many values there are."""
        if name not in self.factorized:
            codes, uniques = pd.factorize(self.table[name], use_na_sentinel=False)
            self.factorized[name] = codes.astype(np.int64), max(len(uniques), 1)
        return self.factorized[name]


def _any_duplicate(table: pd.DataFrame, codes: _Codes) -> bool:
    """Whether some row repeats another's arm, variant, budget, scoring and item id, decided on one combined
    code per row (duplicated() in :func:`_duplicate_problems` names the rows)."""
    key, size = np.zeros(len(table), dtype=np.int64), 1
    for c in ("arm", "variant", "budget", "scoring", "item_id"):
        col, n = codes(c)
        if size > 2**62 // n:
            return True  # too many combinations for one code: let duplicated() decide
        key, size = key * n + col, size * n
    if size <= 50_000_000:
        return bool((np.bincount(key, minlength=size) > 1).any())
    key.sort()
    return bool((key[1:] == key[:-1]).any())


def _duplicate_problems(table: pd.DataFrame, codes: _Codes) -> list[Problem]:
    """An item given twice in one arm × variant × budget × scoring cell (one problem naming the first)."""
    dup = (
        table.duplicated(["arm", "variant", "budget", "scoring", "item_id"], keep=False)
        if _any_duplicate(table, codes)
        else None
    )
    if dup is None or not dup.any():
        return []
    d = table[dup].iloc[0]
    return [
        Problem(
            f"item {d['item_id']!r} appears more than once for arm {d['arm']}, budget {d['budget']}, scoring "
            f"{d['scoring']!r} ({int(dup.sum())} duplicate rows)",
            file=str(d["source"]),
            line=_int(d["line"]),
            fix="each item id must appear once per arm, budget and scoring; remove repeated runs or give them distinct "
            "ids",
        )
    ]


def _same_items(table: pd.DataFrame, codes: _Codes) -> bool:
    """Whether every variant × budget has both arms, with the same item ids: the common case, decided on
    factorized codes (:func:`_item_sets` builds a Python set of every cell's ids, and names the differences)."""
    if table.empty:
        return True
    if table["item_id"].isna().any():
        return False
    # a cell is a variant × budget, a missing value being one more (as groupby(dropna=False) has it)
    v, nv = codes("variant")
    b, nb = codes("budget")
    cell = v * nb + b
    item, n_items = codes("item_id")
    arms = [(table["arm"] == a).to_numpy(dtype=bool, na_value=False) for a in ARMS]
    present = np.bincount(cell, minlength=nv * nb) > 0
    if any(not (np.bincount(cell[m], minlength=nv * nb) > 0)[present].all() for m in arms):
        return False
    keys = cell * n_items + item
    if nv * nb * n_items <= 50_000_000:  # a presence table per arm, else sorting
        seen = [np.zeros(nv * nb * n_items, dtype=bool) for _ in ARMS]
        for s, m in zip(seen, arms):
            s[keys[m]] = True
        return np.array_equal(seen[0], seen[1])
    return np.array_equal(np.unique(keys[arms[0]]), np.unique(keys[arms[1]]))


def _budgets_hold_the_same_items(table: pd.DataFrame, codes: _Codes) -> bool:
    """Whether, in the baseline arm, every budget of each variant holds every item the variant has: no
    _budget_gaps, decided on the factorized codes (False when unsure: _budget_gaps decides)."""
    if table.empty or table[["variant", "budget", "item_id"]].isna().to_numpy().any():
        return False
    v, nv = codes("variant")
    b, nb = codes("budget")
    item, n_items = codes("item_id")
    if nv * nb * n_items > 50_000_000:
        return False
    base = (table["arm"] == ARMS[0]).to_numpy(dtype=bool, na_value=False)
    present = np.zeros(nv * nb * n_items, dtype=bool)
    present[((v * nb + b) * n_items + item)[base]] = True
    for held in present.reshape(nv, nb, n_items):
        budgets, items = held.any(axis=1), held.any(axis=0)
        if budgets.sum() >= 2 and not held[budgets][:, items].all():
            return False
    return True


def _item_sets(table: pd.DataFrame, where: dict[tuple, str]) -> tuple[list[ItemSets], list[Problem]]:
    """Per variant × budget whose arms differ: the items each arm alone has, or why the cell cannot be paired."""
    ids = table.groupby(["variant", "budget", "arm"], dropna=False)["item_id"].agg(lambda s: frozenset(s))
    item_sets: list[ItemSets] = []
    problems: list[Problem] = []
    for variant, budget in sorted(
        {(v, b) for v, b, _ in ids.index}, key=lambda vb: (str(vb[0]), _int(vb[1]) is None, _int(vb[1]) or 0)
    ):
        try:
            b_ids, t_ids = ids[(variant, budget, "baseline")], ids[(variant, budget, "treatment")]
        except KeyError:
            problems.append(
                Problem(
                    f"only one arm has records for budget {budget}, variant {variant!r}",
                    fix="give both arms logs for every budget",
                )
            )
            continue
        if b_ids == t_ids:
            continue
        only_b, only_t = sorted(b_ids - t_ids, key=_id_order), sorted(t_ids - b_ids, key=_id_order)
        shared = len(b_ids & t_ids)
        bw = where.get(("baseline", variant, _int(budget)), "baseline logs")
        tw = where.get(("treatment", variant, _int(budget)), "treatment logs")
        if shared < MIN_SHARED:
            unicode_note = normalisation_note(only_b, only_t)
            problems.append(
                Problem(
                    f"the arms share {shared} item(s) at budget {_int(budget)}"
                    + (f", variant {variant!r}" if variant != DEFAULT_VARIANT else "")
                    + f": {len(only_b)} only in baseline ({_preview(only_b)}), {len(only_t)} only in treatment "
                    f"({_preview(only_t)}); no test can compare arms on fewer than {MIN_SHARED} shared items"
                    + (f"; {unicode_note}" if unicode_note else ""),
                    file=f"{bw} vs {tw}",
                    fix=(
                        NORMALISATION_FIX
                        if unicode_note
                        else "both arms must be evaluated on (mostly) the same items: check that the "
                        "item ids name the same items in both logs (samples.fields.id), "
                        "or re-run with the same dataset and limit"
                    ),
                )
            )
            continue
        item_sets.append(
            ItemSets(str(variant), _int(budget), shared, tuple(map(str, only_b)), tuple(map(str, only_t)), bw, tw)
        )
    return item_sets, problems


MIN_SHARED = 2
"""Fewest items both arms must share in a cell: no paired test (nor any interval) uses fewer."""

NORMALISATION_FIX = (
    "write the item ids in one Unicode normal form in both logs (NFC, Python's "
    "unicodedata.normalize('NFC', id)); audit compares ids exactly, code point by code point"
)


def normalisation_note(only_b, only_t) -> str:
    """A sentence when ids of one arm equal ids of the other after Unicode normalisation (NFC vs NFD: "é" as one
    code point or as "e" + a combining accent). They print alike, so the message shows one pair escaped; "" when
    there is none. Ids are never normalised silently: two spellings may be two items."""
    import unicodedata

    def nfc(ids) -> dict:
        return {unicodedata.normalize("NFC", i): i for i in map(str, ids) if not i.isascii()}

    if not only_b or not only_t:
        return ""
    b, t = nfc(only_b), nfc(only_t)
    same = sorted(set(b) & set(t))
    if not same:
        return ""
    eg = same[0]
    return (
        f"{len(same)} of these ids differ only in Unicode normalisation (the same text composed in one arm and "
        f"decomposed in the other, e.g. baseline {ascii(b[eg])} vs treatment {ascii(t[eg])})"
    )


@dataclass(frozen=True)
class ItemSets:
    """The items each arm alone holds in one variant × budget. Every paired comparison (the verdict) uses the
    ``shared`` items; the item_sets check shows the published comparison, each arm on all its own items, beside."""

    variant: str
    budget: int | None
    shared: int
    only_baseline: tuple[str, ...]
    only_treatment: tuple[str, ...]
    baseline_file: str | None = None
    treatment_file: str | None = None

    @property
    def n_baseline(self) -> int:
        return self.shared + len(self.only_baseline)

    @property
    def n_treatment(self) -> int:
        return self.shared + len(self.only_treatment)

    def sentence(self) -> str:
        note = normalisation_note(self.only_baseline, self.only_treatment)
        return (
            f"at budget {self.budget}"
            + (f", variant {self.variant!r}" if self.variant != DEFAULT_VARIANT else "")
            + f" the baseline holds {self.n_baseline} items and the treatment {self.n_treatment}; they share "
            f"{self.shared}: {len(self.only_baseline)} only in baseline ({_preview(list(self.only_baseline))}), "
            f"{len(self.only_treatment)} only in treatment ({_preview(list(self.only_treatment))})"
            + (f"; {note}" if note else "")
        )


def _id_order(i: Any) -> tuple:
    """Item ids in natural order: numbers by value (2 before 10), then text."""
    s = str(i)
    return (0, int(s), "") if s.lstrip("-").isdigit() and len(s) < 19 else (1, 0, s)


@dataclass(frozen=True)
class Gap:
    """Items one budget of a variant lacks that another budget has. Comparisons across budgets
    (:meth:`Records.joined`) use the items both have; the truncation check reports every gap."""

    variant: str
    budget: int | None
    lacking: tuple[str, ...]
    present_at: tuple[int | None, ...]
    file: str | None

    def sentence(self) -> str:
        return (
            f"budget {self.budget} lacks {len(self.lacking)} item(s) present at budget(s) "
            f"{', '.join(map(str, self.present_at))} ({_preview(list(self.lacking))})"
            + (f", variant {self.variant!r}" if self.variant != DEFAULT_VARIANT else "")
            + (f" ({self.file})" if self.file else "")
        )


def _budget_gaps(table: pd.DataFrame, where: dict[tuple, str]) -> list[Gap]:
    """A budget sweep compares each item with itself at another budget: the items each budget of a variant lacks
    that another budget has (none in the common case, decided without building sets)."""
    base = table.loc[table["arm"] == ARMS[0], ["variant", "budget", "item_id"]].drop_duplicates()
    gaps = []
    for variant, sub in base.groupby("variant", sort=False):
        budgets = sub["budget"].unique()
        if len(budgets) < 2:
            continue
        per_item = sub.groupby("item_id", sort=False)["budget"].nunique()
        if bool((per_item == len(budgets)).all()):
            continue
        all_ids = set(per_item.index)
        for b in sorted(budgets, key=lambda x: (pd.isna(x), x)):
            lacking = sorted(all_ids - set(sub.loc[sub["budget"] == b, "item_id"]))
            if not lacking:
                continue
            gaps.append(
                Gap(
                    str(variant),
                    _int(b),
                    tuple(lacking),
                    tuple(_int(o) for o in budgets if o != b),
                    where.get((ARMS[0], variant, _int(b))),
                )
            )
    return gaps


EMPTY_OUTPUT = "empty output"


def no_output_causes(text: pd.Series, given: pd.Series) -> np.ndarray:
    """Why each row has no output: the cause an importer or the runner recorded (``null content`` when a chat
    completion's content was null, ``null output`` when a log holds null), else ``empty output`` for a text that is
    empty or only whitespace, else None (the model produced text)."""
    out = np.array(given.tolist(), dtype=object)
    missing = pd.isna(out)
    out[missing] = None
    maybe = _maybe_blank(text)
    cand = np.flatnonzero(missing if maybe is None else missing & maybe)
    texts = np.asarray(text.to_numpy(dtype=object) if maybe is None else text.iloc[cand].to_numpy(dtype=object))
    if maybe is None:
        texts = texts[cand]
    is_text = np.fromiter(map(isinstance, texts, repeat(str)), dtype=bool, count=len(texts))
    cand, texts = cand[is_text], texts[is_text].tolist()
    # str.strip() of each text in a C-level map: empty or only whitespace is no output
    blank = np.fromiter(map(not_, map(str.strip, texts)), dtype=bool, count=len(texts))
    out[cand[blank]] = EMPTY_OUTPUT
    return out


def _maybe_blank(text: pd.Series) -> np.ndarray | None:
    """Rows whose text is empty or starts with whitespace — every blank text among them — found in the column's
    arrow strings (no Python string made per row); None when the column is not arrow-backed text."""
    dtype = text.dtype
    if not (isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"):
        return None
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(text.array)
    first = pc.utf8_slice_codeunits(arr, 0, 1)
    hit = pc.or_(pc.equal(pc.utf8_length(arr), 0), pc.is_in(first, value_set=pa.array(list(WHITESPACE))))
    return pc.fill_null(hit, False).to_numpy(zero_copy_only=False).astype(bool, copy=False)


def _preview(ids: list, k: int = 5) -> str:
    shown = ", ".join(repr(i) for i in ids[:k])
    return shown + (", …" if len(ids) > k else "") if ids else "none"


def _int(x: Any) -> int | None:
    try:
        return None if x is None or pd.isna(x) else int(x)
    except (TypeError, ValueError):
        return None


# --- per-item facts derived from the outputs ------------------------------------------------------------------

NOT_A_PREFIX = "not a prefix (sampling or non-determinism)"
NO_OUTPUT_EVIDENCE = "no output, no finish reason"


def truncation_frame(records: "Records", think_open: str = "<think>", think_close: str = "</think>") -> pd.DataFrame:
    """Per arm × variant × budget × item: ``truncated`` (1.0 the output hit the generation cap, 0.0 it did not, NaN
    unknown) and ``truncated_by`` (the evidence that decided it), by these rules in order: the server's
    ``finish_reason`` (length / stop); the token count reached the budget; with a larger budget of the same item, the
    output is a proper prefix of the larger one (truncated) or equal to it (not); an unclosed ``think_open`` block;
    no output at all (``no_output``) with none of that evidence: probable budget exhaustion (the rules:
    :func:`truncation_rules`)."""
    parts = []
    for arm in ARMS:
        for variant in records.variants():
            texts = records.column_wide(arm, "text", variant)
            if texts.empty:
                continue
            finish = records.column_wide(arm, "finish_reason", variant)
            tokens = records.column_wide(arm, "completion_tokens", variant)
            nothing = records.column_wide(arm, "no_output", variant)
            budgets = list(texts.columns)
            for j, b in enumerate(budgets):
                nxt = budgets[j + 1] if j + 1 < len(budgets) else None
                flags, by = truncation_rules(
                    b,
                    texts[b].to_numpy(dtype=object),
                    None if nxt is None else texts[nxt].to_numpy(dtype=object),
                    nxt,
                    finish[b].to_numpy(dtype=object),
                    tokens[b].to_numpy(dtype=float),
                    nothing[b].to_numpy(dtype=object),
                    think_open,
                    think_close,
                )
                parts.append(
                    pd.DataFrame(
                        {
                            "arm": arm,
                            "variant": variant,
                            "budget": b,
                            "item_id": texts.index.to_numpy(),
                            "truncated": flags,
                            "truncated_by": by,
                        }
                    )
                )
    if not parts:
        return pd.DataFrame(columns=["arm", "variant", "budget", "item_id", "truncated", "truncated_by"])
    return pd.concat(parts, ignore_index=True)


def truncation_rules(
    budget: Any,
    texts: np.ndarray,
    larger: np.ndarray | None,
    larger_budget: Any,
    finish: np.ndarray,
    tokens: np.ndarray,
    nothing: np.ndarray,
    think_open: str = "<think>",
    think_close: str = "</think>",
) -> tuple[np.ndarray, np.ndarray]:
    """The truncation rules (:func:`truncation_frame`) on one arm × variant × budget: (flags, evidence), element
    by element of the aligned arrays ``texts`` (the outputs at ``budget``), ``larger`` (the same items' outputs at
    the next larger budget ``larger_budget``, or None when there is none), ``finish``, ``tokens`` and ``nothing``
    (the ``no_output`` causes). A value that is not a string (a missing item) is no output to compare."""
    n = len(texts)
    flags = np.full(n, np.nan)
    by = np.full(n, None, dtype=object)
    known = pd.Series(finish, dtype=object).isin(("length", "stop")).to_numpy(dtype=bool)
    if known.any():
        flags[known] = (finish[known] == "length").astype(float)
        by[known] = "finish_reason"
    use = np.isnan(flags) & ~np.isnan(tokens)
    flags[use] = (tokens[use] >= budget).astype(float)
    by[use] = "token count"
    is_text = np.fromiter(map(isinstance, texts, repeat(str)), dtype=bool, count=n)
    if larger is not None:
        cand = np.flatnonzero(
            np.isnan(flags) & is_text & np.fromiter(map(isinstance, larger, repeat(str)), dtype=bool, count=n)
        )
        small, large = texts[cand].tolist(), larger[cand].tolist()
        prefix = np.fromiter(map(str.startswith, large, small), dtype=bool, count=len(cand))
        hit = cand[prefix]  # equal outputs included: not truncated
        flags[hit] = np.fromiter(
            map(str.__ne__, texts[hit].tolist(), larger[hit].tolist()), dtype=float, count=len(hit)
        )
        by[hit] = f"prefix of budget {larger_budget}"
        by[cand[~prefix]] = NOT_A_PREFIX
    pending = np.isnan(flags) & is_text
    if pending.any():
        where = np.flatnonzero(pending)
        outs = texts[where].tolist()
        opened = np.fromiter((think_open in s and think_close not in s for s in outs), dtype=bool, count=len(outs))
        think = where[opened]
        flags[think] = 1.0
        by[think] = "unclosed think"
    # No output at all and the server gave no reason: budget exhaustion until shown otherwise (a reasoning model that
    # spent the whole budget thinking returns null or empty content).
    maybe = np.flatnonzero(np.isnan(flags) & np.fromiter(map(is_not, nothing, repeat(None)), dtype=bool, count=n))
    gone = maybe[[not (isinstance(c, float) and np.isnan(c)) for c in nothing[maybe].tolist()]] if len(maybe) else maybe
    flags[gone] = 1.0
    by[gone] = NO_OUTPUT_EVIDENCE
    return flags, by


def _truncation_columns(records: "Records", think_open: str, think_close: str) -> tuple[np.ndarray, Any] | None:
    """``truncated`` and ``truncated_by`` for every row of the table, in table order: what merging
    :func:`truncation_frame` onto the table on (arm, variant, budget, item_id) gives (values and dtypes), computed on
    the rows where the outputs are. A row of another scoring takes the flags of its item's row under the first
    scoring; where that scoring lacks the item at this budget the evidence is missing (None when it has the item at
    another budget, NaN when the merge would find no row). None when the budgets are not all integers (the merge then
    decides)."""
    t = records.table
    n = len(t)
    if not n or t["budget"].dtype.kind not in "iu":
        return None
    first = records.scorings()[0]
    groups = records._groups()
    item = t["item_id"].to_numpy(dtype=object)
    text = t["text"].to_numpy(dtype=object)
    finish = t["finish_reason"].to_numpy(dtype=object)
    tokens = t["completion_tokens"].to_numpy(dtype=float)
    nothing = t["no_output"].to_numpy(dtype=object)
    flags = np.full(n, np.nan)
    by = np.full(n, np.nan, dtype=object)  # NaN: what a left merge leaves where it finds no row
    # truncation_frame builds one frame per arm × variant × budget: pandas stores a part's evidence as text (its
    # missing values NaN) when the part holds a label, as objects (None kept) when it holds none; the concatenation is
    # text only when every part is.
    text_parts = _infers_text()
    all_text = True
    derived = False
    for arm in ARMS:
        for variant in records.variants():
            rows = records._first_rows(arm, variant)
            if not rows:
                continue
            derived = True
            budgets = sorted(rows)
            ids = {b: item[rows[b]] for b in budgets}
            index: dict = {}
            missing_value = {}
            for j, b in enumerate(budgets):
                r = rows[b]
                larger = nxt = None
                if j + 1 < len(budgets):
                    nxt = budgets[j + 1]
                    pos = _positions(ids, index, nxt, ids[b])
                    larger = text[rows[nxt]][pos]
                    larger[pos < 0] = None
                f, e = truncation_rules(
                    b, text[r], larger, nxt, finish[r], tokens[r], nothing[r], think_open, think_close
                )
                labelled = any(x is not None for x in e)
                all_text = all_text and labelled
                missing_value[b] = np.nan if labelled and text_parts else None
                if missing_value[b] is not None:
                    e[np.fromiter(map(is_, e, repeat(None)), dtype=bool, count=len(e))] = np.nan
                flags[r], by[r] = f, e
            union = None
            for (v, b, s), g in groups.items():
                if v != variant or s == first or arm not in g or b not in rows:
                    continue
                r = g[arm]
                pos = _positions(ids, index, b, item[r])
                hit = pos >= 0
                src = rows[b][pos[hit]]
                flags[r[hit]], by[r[hit]] = flags[src], by[src]
                if not hit.all():  # items of this scoring the first lacks at this budget
                    if union is None:
                        union = pd.Index(np.concatenate([ids[b] for b in budgets])).unique()
                    miss = r[~hit]
                    by[miss[union.get_indexer(item[miss]) >= 0]] = missing_value[b]
    if not derived:
        by[:] = None
    evidence = by if derived and all_text and text_parts else pd.Series(by, index=t.index, dtype=object)
    return flags, evidence


def _positions(ids: dict, index: dict, b: Any, wanted: np.ndarray) -> np.ndarray:
    """Where each of ``wanted`` stands among budget b's ids (-1: absent); ``index`` caches b's ``pd.Index``."""
    if len(wanted) == len(ids[b]) and np.array_equal(wanted, ids[b]):
        return np.arange(len(wanted))
    if b not in index:
        index[b] = pd.Index(ids[b])
    return index[b].get_indexer(wanted)


def _infers_text() -> bool:
    """Whether pandas stores a column of strings and missing values built from objects as its text dtype (pandas >= 3),
    turning None into NaN, rather than as objects."""
    return pd.DataFrame({"x": np.array(["a", None], dtype=object)})["x"].dtype != np.dtype(object)


_EVIDENCE_ORDER = (
    "finish_reason",
    "token count",
    "prefix of budget",
    NOT_A_PREFIX,
    "unclosed think",
    NO_OUTPUT_EVIDENCE,
)


def _evidence_order(label: str) -> tuple[int, str]:
    return next((i for i, p in enumerate(_EVIDENCE_ORDER) if label.startswith(p)), len(_EVIDENCE_ORDER)), label
