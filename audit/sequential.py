"""Anytime-valid inference for the mean of a bounded variable: betting confidence sequences and e-processes.

Method: the hedged capital process of Waudby-Smith & Ramdas (2024), "Estimating means of bounded random variables
by betting", JRSS-B 86(1):1–27, doi:10.1093/jrsssb/qkad009 (arXiv:2010.09686), Section 4, Theorem 3, with their
predictable plug-in bet λ^PrPl± and truncation constant c (1/2 by default, 3/4 also used in the paper). The same
construction is ``confseq.betting.hedged_cs`` (Howard, Waudby-Smith & Ramdas, MIT licence); that package is not a
dependency (its wheels stop at Python 3.10 and its sdist needs a C++14 compiler and the Boost headers).

Observations x_1, x_2, ... lie in a known interval [lo, hi] (scores in [0, 1]; paired differences of [0, 1] scores
in [−1, 1]) and are rescaled internally to y = (x − lo)/(hi − lo) ∈ [0, 1]; every bound is mapped back. On the
[0, 1] scale, for a candidate mean m:

    μ̂_t  = (1/2 + Σ_{i≤t} y_i) / (t + 1)                      (regularised running mean)
    σ̂²_t = (1/4 + Σ_{i≤t} (y_i − μ̂_i)²) / (t + 1),  σ̂²_0 = 1/4  (regularised running variance)
    λ̇_t  = sqrt( 2·log(1/a) / (σ̂²_{t−1} · t·log(1 + t)) )      (PrPl bet; a = θα and (1 − θ)α, i.e. log(2/α)
                                                                  for θ = 1/2; t·log(1 + t) → n for a fixed n)
    λ⁺_t(m) = min(λ̇_t, c/m),   λ⁻_t(m) = min(λ̇_t, c/(1 − m))     (truncation keeps every factor ≥ 1 − c > 0)
    K⁺_t(m) = Π_{i≤t} (1 + λ⁺_i(m)(y_i − m)),   K⁻_t(m) = Π_{i≤t} (1 − λ⁻_i(m)(y_i − m))
    K±_t(m) = max(θ·K⁺_t(m), (1 − θ)·K⁻_t(m))                      (hedged capital, θ = 1/2)
    C_t     = {m : K±_t(m) < 1/α}

If the mean is m, θK⁺ + (1 − θ)K⁻ ≥ K± is a nonnegative martingale with initial value 1, so by Ville's inequality
P(∃t: m ∉ C_t) ≤ α: the sets hold simultaneously for every t, so their running intersection does too, and a
sequence may be read after every observation and stopped at any time. K⁺_t(m) is nonincreasing and K⁻_t(m)
nondecreasing in m, so C_t = (l_t, u_t) is an interval whose ends are the roots of two monotone functions.

The one-sided process K⁺(m) alone (bets λ⁺ ≥ 0) is a nonnegative supermartingale whenever the mean is ≤ m: it is
an e-process for H0: mean ≤ m, and min(1, 1/sup_t K⁺_t(m)) is an anytime-valid p-value. K⁻ does the same for
H0: mean ≥ m. With the bet tuned to θα, the one-sided test at level θα = α/2 is dual to the lower (upper) end of
the two-sided CS at level α.

Root finding. The running bounds of a whole sequence are found on an evenly spaced grid of candidate means (1001
points on [0, 1] by default, spacing 1e-3 of the range): at each t the grid brackets each root, and linear
interpolation of log K inside the bracketing cell locates it. The interpolation error is at most
h²·max|∂²log K/∂m²| / (8·min|∂log K/∂m|) ≲ h²·c/((1 − c)·m) for spacing h, about 1e-6 of the range at h = 1e-3
(tests compare the path with the exact end at many t to 1e-5). Grid points that the running intersection has already
excluded are dropped, so the work is about Σ_t (width of C_t) · grid points rather than n · grid points. The final
interval (`confidence_interval`, the last element of `confidence_sequence`, `betting_inference`) is refined by
bisection on the monotone functions m ↦ sup_{s≤n} log K⁺_s(m) and m ↦ sup_{s≤n} log K⁻_s(m), to 1e-12 of the range.

Every function is pure and deterministic. Invalid input raises `SequentialInputError`, which is both an
`audit.errors.InputError` (the CLI maps it to exit code 2) and a ``ValueError``.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields
from typing import Any, Iterator

import numpy as np

from audit.errors import InputError, Problem
from audit.intervals import Interval
from audit.intervals import plain as _plain

__all__ = [
    "SequentialInputError",
    "BettingResult",
    "ConfidenceSequence",
    "EProcess",
    "METHOD",
    "capital",
    "confidence_sequence",
    "confidence_interval",
    "e_value",
    "one_sided_bound",
    "betting_inference",
]

METHOD = "betting-hedged-capital-prpl"
"""Method name: the hedged capital process with predictable plug-in bets (Waudby-Smith & Ramdas 2024, Theorem 3)."""

NAN = float("nan")
SIDES = ("greater", "less")

DEFAULT_GRID = 1001  # grid spacing 1e-3 of the range; linear interpolation inside a cell brings it to ~1e-6
DEFAULT_C = 0.5  # truncation constant of the paper's experiments (3/4 is the other value the paper uses)
DEFAULT_THETA = 0.5  # equal weight on the two one-sided capitals (the paper's default)

# Elements of one (times × grid points) block in the windowed path computation: ~4 MiB per float64 array.
_BLOCK_ELEMENTS = 1 << 19
# A block spans at most this fraction of the time already seen (plus a floor), so the window of live grid points,
# which narrows like 1/sqrt(t), is re-cut often enough that few excluded points are carried along.
_BLOCK_TIME_FRACTION = 0.25
_BLOCK_MIN_ROWS = 64
# Bisection steps for the final bounds: 2^-45 < 1e-13 of the range.
_BISECT_STEPS = 45


class SequentialInputError(InputError, ValueError):
    """Invalid input to a sequential procedure (a value outside the bounds, NaN, a level outside (0, 1), ...).

    An `InputError` (exit code 2, carries every problem found) that is also a ``ValueError``."""


# --------------------------------------------------------------------------------------------------------------
# Result types


@dataclass(frozen=True)
class ConfidenceSequence:
    """Running-intersection confidence sequence on the original scale: ``low[t-1], high[t-1]`` bound the mean after
    t observations, simultaneously for every t with probability ≥ 1 − alpha.

    ``empty_from`` is the first t (1-based) at which the running intersection is empty (the data are not consistent
    with one fixed mean in [lo, hi]: drift, or a miscoverage event); from there on ``low`` and ``high`` are NaN.
    Unpacks as ``low, high = confidence_sequence(...)``."""

    low: np.ndarray
    high: np.ndarray
    alpha: float
    lo: float
    hi: float
    method: str
    c: float
    theta: float
    horizon: int | None
    grid: int
    empty_from: int | None = None

    def __iter__(self) -> Iterator[np.ndarray]:
        yield self.low
        yield self.high

    def __len__(self) -> int:
        return int(self.low.size)

    def to_dict(self) -> dict:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class EProcess:
    """A one-sided e-process at the null ``null`` after ``n`` observations.

    ``side="greater"``: H0 mean ≤ null (evidence that the mean is larger); ``side="less"``: H0 mean ≥ null.
    ``e_value`` is the current capital K_n; ``e_max`` is sup_{t≤n} K_t (1 when n = 0); ``p_value`` is
    min(1, 1/e_max), valid at any stopping time. ``alpha`` is the level the bet was tuned for (validity holds at
    every level)."""

    e_value: float
    e_max: float
    p_value: float
    null: float
    side: str
    n: int
    alpha: float
    method: str
    c: float
    horizon: int | None

    def significant(self, level: float) -> bool:
        """p ≤ level (equivalently e_max ≥ 1/level)."""
        return self.p_value <= level

    def to_dict(self) -> dict:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class BettingResult:
    """Betting confidence interval for a bounded mean at the final n, with anytime p-values at ``null``.

    ``low``/``high``: the running-intersection CS at t = n (level 1 − alpha, valid at any stopping time).
    ``p_greater``: H0 mean ≤ null; ``p_less``: H0 mean ≥ null; both one-sided anytime p-values from the two halves
    of the hedged process (bets tuned to θ·alpha and (1 − θ)·alpha), so ``p_greater ≤ θ·alpha`` exactly when
    ``low ≥ null``. ``p_two_sided`` = min(1, 1/sup_t K±_t(null)): ≤ alpha exactly when the CS has excluded ``null``
    at some t. p-values are NaN when no null was given. ``reason`` says why a value is NaN or the interval is the
    whole range."""

    estimate: float
    low: float
    high: float
    n: int
    alpha: float
    method: str
    lo: float
    hi: float
    null: float | None
    p_greater: float
    p_less: float
    p_two_sided: float
    c: float
    theta: float
    horizon: int | None
    reason: str | None = None

    @property
    def level(self) -> float:
        return 1.0 - self.alpha

    def interval(self) -> Interval:
        """The interval as an `audit.stats.Interval` (NaN with the reason when the running intersection is empty)."""
        return Interval(self.low, self.high, self.level, self.method, self.reason)

    def to_dict(self) -> dict:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


# --------------------------------------------------------------------------------------------------------------
# Validation


def _raise(problems: list[Problem]) -> None:
    if problems:
        raise SequentialInputError(problems)


def _real(name: str, value: Any, problems: list[Problem]) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        problems.append(Problem("must be a real number", field=name, value=value))
        return NAN
    v = float(value)
    if not math.isfinite(v):
        problems.append(Problem("must be finite", field=name, value=value))
    return v


def _open_unit(name: str, value: Any, problems: list[Problem], example: str) -> float:
    v = _real(name, value, problems)
    if math.isfinite(v) and not 0.0 < v < 1.0:
        problems.append(Problem("must lie strictly between 0 and 1", field=name, value=value, fix=f"e.g. {example}"))
    return v


def _bounds(lo: Any, hi: Any, problems: list[Problem]) -> tuple[float, float]:
    a = _real("lo", lo, problems)
    b = _real("hi", hi, problems)
    if math.isfinite(a) and math.isfinite(b) and not a < b:
        problems.append(
            Problem(
                f"the bounds must satisfy lo < hi (got lo = {a:g}, hi = {b:g})",
                field="hi",
                value=hi,
                fix="pass the known range of the observations, e.g. lo=-1, hi=1 for paired "
                "differences of [0, 1] scores",
            )
        )
    return a, b


def _observations(x: Any, lo: float, hi: float, problems: list[Problem]) -> np.ndarray:
    """The observations as a float vector; NaN, values outside [lo, hi], wrong shape → problems."""
    try:
        a = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        problems.append(Problem("must be a sequence of numbers", field="x", value=type(x).__name__))
        return np.empty(0)
    if a.ndim == 0:
        a = a.reshape(1)
    if a.ndim != 1:
        problems.append(
            Problem(
                "must be one-dimensional",
                field="x",
                value=f"shape {a.shape}",
                fix="pass one value per observation, in the order they arrived",
            )
        )
        return np.empty(0)
    nan = np.flatnonzero(np.isnan(a))
    if nan.size:
        more = f" ({nan.size - 1} more NaN after it)" if nan.size > 1 else ""
        problems.append(
            Problem(
                f"x[{int(nan[0])}] is NaN{more}",
                field="x",
                value=NAN,
                fix="drop or score the missing items first; a betting bound needs every value",
            )
        )
    if math.isfinite(lo) and math.isfinite(hi) and lo < hi:
        with np.errstate(invalid="ignore"):
            out = np.flatnonzero((a < lo) | (a > hi))
        if out.size:
            i = int(out[0])
            more = f" ({out.size - 1} more outside after it)" if out.size > 1 else ""
            problems.append(
                Problem(
                    f"x[{i}] = {a[i]!r} lies outside the bounds [lo, hi] = [{lo:g}, {hi:g}]{more}",
                    field="x",
                    value=float(a[i]),
                    fix="pass the true range of the scores as lo/hi; a betting bound is only valid "
                    "for values inside it",
                )
            )
    return a


def _grid_size(grid: Any, problems: list[Problem]) -> int:
    if isinstance(grid, (bool, np.bool_)) or not isinstance(grid, numbers.Integral) or int(grid) < 3:
        problems.append(
            Problem(
                "must be a whole number of grid points, at least 3",
                field="grid",
                value=grid,
                fix=f"e.g. grid={DEFAULT_GRID} (spacing 1e-3 of the range)",
            )
        )
        return DEFAULT_GRID
    return int(grid)


def _horizon(horizon: Any, problems: list[Problem]) -> int | None:
    if horizon is None:
        return None
    if isinstance(horizon, (bool, np.bool_)) or not isinstance(horizon, numbers.Integral) or int(horizon) < 1:
        problems.append(
            Problem(
                "must be None (anytime bets) or the planned number of observations, >= 1",
                field="horizon",
                value=horizon,
            )
        )
        return None
    return int(horizon)


def _side(side: Any, problems: list[Problem]) -> str:
    if side not in SIDES:
        problems.append(
            Problem(
                "unknown side", field="side", value=side, fix='use "greater" (H0: mean <= m) or "less" (H0: mean >= m)'
            )
        )
    return side


def _null(name: str, m: Any, lo: float, hi: float, problems: list[Problem]) -> float:
    v = _real(name, m, problems)
    if math.isfinite(v) and math.isfinite(lo) and math.isfinite(hi) and not lo <= v <= hi:
        problems.append(Problem(f"the null mean must lie in [lo, hi] = [{lo:g}, {hi:g}]", field=name, value=m))
    return v


def _common(
    x: Any, alpha: Any, lo: Any, hi: Any, c: Any, horizon: Any, problems: list[Problem]
) -> tuple[np.ndarray, float, float, float, float, int | None]:
    a, b = _bounds(lo, hi, problems)
    xs = _observations(x, a, b, problems)
    al = _open_unit("alpha", alpha, problems, "alpha=0.05")
    cc = _open_unit("c", c, problems, "c=0.5 or c=0.75 (Waudby-Smith & Ramdas 2024)")
    hz = _horizon(horizon, problems)
    return xs, al, a, b, cc, hz


def _rescale(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    # Clip only float rounding: inputs were checked to lie in [lo, hi].
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0)


# --------------------------------------------------------------------------------------------------------------
# Bets and capital (all on the [0, 1] scale)


def _prpl_bets(y: np.ndarray, alpha_bet: float, horizon: int | None) -> np.ndarray:
    """λ̇_t, t = 1..n: the predictable plug-in bet of Waudby-Smith & Ramdas (2024, Section 4, λ^PrPl±),
    sqrt(2·log(1/alpha_bet) / (σ̂²_{t−1}·t·log(1 + t))), with t·log(1 + t) replaced by ``horizon`` for a fixed n
    (their fixed-time CI bet). Depends on y_1..y_{t−1} only (predictable); not yet truncated."""
    n = y.size
    t = np.arange(1, n + 1, dtype=float)
    mu = (0.5 + np.cumsum(y)) / (t + 1.0)
    var = (0.25 + np.cumsum((y - mu) ** 2)) / (t + 1.0)
    var_prev = np.empty(n)
    if n:
        var_prev[0] = 0.25
        var_prev[1:] = var[:-1]
    scale = t * np.log1p(t) if horizon is None else float(horizon)
    return np.sqrt(2.0 * math.log(1.0 / alpha_bet) / (var_prev * scale))


def _caps(m: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    """Truncation levels c/m (long side) and c/(1 − m) (short side); inf where the side cannot lose."""
    with np.errstate(divide="ignore"):
        cap_up = np.where(m > 0.0, c / np.where(m > 0.0, m, 1.0), np.inf)
        cap_dn = np.where(m < 1.0, c / np.where(m < 1.0, 1.0 - m, 1.0), np.inf)
    return cap_up, cap_dn


def _log_increments(y: np.ndarray, lam: np.ndarray, m: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    """log(1 + λ⁺(y − m)) and log(1 − λ⁻(y − m)), shape (len(y), len(m))."""
    cap_up, cap_dn = _caps(m, c)
    z = y[:, None] - m[None, :]
    up = np.log1p(np.minimum(lam[:, None], cap_up[None, :]) * z)
    dn = np.log1p(-np.minimum(lam[:, None], cap_dn[None, :]) * z)
    return up, dn


def _log_path_one(y: np.ndarray, lam: np.ndarray, m: float, c: float, side: str) -> np.ndarray:
    """log K⁺_t(m) (side "greater") or log K⁻_t(m) (side "less"), t = 1..n, for one candidate mean."""
    z = y - m
    if side == "greater":
        cap = c / m if m > 0.0 else np.inf
        return np.cumsum(np.log1p(np.minimum(lam, cap) * z))
    cap = c / (1.0 - m) if m < 1.0 else np.inf
    return np.cumsum(np.log1p(-np.minimum(lam, cap) * z))


def _sup_log(y: np.ndarray, lam: np.ndarray, m: float, c: float, side: str) -> float:
    """sup_{0≤t≤n} log K_t(m) (K_0 = 1)."""
    if y.size == 0:
        return 0.0
    return max(0.0, float(np.max(_log_path_one(y, lam, m, c, side))))


def _final_lower(y: np.ndarray, lam: np.ndarray, c: float, thr: float) -> float:
    """inf{m ∈ [0, 1] : sup_{s≤n} log K⁺_s(m) < thr}, by bisection (the function is nonincreasing in m;
    at m = 1 every factor is ≤ 1, so the right end is never excluded)."""
    if _sup_log(y, lam, 0.0, c, "greater") < thr:
        return 0.0
    a, b = 0.0, 1.0  # a excluded, b kept
    for _ in range(_BISECT_STEPS):
        mid = 0.5 * (a + b)
        if _sup_log(y, lam, mid, c, "greater") >= thr:
            a = mid
        else:
            b = mid
    return b


def _final_upper(y: np.ndarray, lam: np.ndarray, c: float, thr: float) -> float:
    """sup{m ∈ [0, 1] : sup_{s≤n} log K⁻_s(m) < thr}, by bisection (nondecreasing in m; m = 0 is never excluded)."""
    if _sup_log(y, lam, 1.0, c, "less") < thr:
        return 1.0
    a, b = 0.0, 1.0  # a kept, b excluded
    for _ in range(_BISECT_STEPS):
        mid = 0.5 * (a + b)
        if _sup_log(y, lam, mid, c, "less") >= thr:
            b = mid
        else:
            a = mid
    return a


def _thresholds(alpha: float, theta: float) -> tuple[float, float]:
    """m is excluded by the long side when θK⁺ ≥ 1/α, by the short side when (1 − θ)K⁻ ≥ 1/α."""
    return math.log(1.0 / (theta * alpha)), math.log(1.0 / ((1.0 - theta) * alpha))


def _path01(
    y: np.ndarray, alpha: float, c: float, theta: float, horizon: int | None, grid: int
) -> tuple[np.ndarray, np.ndarray, int | None]:
    """Running-intersection CS on the [0, 1] scale (see the module docstring, "Root finding")."""
    n = y.size
    low = np.full(n, NAN)
    high = np.full(n, NAN)
    if n == 0:
        return low, high, None
    lam_up = _prpl_bets(y, theta * alpha, horizon)
    lam_dn = _prpl_bets(y, (1.0 - theta) * alpha, horizon)
    thr_up, thr_dn = _thresholds(alpha, theta)
    g = np.linspace(0.0, 1.0, grid)
    cap_up_all, cap_dn_all = _caps(g, c)
    a, b = 0, grid - 1  # live grid window [a, b]: g[a] <= running low, g[b] >= running high
    s_up = np.zeros(grid)  # log K⁺_{t0-1}(g) on the live window
    s_dn = np.zeros(grid)
    run_low, run_high = 0.0, 1.0
    t0 = 0
    empty_from: int | None = None
    while t0 < n:
        width = b - a + 1
        rows = max(_BLOCK_MIN_ROWS, min(_BLOCK_ELEMENTS // width, int(_BLOCK_TIME_FRACTION * t0)))
        t1 = min(n, t0 + max(1, rows))
        m = g[a : b + 1]
        z = y[t0:t1, None] - m[None, :]
        lu = np.log1p(np.minimum(lam_up[t0:t1, None], cap_up_all[None, a : b + 1]) * z)
        np.cumsum(lu, axis=0, out=lu)
        lu += s_up[None, a : b + 1]
        ld = np.log1p(-np.minimum(lam_dn[t0:t1, None], cap_dn_all[None, a : b + 1]) * z)
        np.cumsum(ld, axis=0, out=ld)
        ld += s_dn[None, a : b + 1]
        del z
        rix = np.arange(t1 - t0)

        # Long side: log K⁺ is nonincreasing in m, so the excluded points form a prefix of the window.
        keep_up = lu < thr_up
        k = np.argmax(keep_up, axis=1)
        none_up = ~keep_up[rix, k]  # every live point excluded → the low end passed g[b] >= running high
        km1 = np.maximum(k - 1, 0)
        f0, f1 = lu[rix, km1], lu[rix, k]
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(k > 0, (f0 - thr_up) / (f0 - f1), 0.0)
        l_t = m[km1] + np.clip(frac, 0.0, 1.0) * (m[k] - m[km1])
        l_t[none_up] = np.inf

        # Short side: log K⁻ is nondecreasing in m, so the kept points form a prefix of the window.
        keep_dn = ld < thr_dn
        j = (width - 1) - np.argmax(keep_dn[:, ::-1], axis=1)  # last kept point
        none_dn = ~keep_dn[rix, j]
        jp1 = np.minimum(j + 1, width - 1)
        f0, f1 = ld[rix, j], ld[rix, jp1]
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(j < width - 1, (thr_dn - f0) / (f1 - f0), 0.0)
        u_t = m[j] + np.clip(frac, 0.0, 1.0) * (m[jp1] - m[j])
        u_t[none_dn] = -np.inf

        lows = np.maximum.accumulate(np.concatenate(([run_low], l_t)))[1:]
        highs = np.minimum.accumulate(np.concatenate(([run_high], u_t)))[1:]
        empty = lows > highs
        if empty.any():
            e = int(np.argmax(empty))
            low[t0 : t0 + e] = lows[:e]
            high[t0 : t0 + e] = highs[:e]
            empty_from = t0 + e + 1
            return low, high, empty_from
        low[t0:t1] = lows
        high[t0:t1] = highs
        run_low, run_high = float(lows[-1]), float(highs[-1])
        s_up[a : b + 1] = lu[-1]
        s_dn[a : b + 1] = ld[-1]
        del lu, ld
        na = min(max(a, int(np.searchsorted(g, run_low, side="right")) - 1), grid - 2)
        nb = min(b, int(np.searchsorted(g, run_high, side="left")))
        a, b = na, max(nb, na + 1)
        t0 = t1
    return low, high, empty_from


# --------------------------------------------------------------------------------------------------------------
# Public API


def capital(
    x: Any,
    m: Any,
    lo: float = 0.0,
    hi: float = 1.0,
    *,
    alpha: float = 0.05,
    c: float = DEFAULT_C,
    theta: float = DEFAULT_THETA,
    horizon: int | None = None,
    path: bool = True,
    log: bool = False,
) -> np.ndarray:
    """Hedged capital K±_t(m) = max(θK⁺_t(m), (1 − θ)K⁻_t(m)) of Waudby-Smith & Ramdas (2024, Theorem 3) for
    candidate means ``m`` (on the original scale, within [lo, hi]), with predictable plug-in bets tuned to θ·alpha
    and (1 − θ)·alpha (see the module docstring for the formulas).

    Returns shape (n, len(m)) — the path over t = 1..n — or (n,) for a scalar ``m``; with ``path=False`` the final
    value K±_n(m), shape (len(m),) or a 0-d array. ``log=True`` returns log K± (K± itself can overflow to inf). m is
    excluded from the CS at time t when K±_t(m) ≥ 1/alpha. The full path costs 8·n·len(m) bytes per array: for a
    long sequence on a fine grid use `confidence_sequence`, which keeps only the live part of the grid. n = 0 gives
    an empty path, and a final value K±_0 = max(θ, 1 − θ) (both capitals start at 1)."""
    problems: list[Problem] = []
    xs, al, a, b, cc, hz = _common(x, alpha, lo, hi, c, horizon, problems)
    th = _open_unit("theta", theta, problems, "theta=0.5")
    try:
        ms = np.atleast_1d(np.asarray(m, dtype=float))
    except (TypeError, ValueError):
        problems.append(Problem("must be a number or a sequence of numbers", field="m", value=type(m).__name__))
        ms = np.zeros(1)
    scalar = np.ndim(m) == 0
    if ms.ndim != 1:
        problems.append(
            Problem(
                "must be a number or a one-dimensional array of candidate means", field="m", value=f"shape {ms.shape}"
            )
        )
    elif math.isfinite(a) and math.isfinite(b) and a < b:
        bad = np.flatnonzero(~((ms >= a) & (ms <= b)))
        if bad.size:
            problems.append(
                Problem(
                    f"m[{int(bad[0])}] = {ms[bad[0]]!r} lies outside [lo, hi] = [{a:g}, {b:g}]",
                    field="m",
                    value=float(ms[bad[0]]),
                )
            )
    _raise(problems)
    y = _rescale(xs, a, b)
    m01 = np.clip((ms - a) / (b - a), 0.0, 1.0)
    if y.size == 0:
        logk = np.full((1, m01.size), math.log(max(th, 1.0 - th)))
        out = logk[:0] if path else logk[0]
        if not log:
            out = np.exp(out)
    else:
        lam_up = _prpl_bets(y, th * al, hz)
        lam_dn = _prpl_bets(y, (1.0 - th) * al, hz)
        up, _ = _log_increments(y, lam_up, m01, cc)
        _, dn = _log_increments(y, lam_dn, m01, cc)
        logk = np.maximum(math.log(th) + np.cumsum(up, axis=0), math.log(1.0 - th) + np.cumsum(dn, axis=0))
        out = logk if path else logk[-1]
        if not log:
            with np.errstate(over="ignore"):
                out = np.exp(out)
    if scalar:
        return out[..., 0] if path else np.asarray(out[0])
    return out


def confidence_sequence(
    x: Any,
    alpha: float = 0.05,
    lo: float = 0.0,
    hi: float = 1.0,
    *,
    grid: int = DEFAULT_GRID,
    c: float = DEFAULT_C,
    theta: float = DEFAULT_THETA,
    horizon: int | None = None,
) -> ConfidenceSequence:
    """Betting confidence sequence for the mean of i.i.d. observations in [lo, hi]: the running intersection of
    C_t = {m : K±_t(m) < 1/alpha}, t = 1..n, from the hedged capital process with predictable plug-in bets
    (Waudby-Smith & Ramdas 2024, JRSS-B 86(1):1–27, Section 4, Theorem 3; confseq's ``hedged_cs``).

    P(mean ∈ [low[t], high[t]] for every t) ≥ 1 − alpha, so the sequence may be monitored after each observation and
    stopped at any data-dependent time. The path is computed on ``grid`` evenly spaced candidate means with linear
    interpolation inside the bracketing cell (≈1e-6 of the range at the default 1001 points); its last element is
    the bisection-refined `confidence_interval`. ``horizon`` = a planned n tunes the bets for that n (the paper's
    fixed-time CI bets); the sequence stays valid at every t, but is narrowest near t = horizon — fix it before
    seeing the data. Returns a `ConfidenceSequence` (unpacks as ``low, high``); empty arrays when n = 0."""
    problems: list[Problem] = []
    xs, al, a, b, cc, hz = _common(x, alpha, lo, hi, c, horizon, problems)
    th = _open_unit("theta", theta, problems, "theta=0.5")
    gs = _grid_size(grid, problems)
    _raise(problems)
    y = _rescale(xs, a, b)
    low01, high01, empty_from = _path01(y, al, cc, th, hz, gs)
    n = y.size
    if n and empty_from is None:
        fl, fh = _final01(y, al, cc, th, hz)
        if fl > fh:
            empty_from = n
            low01[-1] = high01[-1] = NAN
        else:
            # The exact end at n bounds every earlier running end (the running intersection only shrinks), so
            # clipping the interpolated path to it only removes interpolation error.
            low01 = np.minimum(low01, fl)
            high01 = np.maximum(high01, fh)
            low01[-1], high01[-1] = fl, fh
    scale = b - a
    return ConfidenceSequence(
        low=a + scale * low01,
        high=a + scale * high01,
        alpha=al,
        lo=a,
        hi=b,
        method=METHOD,
        c=cc,
        theta=th,
        horizon=hz,
        grid=gs,
        empty_from=empty_from,
    )


def _final01(y: np.ndarray, alpha: float, c: float, theta: float, horizon: int | None) -> tuple[float, float]:
    """Running-intersection bounds at t = n on the [0, 1] scale, by bisection."""
    thr_up, thr_dn = _thresholds(alpha, theta)
    lam_up = _prpl_bets(y, theta * alpha, horizon)
    lam_dn = _prpl_bets(y, (1.0 - theta) * alpha, horizon)
    return _final_lower(y, lam_up, c, thr_up), _final_upper(y, lam_dn, c, thr_dn)


def confidence_interval(
    x: Any,
    alpha: float = 0.05,
    lo: float = 0.0,
    hi: float = 1.0,
    *,
    c: float = DEFAULT_C,
    theta: float = DEFAULT_THETA,
    horizon: int | None = None,
) -> Interval:
    """The betting confidence sequence at t = n, running intersection included (the last element of
    `confidence_sequence`), as an `audit.stats.Interval` at level 1 − alpha.

    Ends found by bisection on the monotone functions m ↦ sup_{s≤n} log K⁺_s(m) and m ↦ sup_{s≤n} log K⁻_s(m)
    (Waudby-Smith & Ramdas 2024, Theorem 3), to 1e-12 of the range; O(n) per step, no grid. Valid at a stopping time
    as well as at a fixed n. n = 0 → the whole range [lo, hi] (with a reason); an empty running intersection (the
    data are not consistent with one fixed mean) → NaN bounds with a reason."""
    problems: list[Problem] = []
    xs, al, a, b, cc, hz = _common(x, alpha, lo, hi, c, horizon, problems)
    th = _open_unit("theta", theta, problems, "theta=0.5")
    _raise(problems)
    level = 1.0 - al
    if xs.size == 0:
        return Interval(a, b, level, METHOD, f"n = 0: no observations; the interval is the whole range [{a:g}, {b:g}]")
    y = _rescale(xs, a, b)
    fl, fh = _final01(y, al, cc, th, hz)
    if fl > fh:
        return Interval.nan(
            level,
            METHOD,
            "the running intersection is empty: the observations are not consistent "
            "with one fixed mean in [lo, hi] (drift, or a miscoverage event)",
        )
    return Interval(a + (b - a) * fl, a + (b - a) * fh, level, METHOD)


def one_sided_bound(
    x: Any,
    alpha: float = 0.025,
    lo: float = 0.0,
    hi: float = 1.0,
    side: str = "upper",
    *,
    c: float = DEFAULT_C,
    horizon: int | None = None,
) -> float:
    """The bound that inverts the one-sided test of `e_value` at level ``alpha`` (bets tuned to ``alpha``): for
    ``side="upper"`` the largest m that H0 "mean ≥ m" is not rejected at (`e_value` side "less"), for ``"lower"``
    the smallest m that H0 "mean ≤ m" is not rejected at (side "greater"); [lo, hi] with no observations. By
    bisection on the monotone m ↦ sup_{s≤n} log K_s(m) (`_final_upper` / `_final_lower`), to 2⁻⁴⁵ of the range."""
    problems: list[Problem] = []
    xs, al, a, b, cc, hz = _common(x, alpha, lo, hi, c, horizon, problems)
    if side not in ("upper", "lower"):
        problems.append(Problem(f"side must be 'upper' or 'lower', not {side!r}", field="side", value=side))
    _raise(problems)
    if xs.size == 0:
        return b if side == "upper" else a
    y = _rescale(xs, a, b)
    lam = _prpl_bets(y, al, hz)
    thr = math.log(1.0 / al)
    m01 = _final_upper(y, lam, cc, thr) if side == "upper" else _final_lower(y, lam, cc, thr)
    return a + m01 * (b - a)


def e_value(
    x: Any,
    m: float,
    lo: float = 0.0,
    hi: float = 1.0,
    side: str = "greater",
    *,
    alpha: float = 0.05,
    c: float = DEFAULT_C,
    horizon: int | None = None,
) -> EProcess:
    """One-sided e-process for H0: mean ≤ m (``side="greater"``) or H0: mean ≥ m (``side="less"``), i.i.d.
    observations in [lo, hi].

    ``greater``: K⁺_t(m) = Π(1 + λ⁺_i(y_i − m)); ``less``: K⁻_t(m) = Π(1 − λ⁻_i(y_i − m)); λ± the predictable plug-in
    bet of Waudby-Smith & Ramdas (2024, Section 4) tuned to ``alpha`` (log(1/alpha) in place of log(2/alpha)),
    truncated at c/m resp. c/(1 − m) on the [0, 1] scale. Every bet has the sign that gains only when the mean is
    beyond m, so K is a nonnegative supermartingale under every mean in H0 and min(1, 1/sup_t K_t) is a p-value valid
    at any stopping time (Ville's inequality). n = 0 → e = 1, p = 1."""
    problems: list[Problem] = []
    xs, al, a, b, cc, hz = _common(x, alpha, lo, hi, c, horizon, problems)
    sd = _side(side, problems)
    mv = _null("m", m, a, b, problems)
    _raise(problems)
    return _eprocess(_rescale(xs, a, b), (mv - a) / (b - a), mv, sd, al, cc, hz)


def _exp(v: float) -> float:
    """exp(v), inf past the float range (an e-value that large is reported as inf, its p-value as 0)."""
    return math.exp(v) if v < 709.0 else math.inf


def _eprocess(
    y: np.ndarray, m01: float, m: float, side: str, alpha_bet: float, c: float, horizon: int | None
) -> EProcess:
    n = y.size
    method = f"{METHOD}-one-sided"
    if n == 0:
        return EProcess(1.0, 1.0, 1.0, m, side, 0, alpha_bet, method, c, horizon)
    lam = _prpl_bets(y, alpha_bet, horizon)
    logk = _log_path_one(y, lam, min(max(m01, 0.0), 1.0), c, side)
    log_sup = max(0.0, float(np.max(logk)))
    e_now, e_max = _exp(float(logk[-1])), _exp(log_sup)
    p = min(1.0, math.exp(-log_sup))
    return EProcess(e_now, e_max, p, m, side, n, alpha_bet, method, c, horizon)


def betting_inference(
    x: Any,
    alpha: float = 0.05,
    lo: float = 0.0,
    hi: float = 1.0,
    null: float | None = None,
    *,
    c: float = DEFAULT_C,
    theta: float = DEFAULT_THETA,
    horizon: int | None = None,
) -> BettingResult:
    """The betting CI at the final n (`confidence_interval`) with anytime p-values at ``null`` — the summary a check
    reports for a bounded mean or paired difference (Waudby-Smith & Ramdas 2024, Theorem 3).

    ``p_greater`` (H0 mean ≤ null) and ``p_less`` (H0 mean ≥ null) are the two halves of the hedged process, with
    bets tuned to θ·alpha and (1 − θ)·alpha: the one-sided test at level θ·alpha rejects exactly when the CS's lower
    (upper) end has passed the null, at any stopping time. ``p_two_sided`` = min(1, p_greater/θ, p_less/(1 − θ)).
    ``estimate`` is the sample mean (NaN when n = 0). ``null=None`` leaves the p-values NaN."""
    problems: list[Problem] = []
    xs, al, a, b, cc, hz = _common(x, alpha, lo, hi, c, horizon, problems)
    th = _open_unit("theta", theta, problems, "theta=0.5")
    nv = None if null is None else _null("null", null, a, b, problems)
    _raise(problems)
    n = int(xs.size)
    ci = confidence_interval(xs, al, a, b, c=cc, theta=th, horizon=hz)
    p_g = p_l = p_2 = NAN
    if nv is not None:
        y = _rescale(xs, a, b)
        m01 = (nv - a) / (b - a)
        p_g = _eprocess(y, m01, nv, "greater", th * al, cc, hz).p_value
        p_l = _eprocess(y, m01, nv, "less", (1.0 - th) * al, cc, hz).p_value
        p_2 = min(1.0, p_g / th, p_l / (1.0 - th))
    return BettingResult(
        estimate=float(xs.mean()) if n else NAN,
        low=ci.low,
        high=ci.high,
        n=n,
        alpha=al,
        method=METHOD,
        lo=a,
        hi=b,
        null=nv,
        p_greater=p_g,
        p_less=p_l,
        p_two_sided=p_2,
        c=cc,
        theta=th,
        horizon=hz,
        reason=ci.reason,
    )
