"""Arms run on different item sets: paired on the shared items, the items only one arm has named, and the published
unpaired comparison shown beside the paired one (the item_sets check)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from audit.checks import item_sets
from audit.checks._common import Context
from audit.claim import Claim
from audit.records import build_records


def frame(arm: str, ids: list[str], scores: list[float], budget: int = 8) -> pd.DataFrame:
    return pd.DataFrame({"arm": arm, "item_id": ids, "variant": "default", "budget": budget, "scoring": "exact",
                         "score": scores, "text": ["x"] * len(ids), "target": "1", "source": f"{arm}.jsonl",
                         "line": list(range(1, len(ids) + 1))})


def ctx_of(rec, **reported) -> Context:
    claim = Claim.model_validate({"claim": {"title": "t", "settings": {"max_tokens": 8}, "reported": reported}})
    return Context(claim, rec.with_truncation(), 0, 1000, 0.95, 0.05, 0.8, 8, "exact")


def test_the_published_comparison_is_shown_beside_the_paired_one():
    # The API run stopped after 40 items; the local run has 70. On the shared 40 the arms are equal (20/40 each);
    # the local run's extra 30 items are easy (all solved), which makes the published gap.
    shared = [str(i) for i in range(40)]
    base = frame("baseline", shared, [1.0] * 20 + [0.0] * 20)
    treat = frame("treatment", shared + [str(i) for i in range(40, 70)], [1.0] * 20 + [0.0] * 20 + [1.0] * 30)
    rec = build_records([base, treat], [])
    (f,) = item_sets.run(ctx_of(rec), item_sets.Params())
    assert (f.outcome, f.severity, f.impact, f.code) == ("flag", "major", "none", "different_items")
    assert "the baseline holds 40 items, the treatment 70, and 30 items only one arm has" in f.title
    assert "the verdict rests on the 40 shared items" in f.title
    st = f.statistic
    assert st["only_treatment_ids"] == [str(i) for i in range(40, 70)] and st["only_baseline_ids"] == []
    assert st["published_baseline"] == 0.5 and st["published_treatment"] == pytest.approx(50 / 70)
    assert st["shared_delta"] == 0.0
    pub, paired = f.rows
    assert pub["comparison"].startswith("published") and (pub["n_baseline"], pub["n_treatment"]) == (40, 70)
    # the unpaired interval is the Miettinen-Nurminen score interval, Newcombe's beside it (statsmodels)
    from statsmodels.stats.proportion import confint_proportions_2indep

    low, high = confint_proportions_2indep(50, 70, 20, 40, method="newcomb", compare="diff")
    assert (pub["newcombe_low"], pub["newcombe_high"]) == pytest.approx((low, high))
    assert pub["ci_method"] == "miettinen-nurminen-score" and pub["ci_low"] > 0  # the published gap is "significant"
    assert paired["comparison"].startswith("paired") and paired["n_baseline"] == 40 and paired["delta"] == 0.0
    assert "Items only in treatment: 40, 41" in f.detail


def test_continuous_scores_use_welch_and_same_items_say_nothing():
    rng = np.random.default_rng(0)
    ids = [str(i) for i in range(30)]
    base = frame("baseline", ids[:20], rng.uniform(0, 1, 20))
    treat = frame("treatment", ids, rng.uniform(0, 1, 30))
    rec = build_records([base, treat], [])
    (f,) = item_sets.run(ctx_of(rec), item_sets.Params(max_ids=3))
    assert f.rows[0]["ci_method"].startswith("welch")
    assert f.statistic["only_treatment_ids"] == ["20", "21", "22"] and "(7 more)" in f.detail
    same = build_records([frame("baseline", ids, [1.0] * 30), frame("treatment", ids, [0.0] * 30)], [])
    assert item_sets.run(ctx_of(same), item_sets.Params()) == []


def test_cli_audits_arms_with_different_items(tmp_path):
    from click.testing import CliRunner

    from audit.cli import main

    (tmp_path / "logs").mkdir()
    rows = lambda ids, ok: "".join(json.dumps({"id": i, "output": "1" if ok(i) else "0", "target": "1"}) + "\n"
                                   for i in ids)
    (tmp_path / "logs/base.jsonl").write_text(rows(range(50), lambda i: i % 2 == 0))
    (tmp_path / "logs/treat.jsonl").write_text(rows(range(80), lambda i: i % 2 == 0 or i >= 50))
    (tmp_path / "claim.yaml").write_text(
        "claim: {title: t, settings: {max_tokens: 16}, reported: {baseline: {passes: 25, n: 50}, "
        "treatment: {passes: 55, n: 80}}}\n"
        "samples: {format: jsonl, baseline: {16: logs/base.jsonl}, treatment: {16: logs/treat.jsonl}}\n"
        "perturbations: {scorings: [exact]}\noptions: {resamples: 1000}\n")
    res = CliRunner().invoke(main, ["verify", str(tmp_path / "claim.yaml"), "--out", str(tmp_path / "out")])
    assert res.exit_code == 1, res.output
    rep = json.loads((tmp_path / "out/report.json").read_text())
    (f,) = [f for f in rep["findings"] if f["check"] == "item_sets"]
    assert f["statistic"]["n_only_treatment"] == 30 and f["statistic"]["shared"] == 50
    (cell,) = rep["cells"]
    assert cell["n"] == 50 and cell["delta"] == 0.0  # the verdict's cell: the shared items
