"""The calibration benchmark (benchmarks/calibrate.py): its data model, its output and its reproducibility.

The full table takes minutes (`make calibrate`); these tests run a few replicates at n = 30 (the sequential cells:
n = 100).
"""
from __future__ import annotations

import importlib.util
import json
import math
import sys

import numpy as np
import pytest

from conftest import REPO


@pytest.fixture(scope="module")
def cal():
    path = REPO / "benchmarks" / "calibrate.py"
    spec = importlib.util.spec_from_file_location("calibrate", path)
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs, so that worker processes find the functions they are handed by name.
    sys.modules["calibrate"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("calibrate", None)


@pytest.mark.parametrize("p_b,p_t,phi", [(0.5, 0.6, 0.5), (0.5, 0.5, 0.5), (0.1, 0.9, 0.9), (0.3, 0.4, 0.0)])
def test_joint_2x2_has_the_marginals_and_the_correlation(cal, p_b, p_t, phi):
    cells, achieved = cal.joint_2x2(p_b, p_t, phi)
    assert np.all(cells >= 0) and cells.sum() == pytest.approx(1.0)
    assert cells[2] + cells[3] == pytest.approx(p_b) and cells[1] + cells[3] == pytest.approx(p_t)
    if (p_b, p_t) == (0.1, 0.9):
        assert achieved < phi  # the Fréchet bound clips it, and the achieved value says so
    else:
        assert achieved == pytest.approx(phi)


def test_redraw_keeps_the_joint_law(cal):
    rng = np.random.default_rng(1)
    cells, _ = cal.joint_2x2(0.5, 0.6, 0.5)
    b, t = cal.draw_pairs(rng, 200_000, cells)
    b2, t2 = cal.redraw(rng, b, t, 0.8, cells)
    assert b2.mean() == pytest.approx(0.5, abs=0.01) and t2.mean() == pytest.approx(0.6, abs=0.01)
    assert np.corrcoef(b2, t2)[0, 1] == pytest.approx(0.5, abs=0.01)
    assert np.corrcoef(b, b2)[0, 1] == pytest.approx(0.8, abs=0.01)


def _counts(result: dict) -> dict:
    return {(c, row["n"]): (row["verdicts"], [(m["metric"], m["count"], m["of"]) for m in row["metrics"]])
            for c, cell in result["cells"].items() for row in cell["rows"]}


def test_small_run_structure_and_reproducibility(cal, tmp_path):
    cells = ["null", "reported_true"]
    one = cal.calibrate(cells, [30], reps=5, seed=7, resamples=1000, jobs=1)
    two = cal.calibrate(cells, [30], reps=5, seed=7, resamples=1000, jobs=2)
    assert _counts(one) == _counts(two)  # the same seed gives the same counts, whatever --jobs
    assert one["errors"] == 0
    assert list(one["cells"]) == cells
    for cell in one["cells"].values():
        [row] = cell["rows"]
        assert row["n"] == 30 and row["reps"] == 5
        assert sum(row["verdicts"].values()) == 5
        assert row["median_seconds"] > 0
        for m in row["metrics"]:
            assert 0 <= m["count"] <= m["of"] <= 5
            if m["of"]:
                assert 0.0 <= m["ci_low"] <= m["rate"] <= m["ci_high"] <= 1.0
            else:
                assert math.isnan(m["rate"])
            assert m["met"] in (None, True, False)
    conditional = [m for m in one["cells"]["reported_true"]["rows"][0]["metrics"] if m["goal"] == "count = 0"]
    assert len(conditional) == 1

    paths = cal.write(one, tmp_path, "python benchmarks/calibrate.py --test")
    md = paths["markdown"].read_text(encoding="utf-8")
    assert md.splitlines()[0] == "command: `python benchmarks/calibrate.py --test`"
    assert "| n | metric | reps | count | rate | Wilson 95% CI | goal | met? | s/rep (wall, CPU) |" in md
    data = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert data["command"] == "python benchmarks/calibrate.py --test" and data["seed"] == 7
    assert data["audit_version"] and set(data["cells"]) == set(cells)


def test_replicates_do_not_depend_on_what_else_runs(cal):
    # A replicate's random numbers come from (seed, cell, n, replicate) alone.
    alone = cal.calibrate(["null"], [30], reps=3, seed=11, jobs=1)
    mixed = cal.calibrate(["power", "null"], [30], reps=3, seed=11, jobs=1)
    assert _counts(alone)[("null", 30)] == _counts(mixed)[("null", 30)]
    other_seed = [cal.run_one(("null", 30, r, 12, 1000))["delta"] for r in range(3)]
    assert other_seed != [cal.run_one(("null", 30, r, 11, 1000))["delta"] for r in range(3)]


def test_main_prints_the_command_and_a_summary(cal, tmp_path, capsys):
    assert cal.main(["--cells", "clustered_c5", "--n", "30", "--reps", "2", "--jobs", "1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("command: python benchmarks/calibrate.py --cells clustered_c5")
    assert out[-1].startswith("SUMMARY calibrate: 1 cell×n rows, 2 replicates each")
    assert (tmp_path / "CALIBRATION.md").is_file() and (tmp_path / "calibration.json").is_file()


def test_unknown_cell_is_refused(cal):
    with pytest.raises(ValueError, match="unknown cell"):
        cal.resolve_cells(["nul"])
    assert cal.resolve_cells(["clustered"]) == ["clustered_c5", "clustered_c10", "clustered_c30"]


def test_unequal_cluster_sizes_are_lognormal_shares_with_one_item_each(cal):
    rng = np.random.default_rng(0)
    shares = []
    for _ in range(200):
        sizes = cal.unequal_sizes(rng, 200, 5)
        assert sizes.sum() == 200 and sizes.min() >= 1 and sizes.size == 5
        shares.append(sizes.max() / 200)
    # lognormal(0, 1) weights: the largest of 5 clusters typically holds about half the items, not 1/5
    assert 0.4 < float(np.median(shares)) < 0.65


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_skewed_differences_have_mean_zero_and_a_long_tail(cal, sign):
    d = cal.skewed_differences(np.random.default_rng(1), 400_000, sign)
    assert d.mean() == pytest.approx(0.0, abs=0.005)
    skew = float(np.mean((d - d.mean()) ** 3) / d.std() ** 3)
    assert sign * skew > 4.0  # about 5: usually slightly worse, occasionally much better (or mirrored)
    assert np.mean(sign * d < 0) > 0.8


def test_cells_run_at_their_own_or_fixed_item_counts(cal):
    assert cal.cell_ns(cal.CELLS["skewed"], None) == ([30, 100], [])
    assert cal.cell_ns(cal.CELLS["skewed"], [200]) == ([200], [])
    assert cal.cell_ns(cal.CELLS["rounded_report"], [30]) == ([50_000], [])
    assert cal.cell_ns(cal.CELLS["unequal_c30"], None) == ([100, 200, 500, 1000], [30])
    assert cal.resolve_cells(["unequal"]) == ["unequal_c5", "unequal_c10", "unequal_c30"]
    assert cal.resolve_cells(["continuous"]) == ["skewed", "skewed_mirror", "symmetric"]


def test_new_cells_run_through_verify(cal):
    result = cal.calibrate(["unequal_c5", "skewed", "understated_margin"], [30], reps=2, seed=3, jobs=1)
    assert result["errors"] == 0
    assert [r["n"] for r in result["cells"]["understated_margin"]["rows"]] == [2000]
    row = result["cells"]["unequal_c5"]["rows"][0]
    assert row["median_largest_cluster_share"] is not None and row["median_largest_cluster_share"] > 0.2
    skewed = result["cells"]["skewed"]["rows"][0]
    assert {m["metric"] for m in skewed["metrics"]} >= {"not_reproduced (type-I, short-tail side)",
                                                          "supported (type-I, long-tail side)"}


def test_sequential_rows_run_both_modes_on_the_same_data(cal):
    cells = ["seq_null", "seq_budgets", "seq_mde3x"]
    result = cal.calibrate(cells, [100], reps=4, seed=5, jobs=1)
    assert result["errors"] == 0
    assert result["sequential"]["batch"] == 50
    assert result["sequential"]["mde_by_n"]["100"] == pytest.approx(cal.design_mde(100))
    for name in cells:
        [row] = result["cells"][name]["rows"]
        seq = row["sequential"]
        # both modes give a verdict on every replicate, and the cross table accounts for each of them
        assert sum(row["verdicts"].values()) == 4 and sum(seq["verdicts"].values()) == 4
        assert sum(seq["fixed_to_sequential"].values()) == 4
        assert seq["items_total"]["min"] == seq["items_total"]["max"] == 100
        q = seq["items_used"]
        assert 0.5 <= q["min"] <= q["q1"] <= q["median"] <= q["q3"] <= q["max"] <= 1.0  # the first look is at 50
        kinds = [m.get("kind", "rate") for m in row["metrics"]]
        assert "median" in kinds
        for m in row["metrics"]:
            if m.get("kind") == "gap":
                assert m["count_fixed"] == row["verdicts"][m["metric"].split(":")[0]]
                assert m["count"] == seq["verdicts"][m["metric"].split(":")[0]]
                assert m["rate"] == pytest.approx(m["rate_fixed"] - m["rate_sequential"])
                assert -1.0 <= m["ci_low"] <= m["rate"] <= m["ci_high"] <= 1.0
    null = result["cells"]["seq_null"]["rows"][0]
    assert null["sequential"]["verdicts"]["supported"] == 0  # deterministic: seeded data, audit and draw order
    assert null["metrics"][0]["metric"] == "sequential: supported (type-I)" and null["metrics"][0]["met"] is True
    # The power-gap and items-used goals hold only where the true gain is at least 2 × the fixed-n MDE:
    # 3 × MDE(100) = 0.43 (goal), while the +0.10 of the budgets cell is 0.69 × MDE(100) (no goal).
    strong = {m["metric"]: m for m in result["cells"]["seq_mde3x"]["rows"][0]["metrics"]}
    weak = {m["metric"]: m for m in result["cells"]["seq_budgets"]["rows"][0]["metrics"]}
    gap, used = "supported: fixed-n rate − sequential rate", "items used: median stopped_at / items_total"
    assert strong[gap]["goal"] == "gap within ±5 pts" and strong[used]["goal"] == "median ≤ 50%"
    assert weak[gap]["goal"] is None and weak[gap]["goal_note"].startswith("none: true gain 0.100 < 2 × MDE")
    assert strong[used]["met"] is (strong[used]["rate"] <= 0.5)
    assert result["cells"]["seq_mde3x"]["rows"][0]["sequential"]["stopped_early"] >= 1  # a 0.43 gain stops early
    yard = strong["yardstick: the stop rule on fixed-n intervals settles at one look at n/2"]
    assert yard["of"] == 4 and yard["count"] == 4  # a fixed-n look at 50 items settles a 0.43 gain


def test_a_sequential_replicate_streams_the_data_of_its_fixed_n_cell(cal):
    for rep in range(2):
        fixed = cal.run_one(("null", 100, rep, 5, 1000))
        both = cal.run_one(("seq_null", 100, rep, 5, 1000))
        again = cal.run_one(("seq_null", 100, rep, 5, 1000))
        # the same data and audit seed as cell null: the fixed-n verdict repeats it; the streamed run is reproducible
        assert (both["delta"], both["verdict"]) == (fixed["delta"], fixed["verdict"])
        assert {k: v for k, v in both.items() if "seconds" not in k} == {k: v for k, v in again.items()
                                                                         if "seconds" not in k}
        assert both["error"] is None and both["seq_verdict"] in cal.VERDICTS
        assert 50 <= both["stopped_at"] <= both["items_total"] == 100 and both["stopped_at"] % 50 == 0
        assert both["stopped_early"] == (both["stopped_at"] < 100)
    assert cal.resolve_cells(["seq"])[0] == "seq_null" and "seq_mde2x" in cal.resolve_cells(["sequential"])
    assert cal.cell_ns(cal.CELLS["seq_mde2x"], None) == ([200, 1000], [])
    assert cal.cell_ns(cal.CELLS["seq_mde2x"], [30, 200]) == ([200], [30])  # 3 × MDE(30) leaves no room


def test_newcombe_paired_interval_and_median_interval(cal):
    lo, hi = cal.newcombe_paired(12, 9, 2, 21)
    assert lo < (9 - 2) / 44 < hi
    assert cal.newcombe_paired(12, 2, 9, 21) == pytest.approx((-hi, -lo))  # swapping the two modes mirrors it
    lo, hi = cal.newcombe_paired(400, 0, 0, 0)
    assert lo < 0 < hi and hi - lo < 0.02  # identical verdicts on 400 replicates: a narrow interval around 0
    assert cal.median_interval(list(range(400))) == (179.0, 220.0)
    assert cal.median_interval([1.0] * 5) == (1.0, 1.0)
