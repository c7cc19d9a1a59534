"""Continuous differences too skewed for their number (n < 25·γ̂², Cochran's rule): the long tail's side of the
decision also needs the betting test for a bounded mean (audit.stats.skew_t_inference, audit.sequential)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

from audit import stats
from audit.errors import InputError
from audit.sequential import e_value


# Replicate 32 (seed 7) of benchmarks/calibrate.py's skewed cell at n = 30, rounded to 3 decimals: no true
# difference, the treatment usually slightly worse and occasionally much better; t and Hall both call it a reversal.
SKEWED = [-0.068, -0.186, -0.079, -0.062, -0.269, -0.159, -0.336, 0.351, -0.223, -0.272, -0.096, -0.226, 0.259, 0.228,
          -0.226, -0.014, -0.202, -0.134, -0.282, -0.2, -0.185, -0.183, -0.211, -0.139, 0.0, -0.166, -0.167, 0.183,
          0.096, 0.005]


def one_big_gain() -> tuple[np.ndarray, np.ndarray]:
    """Scores in [0, 1] whose differences are SKEWED."""
    b = np.full(len(SKEWED), 0.5)
    return b, b + np.array(SKEWED)


def test_a_sample_too_skewed_for_its_size_widens_the_long_tail_side_only():
    b, t = one_big_gain()
    d = t - b
    inf = stats.paired_inference(b, t)
    s = inf.stats
    g = s["skewness"]
    assert g > 0 and d.size < 25 * g * g
    assert s["long_tail"] == "upper" and s["bounds"] == [-1.0, 1.0]
    # the short side is the t∧Hall bound; the long side is the betting bound, wider than both
    assert inf.interval.low == pytest.approx(min(s["t_ci_low"], s["hall_ci_low"]))
    assert inf.interval.high == pytest.approx(s["bounded_bound"])
    assert inf.interval.high > max(s["t_ci_high"], s["hall_ci_high"])
    # the t∧Hall test alone calls this a reversal; the joined one does not
    assert s["t_ci_high"] < 0 and s["hall_ci_high"] < 0 < inf.interval.high
    p_less = inf.p_value(0.0, "less")
    assert p_less >= 0.025
    assert p_less == pytest.approx(e_value(d, 0.0, -1.0, 1.0, "less", alpha=0.025, horizon=d.size).p_value)


def test_the_interval_inverts_the_joined_test_on_the_long_side():
    b, t = one_big_gain()
    inf = stats.paired_inference(b, t)
    high = inf.interval.high
    assert inf.p_value(high + 1e-6, "less") < 0.025 <= inf.p_value(high - 1e-6, "less")


def test_a_mirrored_sample_widens_the_lower_side():
    b, t = one_big_gain()
    inf = stats.paired_inference(t, b)  # arms swapped: the long tail is below
    mirror = stats.paired_inference(b, t)
    assert inf.stats["long_tail"] == "lower"
    assert inf.interval.low == pytest.approx(-mirror.interval.high, abs=1e-7)
    assert inf.p_value(0.0, "greater") == pytest.approx(mirror.p_value(0.0, "less"))


def test_differences_near_symmetric_are_decided_as_before():
    rng = np.random.default_rng(1)
    b = rng.beta(2, 2, 60)
    t = np.clip(b + rng.normal(0.1, 0.2, 60), 0, 1)
    inf = stats.paired_inference(b, t)
    s = inf.stats
    assert s["long_tail"] is None and 60 >= 25 * s["skewness"] ** 2
    assert inf.interval.low == pytest.approx(min(s["t_ci_low"], s["hall_ci_low"]))
    assert inf.interval.high == pytest.approx(max(s["t_ci_high"], s["hall_ci_high"]))


def test_score_range_default_declared_and_violated():
    b, t = np.array([0.2, 0.9]), np.array([0.5, 1.0])
    assert stats.score_range(b, t, None, []) == (0.0, 1.0)
    assert stats.score_range(b, t + 2.0, None, []) == (0.0, 3.0)  # another scale: the observed range
    assert stats.score_range(b * 100, t * 100, (0, 100), []) == (0.0, 100.0)
    problems: list = []
    stats.score_range(b, t, (0.0, 0.95), problems)
    assert problems and "outside the declared range [0, 0.95]: 1.0" in problems[0].message
    with pytest.raises(InputError, match="score_bounds"):
        stats.paired_inference(b, t, score_bounds=(0.0, 0.95))


def test_declared_bounds_widen_the_betting_range():
    b, t = one_big_gain()
    narrow = stats.paired_inference(b, t)
    wide = stats.paired_inference(b * 100, t * 100, score_bounds=(0, 100))
    assert wide.stats["bounds"] == [-100.0, 100.0]
    assert wide.interval.high == pytest.approx(100 * narrow.interval.high, rel=1e-6)


def _claim(tmp_path, bounds) -> str:
    from conftest import arm_rows, write_jsonl

    for arm, scores in (("base", [0.2, 0.5, 0.9]), ("treat", [0.3, 0.5, 0.8])):
        write_jsonl(tmp_path / f"{arm}.jsonl", arm_rows([1, 1, 1], scores={"m": scores}))
    c = {"claim": {"title": "t", "metric": "m", "settings": {"max_tokens": 16}},
         "samples": {"format": "jsonl", "baseline": {16: "base.jsonl"}, "treatment": {16: "treat.jsonl"}},
         "options": {"resamples": 1000, "score_bounds": bounds}}
    p = tmp_path / "claim.yaml"
    p.write_text(yaml.safe_dump(c, sort_keys=False))
    return str(p)


def test_a_score_outside_the_declared_bounds_is_an_input_error(tmp_path):
    from audit.claim import load_claim
    from audit.verify import verify

    claim = load_claim(_claim(tmp_path, [0.0, 0.5]))
    with pytest.raises(InputError) as e:
        verify(claim)
    msg = str(e.value)
    assert "outside options.score_bounds [0, 0.5]" in msg and "0.9" in msg and "claim.yaml" in msg


def test_bounds_in_the_wrong_order_are_refused(tmp_path):
    from audit.claim import load_claim

    with pytest.raises(InputError, match="score_bounds"):
        load_claim(_claim(tmp_path, [1.0, 0.0]))
    assert math.isfinite(load_claim(_claim(tmp_path, [0.0, 1.0])).options.score_bounds[1])
