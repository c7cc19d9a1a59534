"""Calibration: the auditor's own error rates, measured by simulating claims whose truth is known.

Every replicate draws paired outcomes (0/1 with within-item correlation 0.5 unless the cell says otherwise:
continuous scores in the skewed and symmetric cells), builds a claim and in-memory Records, and runs the public
`audit.verify.verify` on them. Each cell counts how often the verdict is wrong for a situation whose truth is
known: a `supported` verdict under no true difference, a `fragile` verdict for a gain that is the same under every
perturbation, a `not_reproduced` verdict when the measured gain is at least the reported one, a rejected null
with clustered items (equal or unequal clusters) or with skewed continuous scores. Every rate carries a Wilson 95%
interval. Cells run at n in NS unless they name their own item counts (the continuous cells: 30 and 100) or have
a fixed one (rounded_report: 50,000; understated_margin: 2,000).

The sequential cells (names ``seq_*``; ``--cells seq`` selects them all; default n: SEQ_NS) stream simulated claims
batch by batch: each replicate runs the fixed-n ``verify`` *and* ``verify(..., stream=True)`` (items in the seeded
draw order, a look every 50 items, stop once the verdict is settled: `audit.stopping`) on the same simulated data,
and records both verdicts, ``stopped_at`` and ``items_total``. A ``seq_X`` cell draws exactly the data (and the
audit seed) of cell ``X`` at the same (seed, n, replicate), so its fixed-n column repeats X's row; ``seq_mde2x`` and
``seq_mde3x`` set the true gain to 2× and 3× the fixed-n MDE of the design at that n (`design_mde`). Their goals:
sequential ``supported`` ≤ 2.5% under the null; false ``fragile`` ≤ 5% for a gain the perturbations leave alone;
for true gains of at least 2× the MDE, the sequential ``supported`` rate within 5 points of the fixed-n one and the
median share of the items used (stopped_at / items_total) at most 50%. Beside them, a yardstick: whether the same
stop rule, read from fixed-n intervals at one look at n/2 (`audit.verify.fixed_n_look`), would settle — how early
any rule that stops on these decisions could stop, before the price of looking at any time.

    python benchmarks/calibrate.py [--reps 400] [--resamples 1000] [--jobs 2] [--seed 0] [--cells NAME ...]
                                   [--n N ...] [--quick] [--out benchmarks/calibration]

Each replicate's random numbers come from (seed, cell, n, replicate) alone, so the counts do not depend on --jobs
or on which cells are run. Writes calibration.json (every count and interval) and CALIBRATION.md (one table per
cell) into --out, and ends with one SUMMARY line naming every goal that was missed. The exit code is 0 even then:
this is a measurement, not a gate.
"""
from __future__ import annotations

import os

# One BLAS thread per process: the workers are the parallelism, and the machine is shared.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import datetime as _dt  # noqa: E402
import gc  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import multiprocessing  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections import Counter  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

VERDICTS = ("supported", "fragile", "not_reproduced", "inconclusive")
NS = (30, 100, 200, 500, 1000)
QUICK_NS = (30, 200)
QUICK_REPS = 20
LEVEL = 0.95
ALPHA = 0.05

# The simulated world. Every cell states which of these it uses.
BASE_RATE = 0.5        # baseline accuracy
GAIN = 0.10            # the true gain where there is one (treatment accuracy 0.6)
PHI = 0.5              # within-item correlation of the two arms' 0/1 outcomes (phi coefficient)
BUDGETS = (512, 1024)  # the claimed budget first
BUDGET_RHO = 0.8       # per item, P(both arms' outputs at 1024 are the ones at 512); else re-drawn
OOD_VARIANTS = 3
OOD_RHO = 0.5          # per item and variant, P(the variant leaves both outputs as they were); else re-drawn
SCORINGS = ("exact", "last-number")  # the claimed scoring first; both 0/1 built-in scorers (higher is better)
SCORING_RHO = 0.9      # per item, P(the second scoring gives both arms the same scores as the first); else re-drawn
ICC = 0.1              # clustered cells: between-cluster share of the latent (probit-scale) variance
CLUSTERS = (5, 10, 30)
MIN_ITEMS_PER_CLUSTER = 2
UNEQUAL_SIGMA = 1.0    # unequal clusters: sizes ∝ lognormal(0, UNEQUAL_SIGMA) weights, at least 1 item each
CONTINUOUS_NS = (30, 100)
SKEW_SHARE = 0.15      # skewed continuous cells: this share of items gains Exp(1), the whole offset to mean 0
SKEW_NOISE = 0.1       # SD of the symmetric per-item noise on top (the treatment "usually slightly worse")
SYMMETRIC_SD = 0.3     # symmetric continuous cell: N(0, SYMMETRIC_SD²) per-item differences
ROUNDED_N, ROUNDED_GAIN, ROUNDED_REPORTED = 50_000, 0.096, 0.10
UNDERSTATED_N, UNDERSTATED_GAINS, UNDERSTATED_REPORTED = 2_000, (0.10, 0.075), 0.03
# Sequential cells
SEQ_NS = (200, 1000)       # their item counts when --n is not given
MDE_POWER = 0.8            # the fixed-n MDE: the smallest gain McNemar's test detects with this power at ALPHA
MDE_MULTIPLES = (2, 3)     # seq_mde2x, seq_mde3x: true gain = multiple × MDE(n)
MDE_MIN_N = 100            # below it 3 × MDE(n) leaves no room under an accuracy of 1
SEQ_GAP_GOAL = 0.05        # |fixed-n supported rate − sequential supported rate| ≤ 5 points ...
SEQ_STOP_GOAL = 0.5        # ... and median stopped_at / items_total ≤ 50% ...
SEQ_GOAL_MIN_MDE = 2.0     # ... where the true gain is at least this many fixed-n MDEs


# ---------------------------------------------------------------------------------------------------------------
# The data model


def joint_2x2(p_b: float, p_t: float, phi: float) -> tuple[np.ndarray, float]:
    """Cell probabilities of (baseline, treatment) in order 00, 01, 10, 11 with marginals p_b, p_t and correlation phi.

    P(11) = p_b p_t + phi sqrt(p_b q_b p_t q_t), clipped to the Fréchet bounds so every cell is a probability; the
    achieved phi (equal to the asked one unless the clip bit) is returned beside the cells.
    """
    sd = math.sqrt(p_b * (1 - p_b) * p_t * (1 - p_t))
    p11 = p_b * p_t + phi * sd
    p11 = min(max(p11, max(0.0, p_b + p_t - 1.0)), min(p_b, p_t))
    cells = np.array([1.0 - p_b - p_t + p11, p_t - p11, p_b - p11, p11])
    cells = np.clip(cells, 0.0, 1.0)
    cells /= cells.sum()
    achieved = (p11 - p_b * p_t) / sd if sd > 0 else math.nan
    return cells, float(achieved)


def draw_pairs(rng: np.random.Generator, n: int, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """n independent items, each a (baseline, treatment) 0/1 pair drawn from the 2×2 law ``cells``."""
    k = np.searchsorted(np.cumsum(cells), rng.random(n), side="right").clip(0, 3)
    return (k >= 2).astype(float), (k % 2).astype(float)


def redraw(rng: np.random.Generator, b: np.ndarray, t: np.ndarray, keep: float,
           cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per item: with probability ``keep`` both arms' outcomes stay; otherwise a fresh pair from the same 2×2 law.

    The new pair has the same joint law as the old (same marginals, same within-item phi), and each arm's outcome
    correlates with its old one by exactly ``keep`` (a mixture of a copy and an independent draw).
    """
    stay = rng.random(len(b)) < keep
    nb, nt = draw_pairs(rng, len(b), cells)
    return np.where(stay, b, nb), np.where(stay, t, nt)


def clustered_pairs(rng: np.random.Generator, n: int, c: int, p: float, phi: float,
                    icc: float, cl: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Paired 0/1 outcomes of n items in c equal clusters (item i in cluster i mod c; or the assignment ``cl``),
    both arms at rate p.

    Latent probit model: z_arm = u_c + v_arm,c + w_i + e_arm,i, unit variance per arm, outcome 1 when
    z_arm > Φ⁻¹(1 − p).
    The latent within-item correlation r is the tetrachoric value that gives the 0/1 correlation phi at p = 0.5
    (r = sin(π phi / 2) = 0.707 for phi = 0.5). The cluster effects (u shared, v per arm) have variance icc in each
    arm and correlate across arms by r too, so the between-cluster share is icc in each arm *and* in the arm
    difference: Var(u) = icc r, Var(v) = icc (1 − r), Var(w) = r (1 − icc), Var(e) = (1 − r)(1 − icc).
    Under this null every cluster has its own true delta, which averages to 0 over clusters.
    """
    r = math.sin(math.pi * phi / 2.0)
    cl = np.arange(n) % c if cl is None else cl
    u = rng.normal(0.0, math.sqrt(icc * r), c)
    vb, vt = rng.normal(0.0, math.sqrt(icc * (1 - r)), (2, c))
    w = rng.normal(0.0, math.sqrt(r * (1 - icc)), n)
    eb, et = rng.normal(0.0, math.sqrt((1 - r) * (1 - icc)), (2, n))
    from scipy.stats import norm

    cut = float(norm.ppf(1.0 - p))
    zb = u[cl] + vb[cl] + w + eb
    zt = u[cl] + vt[cl] + w + et
    return (zb > cut).astype(float), (zt > cut).astype(float), cl, r


def unequal_sizes(rng: np.random.Generator, n: int, c: int, sigma: float = UNEQUAL_SIGMA) -> np.ndarray:
    """Cluster sizes for n items in c clusters: 1 item each, the other n − c spread by a multinomial with
    probabilities ∝ lognormal(0, sigma) weights (drawn afresh per replicate), so a few clusters hold most items."""
    w = rng.lognormal(0.0, sigma, c)
    return 1 + rng.multinomial(n - c, w / w.sum())


def skewed_differences(rng: np.random.Generator, n: int, sign: float = 1.0) -> np.ndarray:
    """Per-item differences with mean 0 and a long tail: SKEW_SHARE of items gain Exp(1), every item is offset by
    −SKEW_SHARE (the mean of the gains), plus N(0, SKEW_NOISE²) noise; ``sign`` −1 mirrors the tail."""
    gains = np.where(rng.random(n) < SKEW_SHARE, rng.exponential(1.0, n), 0.0)
    return sign * (gains - SKEW_SHARE + rng.normal(0.0, SKEW_NOISE, n))


def phi_of(b: np.ndarray, t: np.ndarray) -> float:
    if np.std(b) == 0 or np.std(t) == 0:
        return math.nan
    return float(np.corrcoef(b, t)[0, 1])


def design_psi() -> float:
    """The discordance ψ = P(01) + P(10) of the paired 0/1 design with no difference (both arms at BASE_RATE,
    within-item correlation PHI): 2 · (0.25 − 0.5 · 0.25) = 0.25."""
    cells, _ = joint_2x2(BASE_RATE, BASE_RATE, PHI)
    return float(cells[1] + cells[2])


_MDE: dict[int, float] = {}


def design_mde(n: int) -> float:
    """The fixed-n MDE of the design at n items: `audit.stats.mde_mcnemar(n, design_psi(), alpha=ALPHA,
    power=MDE_POWER)` (McNemar with continuity correction; exact enumeration up to n = 400, Connor 1987 above) — the
    test the audit's own MDE uses. ψ is the design's discordance under no difference (0.25), so the MDE depends on n
    alone; at a true gain of 2 × MDE the discordance is a little higher (0.272 at n = 200, 0.254 at n = 1000), which
    only adds power. NaN where even a gain of ψ has less power (n < 50)."""
    if n not in _MDE:
        from audit.stats import mde_mcnemar

        _MDE[n] = float(mde_mcnemar(n, design_psi(), alpha=ALPHA, power=MDE_POWER))
    return _MDE[n]


# ---------------------------------------------------------------------------------------------------------------
# Claims and records, through the public API


def frame(arm: str, scores: np.ndarray, variant: str = "default", budget: int = BUDGETS[0],
          scoring: str = SCORINGS[0], clusters: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """One arm × variant × budget × scoring block of Records rows (the columns of ``audit.records.COLUMNS``).

    Outputs are one-token answers ("1" correct, "0" wrong) that stopped on their own (finish_reason "stop").
    """
    n = len(scores)

    def const(value: Any) -> np.ndarray:
        return np.full(n, value, dtype=object)

    return {
        "arm": const(arm), "item_id": _ids(n), "variant": const(variant), "budget": np.full(n, budget),
        "scoring": const(scoring), "score": scores.astype(float), "text": np.where(scores > 0, "1", "0").astype(object),
        "target": const("1"), "finish_reason": const("stop"), "completion_tokens": np.ones(n),
        "prompt_hash": const(None), "doc_hash": const(None), "source": const(f"simulated/{arm}/{variant}/{budget}"),
        "line": np.arange(1, n + 1), "extracted": const(None),
        "cluster": const(None) if clusters is None else np.array([f"c{int(x):03d}" for x in clusters], dtype=object),
    }


_ID_CACHE: dict[int, np.ndarray] = {}


def _ids(n: int) -> np.ndarray:
    if n not in _ID_CACHE:
        _ID_CACHE[n] = np.array([f"q{i:05d}" for i in range(n)], dtype=object)
    return _ID_CACHE[n]


def records_of(blocks: list[dict[str, np.ndarray]]):
    """In-memory Records: one row per arm × item × variant × budget × scoring."""
    from audit.records import COLUMNS, Records

    # Only the columns a block carries; Records adds the optional ones it leaves out.
    table = pd.DataFrame({c: np.concatenate([b[c] for b in blocks]) for c in COLUMNS if c in blocks[0]})
    return Records(table=table)


def claim_of(cell: str, resamples: int, *, budgets=BUDGETS[:1], scorings=SCORINGS[:1], variants=(),
             reported: dict | None = None, cluster_field: str | None = None):
    from audit.claim import Claim

    logs = {b: f"simulated/{b}" for b in budgets}
    data: dict[str, Any] = {
        "claim": {"title": f"calibration: {cell}", "metric": "exact_match", "reported": reported or {},
                  "settings": {"max_tokens": budgets[0], "scoring": scorings[0]}},
        "samples": {"format": "jsonl", "baseline": logs, "treatment": logs,
                    "variants": {v: {"baseline": logs, "treatment": logs} for v in variants}},
        "perturbations": {"scorings": list(scorings)},
        "options": {"resamples": resamples},
    }
    if cluster_field:
        data["options"]["cluster_field"] = cluster_field
    return Claim.model_validate(data)


# ---------------------------------------------------------------------------------------------------------------
# Cells


@dataclass(frozen=True)
class Metric:
    """One error rate of a cell: ``event`` verdicts among the replicates where ``among`` holds (default: all)."""

    name: str
    event: Callable[[dict], bool] | None = None
    goal: float | None = None          # the rate must be ≤ goal (None: reported only)
    goal_count: int | None = None      # the count must be ≤ goal_count (used for "exactly 0")
    among: Callable[[dict], bool] | None = None
    among_label: str = ""
    # "rate": event count / replicates. "gap": rate(event) − rate(other) on the same replicates (fixed-n minus
    # sequential), goal |gap| ≤ goal. "median": the median of value(replicate), goal ≤ goal.
    kind: str = "rate"
    other: Callable[[dict], bool] | None = None
    value: Callable[[dict], float] | None = None
    min_gain_mde: float | None = None  # the goal holds only where the cell's true gain ≥ this many design MDEs


def _is(*verdicts: str) -> Callable[[dict], bool]:
    return lambda r: r["verdict"] in verdicts


@dataclass(frozen=True)
class Cell:
    name: str
    description: str
    # (rng, n, resamples) → (claim, records, {"b": baseline scores, "t": treatment scores} at the claimed setting)
    simulate: Callable[[np.random.Generator, int, int], tuple[Any, Any, dict]]
    metrics: tuple[Metric, ...]
    parameters: dict = field(default_factory=dict)
    min_n: int = 2
    wrong: tuple[str, ...] = ()        # verdicts that are wrong in this cell (their findings are tallied)
    ns: tuple[int, ...] | None = None  # the item counts it runs at when --n is not given (None: NS)
    fixed_n: int | None = None         # the one item count it always runs at (the situation defines n)
    # Sequential cells: every replicate also runs verify(..., stream=True) on the same data.
    sequential: bool = False
    seed_key: str | None = None        # the cell whose replicate seeds (data and audit) it uses (None: its own name)
    true_gain: Callable[[int], float] | None = None  # the true gain at the claimed setting, by n


def _two_arm(rng, n, p_t):
    cells, _ = joint_2x2(BASE_RATE, p_t, PHI)
    b, t = draw_pairs(rng, n, cells)
    return cells, b, t


def sim_null(rng, n, resamples):
    _, b, t = _two_arm(rng, n, BASE_RATE)
    return claim_of("null", resamples), records_of([frame("baseline", b), frame("treatment", t)]), {"b": b, "t": t}


def sim_power(rng, n, resamples):
    _, b, t = _two_arm(rng, n, BASE_RATE + GAIN)
    return claim_of("power", resamples), records_of([frame("baseline", b), frame("treatment", t)]), {"b": b, "t": t}


def sim_budgets(rng, n, resamples):
    cells, b, t = _two_arm(rng, n, BASE_RATE + GAIN)
    b2, t2 = redraw(rng, b, t, BUDGET_RHO, cells)
    blocks = [frame("baseline", b, budget=BUDGETS[0]), frame("treatment", t, budget=BUDGETS[0]),
              frame("baseline", b2, budget=BUDGETS[1]), frame("treatment", t2, budget=BUDGETS[1])]
    return claim_of("budgets", resamples, budgets=BUDGETS), records_of(blocks), {"b": b, "t": t}


def sim_budget_break(rng, n, resamples):
    """+10 at the claimed budget; at the larger one the treatment's outputs are re-drawn at the baseline rate, so
    the gain is gone there (a real truncation artifact)."""
    cells, b, t = _two_arm(rng, n, BASE_RATE + GAIN)
    null_cells, _ = joint_2x2(BASE_RATE, BASE_RATE, PHI)
    b2, t2 = draw_pairs(rng, n, null_cells)
    keep = rng.random(n) < BUDGET_RHO  # the baseline keeps its outcome where greedy decoding had already stopped
    b2 = np.where(keep, b, b2)
    blocks = [frame("baseline", b, budget=BUDGETS[0]), frame("treatment", t, budget=BUDGETS[0]),
              frame("baseline", b2, budget=BUDGETS[1]), frame("treatment", t2, budget=BUDGETS[1])]
    return claim_of("budget_break", resamples, budgets=BUDGETS), records_of(blocks), {"b": b, "t": t}


def sim_ood(rng, n, resamples):
    cells, b, t = _two_arm(rng, n, BASE_RATE + GAIN)
    blocks = [frame("baseline", b), frame("treatment", t)]
    names = [f"ood-{k + 1}" for k in range(OOD_VARIANTS)]
    for v in names:
        vb, vt = redraw(rng, b, t, OOD_RHO, cells)
        blocks += [frame("baseline", vb, variant=v), frame("treatment", vt, variant=v)]
    return claim_of("ood", resamples, variants=names), records_of(blocks), {"b": b, "t": t}


def sim_scorings(rng, n, resamples):
    cells, b, t = _two_arm(rng, n, BASE_RATE + GAIN)
    b2, t2 = redraw(rng, b, t, SCORING_RHO, cells)
    blocks = [frame("baseline", b, scoring=SCORINGS[0]), frame("treatment", t, scoring=SCORINGS[0]),
              frame("baseline", b2, scoring=SCORINGS[1]), frame("treatment", t2, scoring=SCORINGS[1])]
    return claim_of("scorings", resamples, scorings=SCORINGS), records_of(blocks), {"b": b, "t": t}


def sim_reported_true(rng, n, resamples):
    _, b, t = _two_arm(rng, n, BASE_RATE + GAIN)
    claim = claim_of("reported_true", resamples, reported={"delta": GAIN})
    return claim, records_of([frame("baseline", b), frame("treatment", t)]), {"b": b, "t": t}


def sim_clustered(c: int):
    def sim(rng, n, resamples):
        b, t, cl, _ = clustered_pairs(rng, n, c, BASE_RATE, PHI, ICC)
        claim = claim_of(f"clustered_c{c}", resamples, cluster_field="passage")
        blocks = [frame("baseline", b, clusters=cl), frame("treatment", t, clusters=cl)]
        return claim, records_of(blocks), {"b": b, "t": t}
    return sim


def sim_unequal(c: int):
    def sim(rng, n, resamples):
        sizes = unequal_sizes(rng, n, c)
        cl = np.repeat(np.arange(c), sizes)
        b, t, cl, _ = clustered_pairs(rng, n, c, BASE_RATE, PHI, ICC, cl=cl)
        claim = claim_of(f"unequal_c{c}", resamples, cluster_field="passage")
        blocks = [frame("baseline", b, clusters=cl), frame("treatment", t, clusters=cl)]
        return claim, records_of(blocks), {"b": b, "t": t, "largest_share": float(sizes.max() / n)}
    return sim


def _continuous(cell: str, d_of):
    def sim(rng, n, resamples):
        b = rng.beta(2.0, 2.0, n)  # a continuous score per item (edit similarity, chrF, ...)
        t = b + d_of(rng, n)
        claim = claim_of(cell, resamples)
        return claim, records_of([frame("baseline", b), frame("treatment", t)]), {"b": b, "t": t}
    return sim


sim_skewed = _continuous("skewed", lambda rng, n: skewed_differences(rng, n, +1.0))
sim_skewed_mirror = _continuous("skewed_mirror", lambda rng, n: skewed_differences(rng, n, -1.0))
sim_symmetric = _continuous("symmetric", lambda rng, n: rng.normal(0.0, SYMMETRIC_SD, n))


_WRITTEN: dict[str, Any] = {}


def written_claim(cell: str, resamples: int, delta_text: str):
    """A claim read from a file in which the reported delta is *written* as ``delta_text`` ("0.10"): its rounding
    tolerance comes from the text (YAML alone reads 0.1, a tolerance ten times wider). One file per process."""
    import tempfile

    from audit.claim import load_claim

    key = (cell, resamples, delta_text)
    if key not in _WRITTEN:
        folder = Path(tempfile.mkdtemp(prefix="audit-calibrate-"))
        path = folder / f"{cell}.yaml"
        path.write_text(f"claim:\n  title: 'calibration: {cell}'\n  metric: exact_match\n"
                        f"  reported: {{delta: {delta_text}}}\n"
                        f"  settings: {{max_tokens: {BUDGETS[0]}, scoring: {SCORINGS[0]}}}\n"
                        f"samples: {{format: jsonl, baseline: {{{BUDGETS[0]}: simulated}}, "
                        f"treatment: {{{BUDGETS[0]}: simulated}}}}\n"
                        f"perturbations: {{scorings: [{SCORINGS[0]}]}}\noptions: {{resamples: {resamples}}}\n",
                        encoding="utf-8")
        _WRITTEN[key] = load_claim(path, check_files=False)
    return _WRITTEN[key]


def sim_rounded_report(rng, n, resamples):
    """A true gain of +0.096 on 50,000 items, reported (rounded to 2 decimals) as +0.10 — written "0.10" in the claim
    file, so the tolerance is half a unit of the second decimal (±0.005)."""
    _, b, t = _two_arm(rng, n, BASE_RATE + ROUNDED_GAIN)
    claim = written_claim("rounded_report", resamples, f"{ROUNDED_REPORTED:.2f}")
    return claim, records_of([frame("baseline", b), frame("treatment", t)]), {"b": b, "t": t}


def sim_understated_margin(rng, n, resamples):
    """+0.10 at the claimed budget and +0.075 at the larger one, outputs drawn afresh at each budget, and a
    reported delta of only +0.03: the gain holds far above what was claimed at both budgets."""
    _, b, t = _two_arm(rng, n, BASE_RATE + UNDERSTATED_GAINS[0])
    _, b2, t2 = _two_arm(rng, n, BASE_RATE + UNDERSTATED_GAINS[1])
    blocks = [frame("baseline", b, budget=BUDGETS[0]), frame("treatment", t, budget=BUDGETS[0]),
              frame("baseline", b2, budget=BUDGETS[1]), frame("treatment", t2, budget=BUDGETS[1])]
    claim = claim_of("understated_margin", resamples, budgets=BUDGETS, reported={"delta": UNDERSTATED_REPORTED})
    return claim, records_of(blocks), {"b": b, "t": t}


def sim_mde(k: int):
    """A true gain of k × the fixed-n MDE of the design at n (`design_mde`); one budget, one scoring, nothing
    reported. Where the Fréchet bound clips the within-item correlation (n = 200, 3 × MDE: phi 0.49) the achieved
    phi is in the row's mean phi."""
    def sim(rng, n, resamples):
        gain = k * design_mde(n)
        if not 0.0 < gain < 1.0 - BASE_RATE:
            raise ValueError(f"{k} × MDE({n}) = {gain:.3f} leaves no room above the baseline rate {BASE_RATE}")
        _, b, t = _two_arm(rng, n, BASE_RATE + gain)
        claim = claim_of(f"seq_mde{k}x", resamples)
        return claim, records_of([frame("baseline", b), frame("treatment", t)]), {"b": b, "t": t}
    return sim


def _measured_at_least_reported(r: dict) -> bool:
    return r["delta"] >= GAIN - 1e-12


def _measured_at_stop_at_least_reported(r: dict) -> bool:
    return r["seq_delta"] is not None and r["seq_delta"] >= GAIN - 1e-12


def _seq(*verdicts: str) -> Callable[[dict], bool]:
    return lambda r: r["seq_verdict"] in verdicts


def _items_used(r: dict) -> float:
    return r["stopped_at"] / r["items_total"]


def _half_look() -> Metric:
    """How often the stop rule, read from fixed-n intervals at one look at n/2, would settle: a median stop at or
    below 50% of the items needs at least half the audits settled by then with the (wider) anytime intervals, so
    a rate well below 50% here means the items goal is out of reach of any rule that stops on these decisions."""
    return Metric("yardstick: the stop rule on fixed-n intervals settles at one look at n/2", lambda r: bool(
        r.get("half_settled")), among=lambda r: r.get("half_settled") is not None,
        among_label="replicates with the yardstick recorded")


def _gap(verdict: str, goal: float | None = SEQ_GAP_GOAL) -> Metric:
    """The fixed-n rate of ``verdict`` minus the sequential one, on the same replicates."""
    return Metric(f"{verdict}: fixed-n rate − sequential rate", _is(verdict), goal=goal, kind="gap",
                  other=_seq(verdict), min_gain_mde=SEQ_GOAL_MIN_MDE if goal is not None else None)


def _stop_share(goal: float | None = SEQ_STOP_GOAL) -> Metric:
    return Metric("items used: median stopped_at / items_total", kind="median", value=_items_used, goal=goal,
                  min_gain_mde=SEQ_GOAL_MIN_MDE if goal is not None else None)


NOT_FRAGILE = Metric("fragile (false)", _is("fragile"), goal=0.05)
_PAIR = {"baseline_rate": BASE_RATE, "phi": PHI}


def _other_verdicts() -> tuple[Metric, ...]:
    """The rates of the verdicts other than fragile, reported without a goal."""
    return tuple(Metric(v, _is(v)) for v in VERDICTS if v != "fragile")


CELLS: dict[str, Cell] = {c.name: c for c in [
    Cell("null", "No true difference: both arms at 0.5; one budget, one scoring, no reported numbers. "
         "`supported` is a type-I error.", sim_null,
         (Metric("supported (type-I)", _is("supported"), goal=ALPHA / 2),
          Metric("rejects the null either way (supported or not_reproduced)", _is("supported", "not_reproduced")),
          Metric("fragile", _is("fragile"), goal=0.05)),
         {**_PAIR, "treatment_rate": BASE_RATE}, wrong=("supported", "not_reproduced", "fragile")),
    Cell("power", "A true +10-point gain (0.5 → 0.6); one budget, one scoring, no reported numbers. "
         "`supported` is power; `fragile` and `not_reproduced` are wrong.", sim_power,
         (Metric("supported (power)", _is("supported")), NOT_FRAGILE,
          Metric("not_reproduced", _is("not_reproduced")), Metric("inconclusive", _is("inconclusive"))),
         {**_PAIR, "treatment_rate": BASE_RATE + GAIN}, wrong=("fragile", "not_reproduced")),
    Cell("budgets", f"The same +10 gain at budgets {BUDGETS[0]} (claimed) and {BUDGETS[1]}: per item, with probability "
         f"{BUDGET_RHO} both arms' outputs at {BUDGETS[1]} are the ones at {BUDGETS[0]} (greedy decoding, the output "
         f"ended before {BUDGETS[0]} tokens), otherwise a fresh pair from the same 2×2 law. Each arm's outcome "
         f"correlates {BUDGET_RHO} across budgets; the delta is +10 at both. `fragile` is wrong.", sim_budgets,
         (NOT_FRAGILE, *_other_verdicts()),
         {**_PAIR, "treatment_rate": BASE_RATE + GAIN, "budgets": list(BUDGETS), "budget_rho": BUDGET_RHO},
         wrong=("fragile", "not_reproduced")),
    Cell("budget_break", f"A real artifact: +10 at budget {BUDGETS[0]} (claimed), none at {BUDGETS[1]} (the "
         f"treatment's outputs there re-drawn at the baseline rate; the baseline keeps its outcome with probability "
         f"{BUDGET_RHO}). `fragile` is the power of the break rule; `supported` misses the artifact.",
         sim_budget_break,
         (Metric("fragile (power of the break rule)", _is("fragile")),
          Metric("supported (artifact missed)", _is("supported")),
          Metric("inconclusive", _is("inconclusive"))),
         {**_PAIR, "treatment_rate": BASE_RATE + GAIN, "budgets": list(BUDGETS), "budget_rho": BUDGET_RHO},
         wrong=("supported",)),
    Cell("ood", f"The same +10 gain under {OOD_VARIANTS} OOD prompt variants that change nothing (same items): "
         f"per item and variant, with probability {OOD_RHO} both outputs are unchanged, otherwise a fresh pair from "
         "the same 2×2 law. `fragile` is wrong.", sim_ood,
         (NOT_FRAGILE, *_other_verdicts()),
         {**_PAIR, "treatment_rate": BASE_RATE + GAIN, "variants": OOD_VARIANTS, "ood_rho": OOD_RHO},
         wrong=("fragile", "not_reproduced")),
    Cell("scorings", f"The same +10 gain under 2 scorings ({SCORINGS[0]} claimed, {SCORINGS[1]}): per item, with "
         f"probability {SCORING_RHO} the second scoring gives both arms the first one's scores, otherwise a fresh "
         "pair from the same 2×2 law (the scorings agree on about 95% of an arm's items). `fragile` is wrong.",
         sim_scorings, (NOT_FRAGILE, *_other_verdicts()),
         {**_PAIR, "treatment_rate": BASE_RATE + GAIN, "scorings": list(SCORINGS), "scoring_rho": SCORING_RHO},
         wrong=("fragile", "not_reproduced")),
    Cell("reported_true", "A true +10 gain, and the claim reports exactly that: `claim.reported.delta: 0.10`. "
         "`not_reproduced` when the measured delta is at least the reported one must never happen.",
         sim_reported_true,
         (Metric("not_reproduced", _is("not_reproduced")),
          Metric("not_reproduced when measured delta ≥ reported", _is("not_reproduced"), goal_count=0,
                 among=_measured_at_least_reported, among_label="replicates with measured delta ≥ 0.10"),
          NOT_FRAGILE, Metric("supported", _is("supported"))),
         {**_PAIR, "treatment_rate": BASE_RATE + GAIN, "reported_delta": GAIN},
         wrong=("not_reproduced", "fragile")),
    *[Cell(f"clustered_c{c}", f"No true difference on average, {c} equal clusters (`options.cluster_field`): latent "
           f"probit model, ICC {ICC} in each arm and in the arm difference (every cluster has its own true delta, "
           f"mean 0), within-item latent correlation sin(π·{PHI}/2) = {math.sin(math.pi * PHI / 2):.3f} (0/1 phi "
           f"{PHI} at rate 0.5). Rejecting the null either way is a type-I error. n ≥ {MIN_ITEMS_PER_CLUSTER}·C.",
           sim_clustered(c),
           (Metric("rejects the null either way (supported or not_reproduced)", _is("supported", "not_reproduced"),
                   goal=0.06),
            Metric("supported (type-I)", _is("supported"), goal=ALPHA / 2)),
           {**_PAIR, "treatment_rate": BASE_RATE, "clusters": c, "icc_latent": ICC,
            "latent_within_item_correlation": math.sin(math.pi * PHI / 2)},
           min_n=MIN_ITEMS_PER_CLUSTER * c, wrong=("supported", "not_reproduced"))
      for c in CLUSTERS],
    *[Cell(f"unequal_c{c}", f"No true difference on average, {c} clusters of unequal size (`options.cluster_field`): "
           f"each replicate draws weights lognormal(0, {UNEQUAL_SIGMA:g}) and gives every cluster 1 item plus a "
           f"multinomial share of the other n − {c} ∝ its weight, so one or two clusters often hold most items; "
           f"outcomes from the latent probit model of the clustered cells (ICC {ICC}: a cluster random effect, every "
           "cluster its own true delta, mean 0). Rejecting the null either way is a type-I error.",
           sim_unequal(c),
           (Metric("rejects the null either way (supported or not_reproduced)", _is("supported", "not_reproduced"),
                   goal=0.06),
            Metric("supported (type-I)", _is("supported"), goal=ALPHA / 2),
            Metric("not_reproduced (type-I, other tail)", _is("not_reproduced"), goal=ALPHA / 2),
            Metric("fragile", _is("fragile"), goal=0.05)),
           {**_PAIR, "treatment_rate": BASE_RATE, "clusters": c, "icc_latent": ICC, "size_weights": "lognormal(0, 1)",
            "min_cluster_size": 1},
           min_n=MIN_ITEMS_PER_CLUSTER * c, wrong=("supported", "not_reproduced", "fragile"))
      for c in CLUSTERS],
    Cell("skewed", f"Continuous scores (baseline Beta(2, 2)), no true difference: per item the treatment is "
         f"{SKEW_SHARE:g} worse plus N(0, {SKEW_NOISE:g}²) noise, and {SKEW_SHARE:.0%} of items gain Exp(1) on top "
         f"(mean difference 0, skewness about 5): usually slightly worse, occasionally much better. "
         "`not_reproduced` (a reversal) is the error on the side away from the long tail, `supported` on its side.",
         sim_skewed,
         (Metric("not_reproduced (type-I, short-tail side)", _is("not_reproduced"), goal=ALPHA / 2),
          Metric("supported (type-I, long-tail side)", _is("supported"), goal=ALPHA / 2),
          Metric("fragile", _is("fragile"), goal=0.05)),
         {"baseline": "Beta(2, 2)", "gain_share": SKEW_SHARE, "gain": "Exp(1)", "offset": -SKEW_SHARE,
          "noise_sd": SKEW_NOISE}, wrong=("supported", "not_reproduced", "fragile"), ns=CONTINUOUS_NS),
    Cell("skewed_mirror", "The skewed cell mirrored: the treatment usually slightly better, occasionally much worse "
         "(mean difference 0). `supported` is now the error on the side away from the long tail.", sim_skewed_mirror,
         (Metric("supported (type-I, short-tail side)", _is("supported"), goal=ALPHA / 2),
          Metric("not_reproduced (type-I, long-tail side)", _is("not_reproduced"), goal=ALPHA / 2),
          Metric("fragile", _is("fragile"), goal=0.05)),
         {"baseline": "Beta(2, 2)", "gain_share": SKEW_SHARE, "gain": "−Exp(1)", "offset": SKEW_SHARE,
          "noise_sd": SKEW_NOISE}, wrong=("supported", "not_reproduced", "fragile"), ns=CONTINUOUS_NS),
    Cell("symmetric", f"Continuous scores (baseline Beta(2, 2)), no true difference, symmetric per-item differences "
         f"N(0, {SYMMETRIC_SD:g}²).", sim_symmetric,
         (Metric("supported (type-I)", _is("supported"), goal=ALPHA / 2),
          Metric("not_reproduced (type-I, other tail)", _is("not_reproduced"), goal=ALPHA / 2),
          Metric("fragile", _is("fragile"), goal=0.05)),
         {"baseline": "Beta(2, 2)", "difference": f"N(0, {SYMMETRIC_SD:g}²)"},
         wrong=("supported", "not_reproduced", "fragile"), ns=CONTINUOUS_NS),
    Cell("rounded_report", f"A true gain of +{ROUNDED_GAIN:g} (0.5 → {BASE_RATE + ROUNDED_GAIN:g}) on "
         f"{ROUNDED_N:,} paired 0/1 items, reported as `delta: {ROUNDED_REPORTED:.2f}` (rounded to 2 decimals). "
         "`not_reproduced` is wrong: the report is the truth, rounded.", sim_rounded_report,
         (Metric("not_reproduced", _is("not_reproduced"), goal=0.05), Metric("supported", _is("supported")),
          NOT_FRAGILE),
         {**_PAIR, "treatment_rate": BASE_RATE + ROUNDED_GAIN, "reported_delta": ROUNDED_REPORTED},
         wrong=("not_reproduced", "fragile"), fixed_n=ROUNDED_N),
    Cell("understated_margin", f"A true gain of +{UNDERSTATED_GAINS[0]:g} at budget {BUDGETS[0]} (claimed) and "
         f"+{UNDERSTATED_GAINS[1]:g} at {BUDGETS[1]}, outputs drawn afresh at each budget, {UNDERSTATED_N:,} paired "
         f"0/1 items, reported as `delta: {UNDERSTATED_REPORTED:g}`. The gain stays far above the reported one at "
         "both budgets, so `fragile` is wrong (the default margin, half the reported delta, is smaller than the "
         "true change).", sim_understated_margin,
         (NOT_FRAGILE, Metric("supported", _is("supported")), Metric("not_reproduced", _is("not_reproduced"))),
         {**_PAIR, "gains": list(UNDERSTATED_GAINS), "budgets": list(BUDGETS), "budget_rho": 0.0,
          "reported_delta": UNDERSTATED_REPORTED},
         wrong=("fragile", "not_reproduced"), fixed_n=UNDERSTATED_N),
]}


def _streamed(base: str, description: str, metrics: tuple[Metric, ...], gain: Callable[[int], float]) -> Cell:
    """Cell ``base`` streamed: the same simulated data and audit seed per (seed, n, replicate), both modes run."""
    b = CELLS[base]
    return Cell(f"seq_{base}", f"Cell `{base}` streamed (its data and audit seed, replicate by replicate; the "
                f"fixed-n column repeats its row). {description}", b.simulate, metrics,
                {**b.parameters, "streamed": True}, min_n=b.min_n, wrong=b.wrong, ns=SEQ_NS, sequential=True,
                seed_key=base, true_gain=gain)


def _reported(simulate: Callable) -> Callable:
    """``simulate`` with the true gain reported in the claim (`claim.reported.delta: 0.1`): the margin a sequential
    audit rules perturbations out within is then fixed before looking (half the reported delta)."""

    def sim(rng, n, resamples):
        claim, records, extra = simulate(rng, n, resamples)
        info = claim.claim.model_copy(update={"reported": claim.claim.reported.model_copy(update={"delta": GAIN})})
        return claim.model_copy(update={"claim": info}), records, extra

    return sim


def _streamed_reported(base: str, description: str, metrics: tuple[Metric, ...]) -> Cell:
    """Cell ``base`` streamed, its claim reporting the true gain (same data and audit seed as ``base``)."""
    c = _streamed(base, description, metrics, _gain_of(GAIN))
    return Cell(f"seq_{base}_reported", f"Cell `{base}` streamed with `claim.reported.delta: {GAIN}` (the true gain) "
                f"in its claim, its data and audit seed. {description}", _reported(c.simulate), c.metrics,
                {**c.parameters, "reported_delta": GAIN}, min_n=c.min_n, wrong=c.wrong, ns=SEQ_NS,
                sequential=True, seed_key=base, true_gain=c.true_gain)


def _gain_of(g: float) -> Callable[[int], float]:
    return lambda n: g


_SEQ_SAME_GAIN = (Metric("sequential: fragile (false)", _seq("fragile"), goal=0.05),
                  Metric("fixed-n: fragile (false)", _is("fragile")),
                  Metric("sequential: supported", _seq("supported")), Metric("fixed-n: supported", _is("supported")),
                  _gap("supported"), _stop_share(), _half_look(),
                  Metric("sequential: not_reproduced", _seq("not_reproduced")),
                  Metric("sequential: inconclusive", _seq("inconclusive")))

SEQ_CELLS: list[Cell] = [
    _streamed("null", "`supported` is a type-I error at whatever look the audit stops.",
              (Metric("sequential: supported (type-I)", _seq("supported"), goal=ALPHA / 2),
               Metric("fixed-n: supported (type-I)", _is("supported")),
               Metric("sequential: rejects the null either way (supported or not_reproduced)",
                      _seq("supported", "not_reproduced")),
               Metric("sequential: fragile", _seq("fragile"), goal=0.05),
               _stop_share(goal=None)), _gain_of(0.0)),
    _streamed("budgets", "`fragile` is wrong in either mode.", _SEQ_SAME_GAIN, _gain_of(GAIN)),
    _streamed("ood", "`fragile` is wrong in either mode.", _SEQ_SAME_GAIN, _gain_of(GAIN)),
    _streamed("scorings", "`fragile` is wrong in either mode.", _SEQ_SAME_GAIN, _gain_of(GAIN)),
    _streamed("budget_break", "A real artifact: `fragile` is the power of the break rule in each mode, reported "
              "side by side (no goal); `supported` misses the artifact.",
              (Metric("sequential: fragile (power of the break rule)", _seq("fragile")),
               Metric("fixed-n: fragile (power of the break rule)", _is("fragile")),
               _gap("fragile", goal=None),
               Metric("sequential: supported (artifact missed)", _seq("supported")),
               Metric("fixed-n: supported (artifact missed)", _is("supported")),
               Metric("sequential: inconclusive", _seq("inconclusive")), _stop_share(goal=None)), _gain_of(GAIN)),
    _streamed("reported_true", "`not_reproduced` when the measured delta is at least the reported one must never "
              "happen; for the sequential verdict the measured delta is the one on the items used up to the stop.",
              (Metric("sequential: not_reproduced when measured delta (at the stop) ≥ reported",
                      _seq("not_reproduced"), goal_count=0, among=_measured_at_stop_at_least_reported,
                      among_label="replicates with measured delta at the stop ≥ 0.10"),
               Metric("fixed-n: not_reproduced when measured delta ≥ reported", _is("not_reproduced"),
                      among=_measured_at_least_reported, among_label="replicates with measured delta ≥ 0.10"),
               Metric("sequential: not_reproduced", _seq("not_reproduced")),
               Metric("fixed-n: not_reproduced", _is("not_reproduced")),
               Metric("sequential: fragile (false)", _seq("fragile"), goal=0.05),
               Metric("sequential: supported", _seq("supported")), Metric("fixed-n: supported", _is("supported")),
               _gap("supported"), _stop_share()), _gain_of(GAIN)),
    *[Cell(f"seq_mde{k}x", f"A true gain of {k} × the fixed-n MDE of the design at n (`design_mde`: McNemar, "
           f"α = {ALPHA}, power {MDE_POWER}, at the design's discordance ψ = {design_psi():g}; 0.102 at n = 200, "
           f"0.045 at n = 1000), paired 0/1, baseline {BASE_RATE}, phi {PHI}; one budget, one scoring, nothing "
           "reported. `supported` is power in each mode; `fragile` and `not_reproduced` are wrong.", sim_mde(k),
           (Metric("sequential: supported (power)", _seq("supported")),
            Metric("fixed-n: supported (power)", _is("supported")),
            _gap("supported"), _stop_share(), _half_look(),
            Metric("sequential: fragile (false)", _seq("fragile"), goal=0.05),
            Metric("sequential: not_reproduced", _seq("not_reproduced")),
            Metric("sequential: inconclusive", _seq("inconclusive"))),
           {**_PAIR, "gain": f"{k} × design_mde(n)", "mde_discordance": design_psi(), "mde_power": MDE_POWER,
            "mde_test": "McNemar with continuity correction (audit.stats.mde_mcnemar)"},
           min_n=MDE_MIN_N, wrong=("fragile", "not_reproduced"), ns=SEQ_NS, sequential=True,
           true_gain=(lambda n, k=k: k * design_mde(n)))
      for k in MDE_MULTIPLES],
]
SEQ_CELLS += [_streamed_reported(b, "`fragile` is wrong in either mode.", _SEQ_SAME_GAIN)
              for b in ("budgets", "ood", "scorings")]
SEQ_CELLS.append(_streamed_reported("budget_break", "A real artifact: `fragile` is the power of the break rule.",
                                    next(c for c in SEQ_CELLS if c.name == "seq_budget_break").metrics))
CELLS.update({c.name: c for c in SEQ_CELLS})
ALIASES = {"clustered": [f"clustered_c{c}" for c in CLUSTERS], "unequal": [f"unequal_c{c}" for c in CLUSTERS],
           "continuous": ["skewed", "skewed_mirror", "symmetric"],
           "issue17": [*(f"unequal_c{c}" for c in CLUSTERS), "skewed", "skewed_mirror", "symmetric"],
           "seq": [c.name for c in SEQ_CELLS], "sequential": [c.name for c in SEQ_CELLS]}


# ---------------------------------------------------------------------------------------------------------------
# Running


def replicate_seed(seed: int, cell: str, n: int, rep: int) -> np.random.SeedSequence:
    cell_key = int.from_bytes(hashlib.sha256(cell.encode()).digest()[:8], "little")
    return np.random.SeedSequence([seed, cell_key, n, rep])


def warm_up(sequential: bool = False) -> None:
    """Import and exercise everything once, then freeze the heap, before any replicate is timed.

    The first audit in a process pays the lazy imports (scipy, statsmodels); timing it would skew the seconds per
    replicate. statsmodels' Holm adjustment calls ``gc.collect()`` on every call, whose cost grows with the heap;
    freezing the objects that exist after the imports keeps that cost to the replicate's own objects. Neither
    changes any verdict.
    """
    run_one(("null", 30, 0, 0, 1000))
    run_one(("ood", 30, 0, 0, 1000))
    if sequential:  # the streamed path's own imports (audit.stopping, the betting tests)
        run_one(("seq_ood", 30, 0, 0, 1000))
    gc.freeze()


def run_one(task: tuple[str, int, int, int, int]) -> dict:
    """One replicate: simulate, verify, return what the tables need (module-level so a process pool can call it)."""
    cell_name, n, rep, seed, resamples = task
    from audit.verify import fixed_n_look, verify

    cell = CELLS[cell_name]
    ss = replicate_seed(seed, cell.seed_key or cell_name, n, rep)
    data_ss, audit_ss = ss.spawn(2)
    rng = np.random.default_rng(data_ss)
    audit_seed = int(audit_ss.generate_state(1, np.uint64)[0] >> np.uint64(1))  # < 2**63
    t0, c0 = time.perf_counter(), time.process_time()
    claim, records, extra = cell.simulate(rng, n, resamples)
    b, t = extra["b"], extra["t"]
    out = {"cell": cell_name, "n": n, "rep": rep, "delta": float(np.mean(t) - np.mean(b)), "phi": phi_of(b, t),
           "verdict": "error", "sources": [], "error": None, "largest_share": extra.get("largest_share")}
    if cell.sequential:
        out.update({"seq_verdict": "error", "seq_sources": [], "stopped_at": None, "items_total": None,
                    "stopped_early": None, "settled": None, "seq_reason": None, "looks": None, "seq_delta": None,
                    "seq_seconds": math.nan, "half_settled": None})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            outcome = verify(claim, records=records, seed=audit_seed, resamples=resamples)
        out["verdict"] = outcome.report.verdict
        if out["verdict"] in cell.wrong:
            out["sources"] = sorted({f"{f.check}.{f.code}" for f in outcome.findings if f.impact == out["verdict"]})
        if cell.sequential:
            # The same claim, records and audit seed, met batch by batch in the seeded draw order.
            s0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                streamed = verify(claim, records=records, seed=audit_seed, resamples=resamples, stream=True)
            run = streamed.report.sequential
            out.update({"seq_verdict": streamed.report.verdict, "stopped_at": run.stopped_at,
                        "items_total": run.items_total, "stopped_early": run.stopped_early,
                        "settled": getattr(run, "settled", None),
                        "seq_reason": run.reason[:300], "looks": len(run.looks),
                        "seq_delta": claimed_delta(streamed.records), "seq_seconds": time.perf_counter() - s0})
            # The yardstick: would the same stop rule, read from fixed-n intervals, settle at one look at n/2?
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out["half_settled"] = fixed_n_look(claim, records, n // 2, audit_seed, resamples).settled
            if out["seq_verdict"] in cell.wrong:
                out["seq_sources"] = sorted({f"{f.check}.{f.code}" for f in streamed.findings
                                             if f.impact == out["seq_verdict"]})
    except Exception as exc:  # noqa: BLE001 — a measurement run records the failure and goes on
        out["error"] = f"{type(exc).__name__}: {exc}"[:500]
    out["seconds"] = time.perf_counter() - t0
    out["cpu_seconds"] = time.process_time() - c0
    return out


def claimed_delta(records) -> float:
    """Treatment minus baseline mean score at the claimed setting (default variant, first budget and scoring) of
    ``records``: for a streamed audit, the delta on the items used up to the stop."""
    from audit.records import DEFAULT_VARIANT

    tab = records.table
    sel = tab[(tab["variant"] == DEFAULT_VARIANT) & (tab["budget"] == BUDGETS[0]) & (tab["scoring"] == SCORINGS[0])]
    means = sel.groupby("arm")["score"].mean()
    return float(means["treatment"] - means["baseline"])


def _interval(k: int, n: int) -> tuple[float, float]:
    from audit.stats import wilson

    if n == 0:
        return math.nan, math.nan
    iv = wilson(k, n, LEVEL)
    return float(iv.low), float(iv.high)


def summarize(cell: Cell, n: int, results: list[dict]) -> dict:
    results = sorted(results, key=lambda r: r["rep"])
    reps = len(results)
    verdicts = Counter(r["verdict"] for r in results)
    metrics = []
    for m in cell.metrics:
        pool = [r for r in results if r["error"] is None and (m.among is None or m.among(r))]
        goal_note = _goal_note(cell, n, m)
        if m.kind == "gap":
            metrics.append(_gap_metric(m, pool, goal_note))
            continue
        if m.kind == "median":
            metrics.append(_median_metric(m, pool, goal_note))
            continue
        k = sum(1 for r in pool if m.event(r))
        low, high = _interval(k, len(pool))
        rate = k / len(pool) if pool else math.nan
        if m.goal_count is not None:
            goal = "count = 0" if m.goal_count == 0 else f"count ≤ {m.goal_count}"
            met = k <= m.goal_count
        elif m.goal is not None:
            goal, met = f"≤ {m.goal:.1%}", bool(pool) and rate <= m.goal + 1e-12
        else:
            goal, met = None, None
        metrics.append({"metric": m.name, "count": k, "of": len(pool), "among": m.among_label or "all replicates",
                        "rate": rate, "ci_low": low, "ci_high": high, "ci_method": "wilson", "level": LEVEL,
                        "goal": goal, "met": met})
    sources = Counter(s for r in results for s in r["sources"])
    phis = [r["phi"] for r in results if math.isfinite(r["phi"])]
    errors = [r["error"] for r in results if r["error"]]
    extra: dict[str, Any] = {}
    if cell.sequential:
        extra = {"design": _design(cell, n), "sequential": _sequential_summary(results)}
    return {
        "n": n, "reps": reps, "verdicts": {v: verdicts.get(v, 0) for v in (*VERDICTS, "error")},
        "metrics": metrics,
        "wrong_verdict_findings": dict(sorted(sources.items(), key=lambda kv: (-kv[1], kv[0]))),
        "mean_delta": float(np.mean([r["delta"] for r in results])) if results else math.nan,
        "mean_phi": float(np.mean(phis)) if phis else math.nan,
        "median_largest_cluster_share": (float(np.median(shares)) if (shares := [r["largest_share"] for r in results
                                                                             if r.get("largest_share") is not None])
                                         else None),
        "median_seconds": float(np.median([r["seconds"] for r in results])) if results else math.nan,
        "median_cpu_seconds": float(np.median([r["cpu_seconds"] for r in results])) if results else math.nan,
        "errors": len(errors), "first_error": errors[0] if errors else None, **extra,
    }


def _design(cell: Cell, n: int) -> dict:
    """The row's design: the fixed-n MDE at n (`design_mde`) and the true gain in MDEs."""
    mde = design_mde(n)
    gain = cell.true_gain(n) if cell.true_gain else math.nan
    return {"mde": mde, "mde_method": f"audit.stats.mde_mcnemar(n, psi={design_psi():g}, alpha={ALPHA}, "
                                      f"power={MDE_POWER})", "true_gain": gain,
            "gain_over_mde": gain / mde if mde > 0 else math.nan}


def _goal_note(cell: Cell, n: int, m: Metric) -> str | None:
    """None when the metric's goal (if any) holds at this row; else why it does not apply."""
    if m.min_gain_mde is None:
        return None
    mde, gain = design_mde(n), cell.true_gain(n) if cell.true_gain else math.nan
    if math.isfinite(mde) and gain >= m.min_gain_mde * mde - 1e-12:
        return None
    return f"none: true gain {gain:.3f} < {m.min_gain_mde:g} × MDE {mde:.3f}"


def _goal_text(m: Metric, goal_note: str | None) -> tuple[str | None, bool]:
    if goal_note is not None or m.goal is None:
        return None, False
    return (f"gap within ±{m.goal * 100:g} pts" if m.kind == "gap" else f"median ≤ {m.goal:.0%}"), True


def newcombe_paired(a: int, b: int, c: int, d: int, level: float = LEVEL) -> tuple[float, float]:
    """Newcombe (1998, Stat Med 17:2635) method 10 interval for p1 − p2 on paired 0/1 data, as given in Altman et
    al. (2000, Statistics with Confidence, p. 52): a both events, b only the first, c only the second, d neither.
    Wilson intervals for each rate, combined with the correlation phi of the pairs (ad − bc shrunk by n/2 towards 0
    when positive)."""
    from audit.stats import wilson

    n = a + b + c + d
    if n == 0:
        return math.nan, math.nan
    p1, p2 = (a + b) / n, (a + c) / n
    i1, i2 = wilson(a + b, n, level), wilson(a + c, n, level)
    l1, u1, l2, u2 = float(i1.low), float(i1.high), float(i2.low), float(i2.high)
    den = (a + b) * (c + d) * (a + c) * (b + d)
    cross = a * d - b * c
    cross = cross - n / 2 if cross > n / 2 else (cross if cross < 0 else 0.0)
    phi = cross / math.sqrt(den) if den > 0 else 0.0
    diff = p1 - p2
    lo = diff - math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    hi = diff + math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return max(-1.0, lo), min(1.0, hi)


def _gap_metric(m: Metric, pool: list[dict], goal_note: str | None) -> dict:
    x = [bool(m.event(r)) for r in pool]
    y = [bool(m.other(r)) for r in pool]
    a = sum(1 for u, v in zip(x, y) if u and v)
    b = sum(1 for u, v in zip(x, y) if u and not v)
    c = sum(1 for u, v in zip(x, y) if v and not u)
    d = len(pool) - a - b - c
    n = len(pool)
    gap = (b - c) / n if n else math.nan
    low, high = newcombe_paired(a, b, c, d)
    goal, has = _goal_text(m, goal_note)
    return {"metric": m.name, "kind": "gap", "count": a + c, "count_fixed": a + b, "of": n,
            "among": m.among_label or "all replicates", "rate": gap,
            "rate_fixed": (a + b) / n if n else math.nan, "rate_sequential": (a + c) / n if n else math.nan,
            "only_fixed": b, "only_sequential": c, "ci_low": low, "ci_high": high,
            "ci_method": "newcombe paired (method 10)", "level": LEVEL, "goal": goal, "goal_note": goal_note,
            "met": (bool(n) and abs(gap) <= m.goal + 1e-12) if has else None}


def _quantiles(values: list[float]) -> dict:
    if not values:
        return {"q1": math.nan, "median": math.nan, "q3": math.nan, "min": math.nan, "max": math.nan,
                "mean": math.nan}
    q1, med, q3 = (float(x) for x in np.percentile(values, [25, 50, 75]))
    return {"q1": q1, "median": med, "q3": q3, "min": float(min(values)), "max": float(max(values)),
            "mean": float(np.mean(values))}


def median_interval(values: list[float], level: float = LEVEL) -> tuple[float, float]:
    """Distribution-free interval for a median: the order statistics x(l) and x(N − l + 1), l the binomial
    (N, 1/2) quantile at (1 − level)/2 (coverage at least about ``level``)."""
    from scipy.stats import binom

    n = len(values)
    if n == 0:
        return math.nan, math.nan
    x = sorted(values)
    lo = max(1, int(binom.ppf((1 - level) / 2, n, 0.5)))
    return float(x[lo - 1]), float(x[n - lo])


def _median_metric(m: Metric, pool: list[dict], goal_note: str | None) -> dict:
    values = [float(m.value(r)) for r in pool]
    q = _quantiles(values)
    low, high = median_interval(values)
    goal, has = _goal_text(m, goal_note)
    return {"metric": m.name, "kind": "median", "count": None, "of": len(values),
            "among": m.among_label or "all replicates", "rate": q["median"], "q1": q["q1"], "q3": q["q3"],
            "ci_low": low, "ci_high": high, "ci_method": "order statistics (binomial)", "level": LEVEL,
            "goal": goal, "goal_note": goal_note,
            "met": (bool(values) and q["median"] <= m.goal + 1e-12) if has else None}


def _sequential_summary(results: list[dict]) -> dict:
    """The streamed mode of a row: its verdicts, where it stopped, how the verdicts moved from the fixed-n ones."""
    ok = [r for r in results if r["error"] is None]
    seq = Counter(r["seq_verdict"] for r in results)
    moved = Counter(f"{r['verdict']} → {r['seq_verdict']}" for r in ok)
    reasons = Counter(r["seq_reason"] for r in ok)
    srcs = Counter(s for r in results for s in r["seq_sources"])
    deltas = [r["seq_delta"] for r in ok if r["seq_delta"] is not None]
    return {
        "verdicts": {v: seq.get(v, 0) for v in (*VERDICTS, "error")},
        "fixed_to_sequential": dict(sorted(moved.items(), key=lambda kv: (-kv[1], kv[0]))),
        "items_used": _quantiles([_items_used(r) for r in ok]),
        "stopped_at": _quantiles([float(r["stopped_at"]) for r in ok]),
        "items_total": _quantiles([float(r["items_total"]) for r in ok]),
        "stopped_early": sum(1 for r in ok if r["stopped_early"]),
        # every decision settled at the last look (else the audit ran to n_max with one still open)
        "settled": sum(1 for r in ok if r["settled"]),
        "looks": _quantiles([float(r["looks"]) for r in ok]),
        "stop_reasons": dict(reasons.most_common(6)),
        "wrong_verdict_findings": dict(sorted(srcs.items(), key=lambda kv: (-kv[1], kv[0]))),
        "mean_delta_at_stop": float(np.mean(deltas)) if deltas else math.nan,
        "median_seconds": float(np.median([r["seq_seconds"] for r in ok])) if ok else math.nan,
    }


def resolve_cells(names: list[str] | None) -> list[str]:
    if not names:
        return list(CELLS)
    out: list[str] = []
    for name in names:
        for c in ALIASES.get(name, [name]):
            if c not in CELLS:
                raise ValueError(f"unknown cell {name!r}; known: {', '.join([*CELLS, *ALIASES])}")
            if c not in out:
                out.append(c)
    return out


def cell_ns(cell: Cell, user_ns: list[int] | None) -> tuple[list[int], list[int]]:
    """(item counts the cell runs at, those skipped as below its minimum): its fixed n if it has one, else the
    --n values, else its own default counts (NS unless it names others)."""
    if cell.fixed_n is not None:
        return [cell.fixed_n], []
    base = user_ns or list(cell.ns or NS)
    return [n for n in base if n >= cell.min_n], [n for n in base if n < cell.min_n]


def calibrate(cells: list[str] | None = None, ns: list[int] | None = None, reps: int = 400, seed: int = 0,
              resamples: int = 1000, jobs: int = 2, progress: Callable[[str, dict], None] | None = None) -> dict:
    """Run the cells at every n (n below a cell's minimum is skipped) and return the full result as a dict."""
    names = resolve_cells(cells)
    user_ns = sorted(set(ns)) if ns else None
    per_cell = {c: cell_ns(CELLS[c], user_ns) for c in names}
    ns = sorted({n for c in names for n in per_cell[c][0] + per_cell[c][1]})
    plan = [(c, n) for c in names for n in per_cell[c][0]]
    tasks = [(c, n, rep, seed, resamples) for c, n in plan for rep in range(reps)]
    t0 = time.perf_counter()
    done: dict[tuple[str, int], list[dict]] = {key: [] for key in plan}
    rows: dict[tuple[str, int], dict] = {}

    def take(r: dict) -> None:
        key = (r["cell"], r["n"])
        done[key].append(r)
        if len(done[key]) == reps:
            rows[key] = summarize(CELLS[key[0]], key[1], done[key])
            if progress:
                progress(key[0], rows[key])

    streamed = any(CELLS[c].sequential for c, _ in plan)
    if jobs <= 1:
        warm_up(streamed)
        try:
            for task in tasks:
                take(run_one(task))
        finally:
            gc.unfreeze()
    else:
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
        with ctx.Pool(jobs, initializer=warm_up, initargs=(streamed,)) as pool:
            for r in pool.imap(run_one, tasks, chunksize=4):
                take(r)
    from audit import __version__

    out_cells = {}
    for c in names:
        cell = CELLS[c]
        out_cells[c] = {"description": cell.description, "parameters": cell.parameters,
                        "wrong_verdicts": list(cell.wrong),
                        "rows": [rows[(c, n)] for n in ns if (c, n) in rows],
                        "skipped_n": per_cell[c][1]}
    missed = [f"{c} n={row['n']}: {m['metric']} {_fmt_metric(m)} (goal {m['goal']})"
              for c, cell in out_cells.items() for row in cell["rows"] for m in row["metrics"] if m["met"] is False]
    return {
        "audit_version": __version__, "seed": seed, "reps": reps, "resamples": resamples, "jobs": jobs,
        "ns": ns, "level": LEVEL, "alpha": ALPHA,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "environment": {"python": platform.python_version(), "numpy": np.__version__, "pandas": pd.__version__},
        "model": {"baseline_rate": BASE_RATE, "gain": GAIN, "phi": PHI,
                  "phi_achieved": joint_2x2(BASE_RATE, BASE_RATE + GAIN, PHI)[1],
                  "phi_achieved_null": joint_2x2(BASE_RATE, BASE_RATE, PHI)[1], "budgets": list(BUDGETS),
                  "budget_rho": BUDGET_RHO, "ood_variants": OOD_VARIANTS, "ood_rho": OOD_RHO,
                  "scorings": list(SCORINGS), "scoring_rho": SCORING_RHO, "icc_latent": ICC,
                  "clusters": list(CLUSTERS), "min_items_per_cluster": MIN_ITEMS_PER_CLUSTER,
                  "unequal_cluster_size_sigma": UNEQUAL_SIGMA, "skew_share": SKEW_SHARE, "skew_noise_sd": SKEW_NOISE,
                  "symmetric_sd": SYMMETRIC_SD,
                  "rng": "numpy SeedSequence([seed, sha256(cell)[:8], n, replicate]), spawned into the data's "
                         "and the audit's seeds (a seq_X cell uses cell X's)"},
        **({"sequential": _sequential_model(sorted({n for c, n in plan if CELLS[c].sequential}))}
           if streamed else {}),
        "cells": out_cells, "missed": missed,
        "errors": sum(row["errors"] for cell in out_cells.values() for row in cell["rows"]),
        "elapsed_seconds": time.perf_counter() - t0,
    }


def _sequential_model(ns: list[int]) -> dict:
    from audit.claim import Sequential

    opts = Sequential()
    return {"mode": "verify(claim, records=records, seed=audit_seed, resamples=resamples, stream=True) beside the "
                    "fixed-n verify on the same records", "batch": opts.batch, "n_max": opts.n_max,
            "design_discordance": design_psi(), "mde_power": MDE_POWER,
            "mde_method": "audit.stats.mde_mcnemar(n, psi, alpha, power): McNemar with continuity correction",
            "mde_by_n": {str(n): design_mde(n) for n in ns},
            "goals": {"type_i": f"sequential supported ≤ {ALPHA / 2:.1%} under the null",
                      "false_fragile": "sequential fragile ≤ 5% when every perturbation leaves the gain alone",
                      "power_gap": f"|fixed-n − sequential supported rate| ≤ {SEQ_GAP_GOAL * 100:g} points where the "
                                   f"true gain ≥ {SEQ_GOAL_MIN_MDE:g} × MDE(n)",
                      "items_used": f"median stopped_at / items_total ≤ {SEQ_STOP_GOAL:.0%} where the true gain ≥ "
                                    f"{SEQ_GOAL_MIN_MDE:g} × MDE(n)"}}


# ---------------------------------------------------------------------------------------------------------------
# Output


def _pct(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.1%}"


def _fmt_rate(m: dict) -> str:
    return f"{m['count']}/{m['of']} = {_pct(m['rate'])}"


def _pts(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x * 100:+.1f} pts"


def _fmt_metric(m: dict) -> str:
    """A metric's value in words: a rate, a gap between the modes' rates, or a median with its quartiles."""
    kind = m.get("kind", "rate")
    if kind == "gap":
        return (f"fixed-n {m['count_fixed']}/{m['of']} = {_pct(m['rate_fixed'])} vs sequential {m['count']}/{m['of']}"
                f" = {_pct(m['rate_sequential'])}, gap {_pts(m['rate'])}")
    if kind == "median":
        return f"median {_pct(m['rate'])} (quartiles {_pct(m['q1'])}, {_pct(m['q3'])}) of {m['of']}"
    return _fmt_rate(m)


def _md_metric_cells(m: dict) -> tuple[str, str, str]:
    """(count, rate, interval) columns of a metric's Markdown row."""
    kind = m.get("kind", "rate")
    if kind == "gap":
        ci = "n/a" if not math.isfinite(m["ci_low"]) else f"[{_pts(m['ci_low'])}, {_pts(m['ci_high'])}] (Newcombe)"
        return (f"{m['count_fixed']} vs {m['count']}",
                f"{_pct(m['rate_fixed'])} vs {_pct(m['rate_sequential'])}: {_pts(m['rate'])}", ci)
    ci = "n/a" if not math.isfinite(m["ci_low"]) else f"[{m['ci_low']:.1%}, {m['ci_high']:.1%}]"
    if kind == "median":
        return "—", f"{_pct(m['rate'])} (q1 {_pct(m['q1'])}, q3 {_pct(m['q3'])})", ci + " (order stat.)"
    return str(m["count"]), _pct(m["rate"]), ci


def markdown(result: dict, command: str) -> str:
    lines = [f"command: `{command}`", "",
             "# Calibration: the auditor's own error rates", "",
             f"audit {result['audit_version']}, seed {result['seed']}, {result['reps']} replicates per row, "
             f"{result['resamples']} resamples, Wilson {result['level']:.0%} intervals. Unless a cell says "
             "otherwise: paired 0/1 outcomes, baseline "
             f"rate {result['model']['baseline_rate']}, within-item correlation phi {result['model']['phi']}. "
             "“met?” compares the point estimate with the goal; “s/rep” is the median seconds per replicate "
             "(simulation and `verify`; wall clock, then CPU of the one process, which other load on the machine "
             "does not inflate).", ""]
    if "sequential" in result:
        sq = result["sequential"]
        mdes = ", ".join(f"{float(v):.3f} at n = {k}" for k, v in sq["mde_by_n"].items())
        lines += ["Sequential cells (`seq_*`): every replicate runs the fixed-n `verify` and the streamed "
                  "`verify(..., stream=True)` on the same simulated data and audit seed (items in the seeded draw "
                  f"order, a look every {sq['batch']} items, stop once the verdict is settled: `audit.stopping`). "
                  "“fixed-n” metrics are the verdict on all n items, “sequential” ones the verdict at the stop; "
                  "a gap is the fixed-n rate minus the sequential rate on the same replicates (Newcombe's paired "
                  "interval); “items used” is stopped_at / items_total (order-statistic interval for the median). "
                  f"The fixed-n MDE of the design: {mdes} ({sq['mde_method']}, ψ = {sq['design_discordance']:g}, "
                  f"α = {result['alpha']}, power {sq['mde_power']}). The power-gap and items-used goals hold where "
                  f"the true gain is at least {SEQ_GOAL_MIN_MDE:g} × MDE. Their s/rep counts both audits. The "
                  "“yardstick” row reads the same stop rule from fixed-n intervals at one look at n/2 (not "
                  "anytime-valid, never a stop): a median stop at or below half the items needs at least half the "
                  "audits settled by then with the wider anytime intervals, so where the yardstick settles well "
                  "under half, the items goal is out of reach of any rule that stops on these decisions — a "
                  "perturbation's own decision can sit near its fixed-n MDE while the claimed gain is far above "
                  "its own.", ""]
    for name, cell in result["cells"].items():
        lines += [f"## {name}", "", cell["description"], ""]
        if cell["skipped_n"]:
            lines += [f"Skipped n: {', '.join(map(str, cell['skipped_n']))} (fewer items than the cell needs).", ""]
        lines += ["| n | metric | reps | count | rate | Wilson 95% CI | goal | met? | s/rep (wall, CPU) |",
                  "|---:|---|---:|---:|---:|---|---|---|---:|"]
        for row in cell["rows"]:
            for m in row["metrics"]:
                count, rate, ci = _md_metric_cells(m)
                met = "—" if m["met"] is None else ("yes" if m["met"] else "**no**")
                reps = str(m["of"]) if m["among"] == "all replicates" else f"{m['of']} ({m['among']})"
                goal = m["goal"] or (f"— ({m['goal_note']})" if m.get("goal_note") else "—")
                lines.append(f"| {row['n']} | {m['metric']} | {reps} | {count} | {rate} | {ci} | "
                             f"{goal} | {met} | {row['median_seconds']:.2f}, "
                             f"{row['median_cpu_seconds']:.2f} |")
        lines.append("")
        if any("sequential" in row for row in cell["rows"]):
            lines += _md_modes(cell["rows"])
        notes = []
        for row in cell["rows"]:
            v = ", ".join(f"{k} {c}" for k, c in row["verdicts"].items() if c)
            src = ", ".join(f"{k} {c}" for k, c in row["wrong_verdict_findings"].items())
            share = row.get("median_largest_cluster_share")
            notes.append(f"- n = {row['n']}: verdicts {v}; mean measured delta {row['mean_delta']:+.3f}, "
                         f"mean phi {row['mean_phi']:.3f}"
                         + (f", median share of the largest cluster {share:.0%}" if share is not None else "")
                         + (f"; wrong verdicts came from {src}" if src else "")
                         + (f"; {row['errors']} error(s), first: {row['first_error']}" if row["errors"] else ""))
            if "sequential" in row:
                sq, dz = row["sequential"], row["design"]
                moved = ", ".join(f"{k} {c}" for k, c in sq["fixed_to_sequential"].items())
                why = "; ".join(f"“{k}” {c}" for k, c in sq["stop_reasons"].items())
                ssrc = ", ".join(f"{k} {c}" for k, c in sq["wrong_verdict_findings"].items())
                notes.append(f"  - streamed: fixed-n MDE {dz['mde']:.3f}, true gain {dz['true_gain']:.3f} "
                             f"({dz['gain_over_mde']:.2f} × MDE); fixed-n → sequential verdicts: {moved}; mean "
                             f"measured delta at the stop {sq['mean_delta_at_stop']:+.3f}; median looks "
                             f"{sq['looks']['median']:g}; streamed verify {sq['median_seconds']:.2f} s median"
                             + (f"; wrong sequential verdicts came from {ssrc}" if ssrc else "")
                             + f"; stop reasons (most common): {why}")
        lines += notes + [""]
    missed = result["missed"]
    lines += ["## Goals missed", ""] + ([f"- {m}" for m in missed] if missed else ["None."]) + [""]
    return "\n".join(lines)


def _md_modes(rows: list[dict]) -> list[str]:
    """Both modes of a sequential cell side by side: verdict rates, and the share of the items used."""
    lines = ["| n | mode | supported | fragile | not_reproduced | inconclusive | error | items used: q1 / median / q3 "
             "| stopped early | settled |", "|---:|---|---:|---:|---:|---:|---:|---|---:|---:|"]
    for row in rows:
        sq = row["sequential"]
        reps = row["reps"]
        for mode, counts in (("fixed-n", row["verdicts"]), ("sequential", sq["verdicts"])):
            rates = " | ".join(_pct(counts[v] / reps) for v in (*VERDICTS, "error"))
            if mode == "fixed-n":
                used, early, done = "100% / 100% / 100%", "—", "—"
            else:
                q = sq["items_used"]
                used = f"{_pct(q['q1'])} / {_pct(q['median'])} / {_pct(q['q3'])}"
                early, done = f"{sq['stopped_early']}/{reps}", f"{sq['settled']}/{reps}"
            lines.append(f"| {row['n']} | {mode} | {rates} | {used} | {early} | {done} |")
    return lines + [""]


def write(result: dict, out_dir: Path, command: str) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    js, md = out_dir / "calibration.json", out_dir / "CALIBRATION.md"
    # NaN (a rate of no replicates) becomes null in the JSON; the Markdown prints n/a.
    js.write_text(json.dumps(_nan_to_none({"command": command, **result}), indent=1, allow_nan=False) + "\n",
                  encoding="utf-8")
    md.write_text(markdown(result, command), encoding="utf-8")
    return {"json": js, "markdown": md}


def _nan_to_none(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_nan_to_none(v) for v in x]
    return x


def summary_line(result: dict) -> str:
    rows = sum(len(c["rows"]) for c in result["cells"].values())
    goals = sum(1 for c in result["cells"].values() for r in c["rows"] for m in r["metrics"] if m["met"] is not None)
    missed = result["missed"]
    text = (f"SUMMARY calibrate: {rows} cell×n rows, {result['reps']} replicates each, "
            f"{goals - len(missed)} of {goals} goals met")
    if missed:
        text += "; missed: " + "; ".join(missed)
    if result["errors"]:
        text += f"; {result['errors']} replicate(s) raised an error (see calibration.json)"
    return text + f"; {result['elapsed_seconds']:.0f} s"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=None, help="replicates per cell and n (default 400; --quick: 20)")
    ap.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples per audit (default 1000)")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cells", nargs="+", default=None, metavar="NAME",
                    help=f"cells to run (default all): {', '.join([*CELLS, *ALIASES])}")
    ap.add_argument("--n", nargs="+", type=int, default=None, dest="ns", metavar="N",
                    help=f"item counts (default: each cell's own; {' '.join(map(str, NS))} for most; cells with a "
                         "fixed n ignore it)")
    ap.add_argument("--quick", action="store_true",
                    help=f"a smoke run: {QUICK_REPS} replicates, n in {{{', '.join(map(str, QUICK_NS))}}}")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "calibration")
    args = ap.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    command = ("python benchmarks/calibrate.py " + shlex.join(argv)).strip()
    print(f"command: {command}", flush=True)
    reps = args.reps if args.reps is not None else (QUICK_REPS if args.quick else 400)
    ns = args.ns or (list(QUICK_NS) if args.quick else None)  # None: each cell's own item counts
    try:
        cells = resolve_cells(args.cells)
    except ValueError as exc:
        ap.error(str(exc))
    if reps < 1 or args.jobs < 1 or any(n < 2 for n in ns or ()):
        ap.error("--reps and --jobs must be at least 1, every --n at least 2")

    def progress(cell: str, row: dict) -> None:
        head = row["metrics"][0]
        seq = row.get("sequential")
        print(f"{cell:>15}  n={row['n']:<5} {head['metric']}: {_fmt_metric(head)} "
              f"[{_pct(head['ci_low'])}, {_pct(head['ci_high'])}]  verdicts "
              + " ".join(f"{k}={v}" for k, v in row["verdicts"].items() if v)
              + ("  sequential " + " ".join(f"{k}={v}" for k, v in seq["verdicts"].items() if v)
                 + f" items used median {_pct(seq['items_used']['median'])}" if seq else "")
              + f"  {row['median_seconds']:.2f} s/rep ({row['median_cpu_seconds']:.2f} CPU)", flush=True)

    result = calibrate(cells, ns, reps, args.seed, args.resamples, args.jobs, progress)
    paths = write(result, args.out, command)
    print(f"wrote {paths['markdown']} and {paths['json']}")
    print(summary_line(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
