"""The measured delta of one paired cell: what every decision of the audit rests on.

A cell is one variant × budget × scoring of the records (`CellKey`, always in that order). `measure` pairs its two
arms and computes the decision inference (`audit.stats.paired_inference`: one test of delta = 0 and the interval
that inverts it) with the bootstrap, CLT and exact intervals shown beside it. `Cells` measures each cell once per
audit, with the generator seeded from the audit seed and the cell's key, so results do not depend on which check
asks first.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from audit import stats
from audit.records import DEFAULT_VARIANT, Paired, Records

# The bootstrap shown beside a cell's decision draws at most this many item indices (continuous scores: the full
# resamples up to 5,000 items, fewer above, none above 50,000 items, where the paired CLT interval beside is its
# large-sample equivalent); 0/1 and other few-valued scores are resampled in full at any n (multinomial counts).
BOOTSTRAP_MAX_DRAWS = 50_000_000


class CellKey(NamedTuple):
    """One cell of the records, in the one order the audit uses: variant, budget, scoring."""

    variant: str
    budget: int | None
    scoring: str


@dataclass(frozen=True)
class MeasuredCell:
    """The measured delta (treatment − baseline) of one variant × budget × scoring.

    ``inference`` is what every decision rests on: one test of delta = 0 and the interval that inverts it
    (:class:`audit.stats.PairedInference`: McNemar's test with continuity correction + Tango's interval for 0/1
    outcomes, the paired t joined with Hall's skewness-corrected t otherwise, the CR2 cluster-robust t on
    Bell–McCaffrey df when items share a passage). ``bootstrap`` (paired percentile bootstrap),
    ``clt`` (Miller 2024) and ``exact`` (exact McNemar for 0/1 outcomes) are shown beside it for comparison;
    no verdict rests on them.
    """

    variant: str
    budget: int | None
    scoring: str
    n: int
    baseline: float
    treatment: float
    inference: stats.PairedInference
    bootstrap: stats.Estimate | None
    clt: stats.Estimate
    exact: stats.TestResult | None
    binary: bool
    # Sequential audits: ``inference`` is the anytime-valid betting inference (`stats.anytime_inference`) on the items
    # in their draw order, and this is the fixed-n decision inference on the same items, shown beside, never decided on.
    fixed_n: stats.PairedInference | None = None

    @property
    def key(self) -> CellKey:
        return CellKey(self.variant, self.budget, self.scoring)

    @property
    def delta(self) -> stats.Estimate:
        """The decision estimate: ``.value``, ``.interval`` (inverts ``test``), ``.se``, ``.method``."""
        return self.inference.estimate

    @property
    def interval(self) -> stats.Interval:
        return self.inference.interval

    @property
    def test(self) -> stats.TestResult:
        return self.inference.test

    def row(self, **extra: Any) -> dict[str, Any]:
        """The cell as one row of a finding's table (the report's column names)."""
        iv = self.interval
        boot = self.bootstrap.interval if self.bootstrap is not None else None
        return {
            "variant": self.variant,
            "budget": self.budget,
            "scoring": self.scoring,
            "n": self.n,
            "baseline": self.baseline,
            "treatment": self.treatment,
            "delta": self.delta.value,
            "ci_low": iv.low,
            "ci_high": iv.high,
            "ci_method": iv.method,
            "boot_ci_low": boot.low if boot is not None else math.nan,
            "boot_ci_high": boot.high if boot is not None else math.nan,
            "clt_ci_low": self.clt.interval.low,
            "clt_ci_high": self.clt.interval.high,
            "exact_p": self.exact.p_value if self.exact is not None else math.nan,
            "p_value": self.test.p_value,
            "test": f"{self.test.method} ({self.test.alternative})",
            **extra,
        }


def measure(
    p: Paired,
    rng: np.random.Generator,
    resamples: int,
    level: float,
    score_bounds: tuple[float, float] | None = None,
    draw_seed: int | None = None,
) -> MeasuredCell:
    """The decision inference of one paired cell, with the comparison intervals beside it. ``draw_seed``: a
    sequential audit's seed; the decision is then the anytime-valid inference on the items in their draw order
    (`draw_order`), and the fixed-n inference is kept beside it."""
    b, t = p.baseline, p.treatment
    clusters = p.clusters
    inference = stats.paired_inference(b, t, level=level, clusters=clusters, score_bounds=score_bounds)
    fixed = None
    if draw_seed is not None:
        lo, hi = score_bounds if score_bounds is not None else (0.0, 1.0)
        order = draw_order(p.item_ids, draw_seed)
        fixed, inference = inference, stats.anytime_inference((t - b)[order], level, (lo - hi, hi - lo))
    clt = stats.paired_clt_delta(b, t, level=level, clusters=clusters)
    boot = exact = None
    if clusters is None:
        # Shown beside the decision interval; with clusters the item bootstrap would understate the uncertainty.
        boot = stats.paired_bootstrap_delta(b, t, rng, resamples=resamples, level=level, max_draws=BOOTSTRAP_MAX_DRAWS)
        if p.binary:
            exact = stats.mcnemar_paired(b, t, alternative="two-sided")
    return MeasuredCell(
        p.variant, p.budget, p.scoring, p.n, _mean(b), _mean(t), inference, boot, clt, exact, p.binary, fixed
    )


def draw_keys(item_ids: Any, seed: int) -> np.ndarray:
    """Each item's place in a sequential audit's draw order: the first 8 bytes of sha256(seed, item id), so an item's
    place depends on its id and the seed alone — the same in every variant, budget and scoring, in any subset of
    the items, whatever order the dataset lists them in, and never on an outcome."""
    prefix = f"{int(seed)}\x00".encode()
    return np.array(
        [int.from_bytes(hashlib.sha256(prefix + str(i).encode()).digest()[:8], "big") for i in item_ids],
        dtype=np.uint64,
    )


def draw_order(item_ids: Any, seed: int) -> np.ndarray:
    """The indices that put ``item_ids`` in draw order (`draw_keys`)."""
    return np.argsort(draw_keys(item_ids, seed), kind="stable")


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x)) if len(x) else math.nan


def seeded_rng(seed: int, salt: str) -> np.random.Generator:
    """A generator seeded from the audit seed and a stable salt, so results do not depend on check order."""
    salt_int = int.from_bytes(hashlib.sha256(salt.encode()).digest()[:4], "little")
    return np.random.default_rng([seed, salt_int])


@dataclass
class Cells:
    """Every cell of one audit's records, each measured once (on first use).

    ``score_bounds`` is the range every score lies in (`stats.score_range`): the declared one, else [0, 1] widened
    to every score in the records.
    """

    records: Records | None
    seed: int
    resamples: int
    level: float
    declared_bounds: tuple[float, float] | None = None
    draw_seed: int | None = None  # sequential audits: the seed of the draw order (`measure`)
    _memo: dict[CellKey, MeasuredCell | None] = field(default_factory=dict, repr=False)
    _bounds: tuple[float, float] | None = field(default=None, repr=False)

    @property
    def score_bounds(self) -> tuple[float, float]:
        if self._bounds is None:
            scores = (
                self.records.table["score"].to_numpy(dtype=float)
                if self.records is not None
                else np.array([], dtype=float)
            )
            self._bounds = stats.score_range(scores, np.array([], dtype=float), self.declared_bounds, [])
        return self._bounds

    def get(self, key: CellKey) -> MeasuredCell | None:
        """The measured cell; None when the records have no such cell."""
        if key not in self._memo:
            rec = self.records
            if rec is None or not rec.has(key.variant, key.budget, key.scoring):
                self._memo[key] = None
            else:
                p = rec.paired(key.scoring, key.budget, key.variant)
                rng = seeded_rng(self.seed, f"cell/{key.variant}/{key.budget}/{key.scoring}")
                self._memo[key] = measure(p, rng, self.resamples, self.level, self.score_bounds, self.draw_seed)
        return self._memo[key]


__all__ = [
    "BOOTSTRAP_MAX_DRAWS",
    "MeasuredCell",
    "CellKey",
    "Cells",
    "DEFAULT_VARIANT",
    "draw_keys",
    "draw_order",
    "measure",
    "seeded_rng",
]
