"""Tests for audit.sequential: the betting confidence sequence of Waudby-Smith & Ramdas (2024, JRSS-B 86(1):1–27).

Simulation tests use seeded generators; every bound on a simulated rate is the nominal rate plus two binomial
standard deviations of the estimate, sqrt(p(1 − p)/R).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from audit import sequential as sq
from audit.errors import InputError
from audit.stats import Interval

ALPHA = 0.05


def _two_sd(p: float, reps: int) -> float:
    return p + 2.0 * math.sqrt(p * (1.0 - p) / reps)


def _draw(name: str, rng: np.random.Generator, n: int) -> tuple[np.ndarray, float]:
    """(sample, true mean) for the three bounded distributions of the coverage tests."""
    if name == "bernoulli(0.5)":
        return rng.binomial(1, 0.5, n).astype(float), 0.5
    if name == "beta(2,5)":
        return rng.beta(2.0, 5.0, n), 2.0 / 7.0
    if name == "skewed two-point":  # 85% at 0.1, 15% at 0.9
        return np.where(rng.random(n) < 0.15, 0.9, 0.1), 0.15 * 0.9 + 0.85 * 0.1
    raise AssertionError(name)


DISTRIBUTIONS = ["bernoulli(0.5)", "beta(2,5)", "skewed two-point"]


# --------------------------------------------------------------------------------------------------------------
# Coverage and error rates


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_running_cs_time_uniform_coverage(name: str) -> None:
    """P(the running CS ever excludes the true mean, t = 1..300) ≤ alpha (+2 SD), and the exclusion is exactly the
    event p_two_sided(true mean) ≤ alpha (duality of the CS and the hedged e-process)."""
    n, reps = 300, 400
    rng = np.random.default_rng(123)
    misses = disagreements = 0
    for _ in range(reps):
        x, mu = _draw(name, rng, n)
        cs = sq.confidence_sequence(x, ALPHA)
        missed = cs.empty_from is not None or bool(np.any((cs.low > mu) | (cs.high < mu)))
        misses += missed
        p_two = sq.betting_inference(x, ALPHA, null=mu).p_two_sided
        disagreements += missed != (p_two <= ALPHA)
    assert misses / reps <= _two_sd(ALPHA, reps), f"{name}: miss rate {misses / reps}"
    assert disagreements == 0


@pytest.mark.parametrize("name", DISTRIBUTIONS)
@pytest.mark.parametrize("side", ["greater", "less"])
def test_one_sided_anytime_p_at_the_null_boundary(name: str, side: str) -> None:
    """With the mean exactly at the null, the anytime p-value (sup over t = 1..300) is ≤ alpha in ≤ alpha (+2 SD)."""
    n, reps = 300, 1000
    rng = np.random.default_rng(7)
    rejections = 0
    for _ in range(reps):
        x, mu = _draw(name, rng, n)
        rejections += sq.e_value(x, mu, side=side, alpha=ALPHA).p_value <= ALPHA
    assert rejections / reps <= _two_sd(ALPHA, reps)


@pytest.mark.parametrize("side", ["greater", "less"])
def test_small_n_skewed_paired_difference_keeps_its_level(side: str) -> None:
    """The case that breaks a t-test: paired differences in [−1, 1], 85% near −0.15 and 15% near +0.85 (mean 0),
    n = 30. The one-sided anytime test at alpha/2 = 0.025 rejects mean = 0 in ≤ 2.5% (+2 SD) of 2000 runs, on
    both sides (a one-sample t-test rejects 'mean ≥ 0' about 5% of the time here)."""
    n, reps, level = 30, 2000, 0.025
    rng = np.random.default_rng(11)
    rejections = 0
    for _ in range(reps):
        big = rng.random(n) < 0.15
        d = np.clip(np.where(big, 0.85, -0.15) + rng.normal(0.0, 0.02, n), -1.0, 1.0)
        rejections += sq.e_value(d, 0.0, -1.0, 1.0, side, alpha=level).p_value <= level
    assert rejections / reps <= _two_sd(level, reps)


# --------------------------------------------------------------------------------------------------------------
# Width against known bounds


def _prpl_hoeffding_cs_half_width(x: np.ndarray, alpha: float) -> float:
    """Predictable-plug-in Hoeffding CS (Waudby-Smith & Ramdas 2024, Section 3): bets
    λ_t = min(sqrt(8·log(2/α)/(t·log(1 + t))), 1), bounds (Σλx ∓ (log(2/α) + Σλ²/8))/Σλ, running intersection."""
    t = np.arange(1, x.size + 1)
    lam = np.minimum(np.sqrt(8.0 * math.log(2.0 / alpha) / (t * np.log1p(t))), 1.0)
    centre = np.cumsum(lam * x) / np.cumsum(lam)
    margin = (math.log(2.0 / alpha) + np.cumsum(lam ** 2 / 8.0)) / np.cumsum(lam)
    low = np.maximum.accumulate(centre - margin)
    high = np.minimum.accumulate(centre + margin)
    return float(high[-1] - low[-1]) / 2.0


def test_width_at_n_1000_bernoulli_half() -> None:
    """Half-widths at n = 1000, Bernoulli(1/2), alpha = 0.05 (medians over 20 seeds; the running intersection makes
    single runs vary):

    - CLT (1.96·0.5/√n = 0.0310) is a floor for both betting intervals.
    - Hoeffding's fixed-n interval h = sqrt(log(2/α)/(2n)) = 0.0429. The anytime CS must pay for validity at every
      t: with PrPl bets λ_t ∝ 1/sqrt(t·log t) the Section 3 width formula (log(2/α) + σ²Σλ²/2)/Σλ, with σ² = 1/4
      and λ truncated at c = 1/2, predicts ≈ 0.064 = 1.5h (measured 0.0638), so it must be ≤ 1.6h and within
      [0.9, 1.15] of the PrPl-Hoeffding CS of the same paper (measured 0.0600: at σ² = 1/4, the maximum, variance
      adaptivity gains nothing and c = 1/2 truncates the early bets).
    - With bets tuned for the horizon n (their fixed-time CI) the interval must be narrower than h itself (measured
      0.0380) and than the Maurer–Pontil (2009) empirical-Bernstein interval
      sqrt(2V·log(4/α)/n) + 7·log(4/α)/(3(n − 1)) = 0.0570.
    """
    n = 1000
    anytime, fixed, hoeff_cs = [], [], []
    for seed in range(20):
        x = np.random.default_rng(seed).binomial(1, 0.5, n).astype(float)
        ci = sq.confidence_interval(x, ALPHA)
        anytime.append(ci.width / 2.0)
        fixed.append(sq.confidence_interval(x, ALPHA, horizon=n).width / 2.0)
        hoeff_cs.append(_prpl_hoeffding_cs_half_width(x, ALPHA))
    a, f, hc = float(np.median(anytime)), float(np.median(fixed)), float(np.median(hoeff_cs))
    h = math.sqrt(math.log(2.0 / ALPHA) / (2.0 * n))
    clt = 1.959964 * 0.5 / math.sqrt(n)
    mp = math.sqrt(2.0 * 0.25 * math.log(4.0 / ALPHA) / n) + 7.0 * math.log(4.0 / ALPHA) / (3.0 * (n - 1))
    assert clt < a <= 1.6 * h
    assert 0.9 * hc <= a <= 1.15 * hc
    assert clt < f < h
    assert f < mp


# --------------------------------------------------------------------------------------------------------------
# Shape of the sequence


def test_running_intersection_never_widens_and_contains_later_sets() -> None:
    x = np.random.default_rng(3).beta(2.0, 5.0, 2000)
    cs = sq.confidence_sequence(x, ALPHA)
    assert len(cs) == 2000 and cs.empty_from is None
    assert np.all(np.diff(cs.low) >= 0.0)
    assert np.all(np.diff(cs.high) <= 0.0)
    assert np.all(cs.low <= cs.high)
    assert cs.low[0] >= 0.0 and cs.high[0] <= 1.0


def test_all_equal_sample_shrinks_toward_the_value() -> None:
    cs = sq.confidence_sequence(np.full(3000, 0.3), ALPHA)
    width = cs.high - cs.low
    assert np.all((cs.low <= 0.3) & (cs.high >= 0.3))
    assert width[9] > width[99] > width[999] > width[-1]
    assert width[-1] < 0.01
    # at the edge of the range the sequence keeps the edge and shrinks onto it
    zeros = sq.confidence_sequence(np.zeros(3000), ALPHA)
    assert np.all(zeros.low == 0.0) and zeros.high[-1] < 0.01


def test_path_matches_the_exact_interval_at_every_checked_t() -> None:
    """The grid path (linear interpolation in 1e-3 cells) agrees with the bisection-refined interval of the prefix,
    to 1e-5 of the range (the target is 1e-4); the last element is the refined interval itself."""
    rng = np.random.default_rng(2)
    for x in (rng.binomial(1, 0.5, 3000).astype(float), rng.beta(2.0, 5.0, 3000), rng.uniform(0.0, 0.01, 3000),
              np.full(3000, 0.3)):
        cs = sq.confidence_sequence(x, ALPHA)
        for t in (1, 2, 3, 5, 10, 30, 100, 777, 2999):
            ci = sq.confidence_interval(x[:t], ALPHA)
            assert abs(cs.low[t - 1] - ci.low) < 1e-5 and abs(cs.high[t - 1] - ci.high) < 1e-5, t
        ci = sq.confidence_interval(x, ALPHA)
        assert (cs.low[-1], cs.high[-1]) == (ci.low, ci.high)


def test_capital_agrees_with_the_sequence_on_grid_points() -> None:
    """m is outside the running CS at t exactly when K±_s(m) ≥ 1/alpha for some s ≤ t (points within 1e-5 of an
    end excepted)."""
    x = np.random.default_rng(5).beta(2.0, 5.0, 400)
    m = np.linspace(0.0, 1.0, 201)
    k = sq.capital(x, m, alpha=ALPHA)
    assert k.shape == (400, 201)
    excluded = np.maximum.accumulate(k, axis=0) >= 1.0 / ALPHA
    cs = sq.confidence_sequence(x, ALPHA)
    outside = (m[None, :] < cs.low[:, None]) | (m[None, :] > cs.high[:, None])
    near = (np.abs(m[None, :] - cs.low[:, None]) < 1e-5) | (np.abs(m[None, :] - cs.high[:, None]) < 1e-5)
    assert np.array_equal(excluded[~near], outside[~near])
    assert np.allclose(sq.capital(x, m, alpha=ALPHA, path=False), k[-1])
    assert sq.capital(x, 0.3, alpha=ALPHA).shape == (400,)
    np.testing.assert_allclose(sq.capital(x, m, alpha=ALPHA, log=True), np.log(k))


def test_rescaling_bounds() -> None:
    """An interval for x in [−1, 1] is 2·(interval for (x + 1)/2) − 1, for the sequence, the CI and the p-values."""
    x = np.clip(np.random.default_rng(9).normal(0.1, 0.4, 500), -1.0, 1.0)
    u = (x + 1.0) / 2.0
    cs_pm, cs_01 = sq.confidence_sequence(x, ALPHA, -1.0, 1.0), sq.confidence_sequence(u, ALPHA)
    np.testing.assert_allclose(cs_pm.low, 2.0 * cs_01.low - 1.0, atol=1e-12)
    np.testing.assert_allclose(cs_pm.high, 2.0 * cs_01.high - 1.0, atol=1e-12)
    ci_pm, ci_01 = sq.confidence_interval(x, ALPHA, -1.0, 1.0), sq.confidence_interval(u, ALPHA)
    assert ci_pm.low == pytest.approx(2.0 * ci_01.low - 1.0, abs=1e-12)
    assert ci_pm.high == pytest.approx(2.0 * ci_01.high - 1.0, abs=1e-12)
    r_pm, r_01 = sq.betting_inference(x, ALPHA, -1.0, 1.0, null=0.0), sq.betting_inference(u, ALPHA, null=0.5)
    assert r_pm.p_greater == pytest.approx(r_01.p_greater, rel=1e-12)
    assert r_pm.p_less == pytest.approx(r_01.p_less, rel=1e-12)


def test_one_sided_p_values_are_dual_to_the_interval_ends() -> None:
    """p_greater ≤ θ·alpha exactly when the CI's low end is at or above the null (and likewise for p_less)."""
    rng = np.random.default_rng(21)
    for shift in (0.0, 0.05, 0.1, 0.2, -0.1):
        x = np.clip(rng.normal(shift, 0.3, 200), -1.0, 1.0)
        r = sq.betting_inference(x, ALPHA, -1.0, 1.0, null=0.0)
        assert (r.p_greater <= ALPHA / 2) == (r.low >= 0.0)
        assert (r.p_less <= ALPHA / 2) == (r.high <= 0.0)
        assert r.p_two_sided == pytest.approx(min(1.0, 2.0 * min(r.p_greater, r.p_less)))
        assert r.interval() == Interval(r.low, r.high, 0.95, sq.METHOD, None)
    strong = sq.betting_inference(np.full(100, 0.4), ALPHA, -1.0, 1.0, null=0.0)
    assert strong.p_greater < 1e-6 and strong.p_less == 1.0 and strong.low > 0.0


def test_e_value_fields() -> None:
    x = np.random.default_rng(4).beta(5.0, 2.0, 300)
    e = sq.e_value(x, 0.5, side="greater")
    assert e.n == 300 and e.side == "greater" and e.null == 0.5
    assert e.e_max >= e.e_value and e.e_max >= 1.0
    assert e.p_value == pytest.approx(min(1.0, 1.0 / e.e_max))
    assert e.significant(0.05)
    assert sq.e_value(x, 0.5, side="less").p_value > 0.5  # the mean is 5/7: no evidence that it is below 0.5


def test_drifting_data_empty_the_running_intersection() -> None:
    x = np.concatenate([np.zeros(200), np.ones(200)])
    cs = sq.confidence_sequence(x, ALPHA)
    assert cs.empty_from is not None and 200 < cs.empty_from <= 400
    assert np.isnan(cs.low[cs.empty_from - 1:]).all() and np.isfinite(cs.low[: cs.empty_from - 1]).all()
    ci = sq.confidence_interval(x, ALPHA)
    assert not ci.ok and "empty" in ci.reason


# --------------------------------------------------------------------------------------------------------------
# Degenerate input and errors


def test_n_zero_gives_the_whole_range() -> None:
    ci = sq.confidence_interval([], ALPHA, -1.0, 1.0)
    assert (ci.low, ci.high) == (-1.0, 1.0) and "n = 0" in ci.reason
    r = sq.betting_inference([], ALPHA, -1.0, 1.0, null=0.0)
    assert (r.low, r.high, r.n) == (-1.0, 1.0, 0) and math.isnan(r.estimate)
    assert r.p_greater == r.p_less == r.p_two_sided == 1.0
    assert len(sq.confidence_sequence([], ALPHA)) == 0
    assert sq.e_value([], 0.5).p_value == 1.0
    assert sq.capital([], [0.2, 0.5]).shape == (0, 2)


def test_no_null_leaves_p_values_nan() -> None:
    r = sq.betting_inference([0.2, 0.4, 0.9], ALPHA)
    assert math.isnan(r.p_greater) and math.isnan(r.p_two_sided) and r.null is None


@pytest.mark.parametrize("call", [
    lambda x: sq.confidence_interval(x, ALPHA),
    lambda x: sq.confidence_sequence(x, ALPHA),
    lambda x: sq.e_value(x, 0.5),
    lambda x: sq.betting_inference(x, ALPHA, null=0.5),
    lambda x: sq.capital(x, 0.5),
])
def test_out_of_bounds_value_names_index_value_and_bounds(call) -> None:
    with pytest.raises(ValueError) as info:
        call([0.2, 0.5, 1.5, 0.3, -0.2])
    assert isinstance(info.value, InputError)
    msg = str(info.value)
    assert "x[2]" in msg and "1.5" in msg and "[0, 1]" in msg and "1 more" in msg


@pytest.mark.parametrize("call", [
    lambda x: sq.confidence_interval(x, ALPHA),
    lambda x: sq.confidence_sequence(x, ALPHA),
    lambda x: sq.e_value(x, 0.5),
])
def test_nan_names_its_index(call) -> None:
    with pytest.raises(ValueError, match=r"x\[3\] is NaN"):
        call([0.1, 0.2, 0.3, float("nan")])


def test_other_bad_arguments_are_all_reported_at_once() -> None:
    with pytest.raises(sq.SequentialInputError) as info:
        sq.confidence_sequence([0.5], alpha=1.5, lo=1.0, hi=0.0, grid=2, c=1.0)
    msg = str(info.value)
    for field in ("alpha:", "hi:", "grid:", "c:"):
        assert field in msg
    with pytest.raises(ValueError, match="null mean must lie in"):
        sq.e_value([0.5], 2.0)
    with pytest.raises(ValueError, match="unknown side"):
        sq.e_value([0.5], 0.5, side="two-sided")


# --------------------------------------------------------------------------------------------------------------
# Reference implementation (optional)


def test_matches_confseq_hedged_cs_when_installed() -> None:
    """confseq's ``betting.hedged_cs`` (Howard, Waudby-Smith & Ramdas) implements the same process on a grid of
    1/breaks and pads each end outward by one step, so its ends must bracket ours within one step.
    confseq 0.0.11 needs NumPy < 2 (it uses ``np.float_``) and builds C++ extensions with Boost; skipped when absent."""
    try:
        from confseq.betting import hedged_cs
    except Exception as exc:  # ImportError, or AttributeError under NumPy 2
        pytest.skip(f"confseq not usable here: {exc!r}")
    rng = np.random.default_rng(1)
    for x in (rng.binomial(1, 0.5, 500).astype(float), rng.beta(2.0, 5.0, 500),
              np.where(rng.random(500) < 0.15, 0.9, 0.1)):
        for c in (0.5, 0.75):
            low, high = hedged_cs(x, alpha=ALPHA, breaks=1000, running_intersection=True, trunc_scale=c)
            cs = sq.confidence_sequence(x, ALPHA, c=c)
            assert np.all(cs.low - low >= -1e-9) and np.all(cs.low - low <= 1e-3 + 1e-9)
            assert np.all(high - cs.high >= -1e-9) and np.all(high - cs.high <= 1e-3 + 1e-9)


def test_one_sided_bound_inverts_the_one_sided_test():
    """one_sided_bound is where e_value's one-sided p crosses alpha, on either side, on any scale."""
    from audit.sequential import e_value, one_sided_bound

    rng = np.random.default_rng(11)
    x = np.where(rng.random(60) < 0.15, rng.uniform(0.3, 0.9, 60), rng.normal(-0.1, 0.03, 60)).clip(-1, 1)
    n = x.size
    up = one_sided_bound(x, 0.025, -1.0, 1.0, "upper", horizon=n)
    low = one_sided_bound(x, 0.025, -1.0, 1.0, "lower", horizon=n)
    assert low < x.mean() < up
    assert e_value(x, up + 1e-7, -1, 1, "less", alpha=0.025, horizon=n).p_value < 0.025
    assert e_value(x, up - 1e-7, -1, 1, "less", alpha=0.025, horizon=n).p_value >= 0.025
    assert e_value(x, low - 1e-7, -1, 1, "greater", alpha=0.025, horizon=n).p_value < 0.025
    assert e_value(x, low + 1e-7, -1, 1, "greater", alpha=0.025, horizon=n).p_value >= 0.025
    assert one_sided_bound(50 * x, 0.025, -50.0, 50.0, "upper", horizon=n) == pytest.approx(50 * up, rel=1e-9)
    assert one_sided_bound([], 0.025, -1.0, 1.0, "upper") == 1.0
    with pytest.raises(ValueError, match="side"):
        one_sided_bound(x, 0.025, -1.0, 1.0, "up")
