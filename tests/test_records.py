"""Records own every per-item fact: truncation flags as columns, one join across cells, built and checked in
memory (no YAML or JSONL on disk)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from audit.errors import InputError
from audit.records import NOT_A_PREFIX, Records, Source, build_records


def rows(arm: str, budget: int, texts: list[str], scores: list[float], finish=None, tokens=None, ids=None,
         scoring: str = "exact") -> pd.DataFrame:
    n = len(texts)
    return pd.DataFrame({
        "arm": arm, "item_id": ids or [f"i{k}" for k in range(n)], "variant": "default", "budget": budget,
        "scoring": scoring, "score": scores, "text": texts, "target": "1",
        "finish_reason": finish or [None] * n, "completion_tokens": tokens or [None] * n, "source": f"{arm}@{budget}",
        "line": list(range(1, n + 1))})


def sweep() -> Records:
    # i0 cut at 8 (a prefix of its 32-token output), i1 the same at both, i2 said "length", i3 counted 8 tokens,
    # i4 sampled differently (not a prefix: unknown), i5 opened a think block it never closed.
    b8 = ["Let me", "1", "Let", "12345678", "abc", "<think> so"]
    b32 = ["Let me verify: 1", "1", "Let us", "12345678 9", "xyz", "<think> other</think> 1"]
    t8 = ["1"] * 6
    t32 = ["1"] * 6
    frames = [rows("baseline", 8, b8, [0, 1, 0, 0, 0, 0], finish=[None, None, "length", None, None, None],
                   tokens=[None, None, None, 8, None, None]),
              rows("baseline", 32, b32, [1, 1, 0, 0, 0, 1]),
              rows("treatment", 8, t8, [1] * 6), rows("treatment", 32, t32, [1] * 6)]
    return build_records(frames, [Source("baseline", 8, "mem", "0" * 64, 6)])


def test_truncation_flags_are_columns_with_their_evidence():
    rec = sweep().with_truncation()
    ids, flags, evidence = rec.truncation("baseline")
    assert list(ids) == [f"i{k}" for k in range(6)]
    assert np.array_equal(flags[8], [1, 0, 1, 1, np.nan, 1], equal_nan=True)
    assert np.isnan(flags[32]).all()  # nothing larger to compare with, no finish_reason: unknown
    assert evidence[8] == {"finish_reason": 1, "token count": 1, "prefix of budget 32": 2, NOT_A_PREFIX: 1,
                           "unclosed think": 1}
    assert list(evidence[8])[:2] == ["finish_reason", "token count"]  # in the order the rules apply
    # The paired frame carries the flags, aligned by construction.
    p = rec.paired("exact", 8)
    assert list(p.frame["truncated_b"].fillna(-1)) == [1, 0, 1, 1, -1, 1]
    assert list(p.frame["truncated_t"]) == [0.0] * 6
    with pytest.raises(RuntimeError, match="with_truncation"):
        sweep().truncation("baseline")


def test_joined_aligns_on_item_id_and_names_the_missing():
    a = rows("baseline", 8, ["x", "y", "z"], [0, 1, 1], ids=["c", "a", "b"])
    b = rows("treatment", 8, ["x", "y", "z"], [1, 1, 0], ids=["c", "a", "b"])
    a2 = rows("baseline", 8, ["x", "y"], [1, 0], ids=["b", "a"], scoring="other")
    b2 = rows("treatment", 8, ["x", "y"], [1, 1], ids=["b", "a"], scoring="other")
    rec = build_records([a, b, a2, b2], [])
    j = rec.joined([("exact", 8), ("other", 8)])
    assert list(j.item_ids) == ["a", "b"] and j.missing == ("c",)
    assert list(j.take(0, "gain")) == [0.0, -1.0] and list(j.take(1, "gain")) == [1.0, 0.0]
    left = rec.joined([("exact", 8), ("other", 8)], how="left")
    assert list(left.item_ids) == ["a", "b", "c"] and np.isnan(left.take(1, "gain")[2])


def test_budgets_with_different_items_are_named_and_joined_on_shared_items():
    frames = [rows("baseline", 8, ["1"] * 3, [1, 1, 1]), rows("treatment", 8, ["1"] * 3, [1, 1, 0]),
              rows("baseline", 32, ["1"] * 2, [1, 1]), rows("treatment", 32, ["1"] * 2, [1, 0])]
    rec = build_records(frames, [], where={("baseline", "default", 32): "base_32.jsonl"})
    (gap,) = rec.gaps
    assert (gap.budget, gap.lacking, gap.present_at, gap.file) == (32, ("i2",), (8,), "base_32.jsonl")
    assert gap.sentence() == "budget 32 lacks 1 item(s) present at budget(s) 8 ('i2') (base_32.jsonl)"
    j = rec.joined([("exact", 8), ("exact", 32)])
    assert list(j.item_ids) == ["i0", "i1"] and j.missing == ("i2",)
    assert rec.with_truncation().gaps == rec.gaps  # derived records keep the fact


def test_arms_with_different_items_pair_on_the_shared_ones_and_keep_the_rest():
    base = rows("baseline", 8, ["1"] * 4, [1, 1, 1, 0], ids=["1", "2", "10", "3"])
    treat = rows("treatment", 8, ["1"] * 5, [1, 0, 1, 1, 1], ids=["1", "2", "10", "11", "12"])
    rec = build_records([base, treat], [], where={("baseline", "default", 8): "api.json",
                                                 ("treatment", "default", 8): "local.json"})
    (s,) = rec.item_sets
    assert (s.budget, s.shared, s.only_baseline, s.only_treatment) == (8, 3, ("3",), ("11", "12"))
    assert (s.n_baseline, s.n_treatment, s.baseline_file, s.treatment_file) == (4, 5, "api.json", "local.json")
    assert rec.item_set(8) is s and rec.item_set(32) is None
    assert list(rec.paired("exact", 8).item_ids) == ["1", "10", "2"]  # the shared items only
    assert len(rec.arm_scores("treatment", "exact", 8)) == 5  # an arm on all its own items
    assert rec.with_truncation().item_sets == rec.item_sets
    assert "they share 3: 1 only in baseline ('3'), 2 only in treatment ('11', '12')" in s.sentence()


def test_arms_sharing_fewer_than_two_items_are_refused():
    with pytest.raises(InputError, match="the arms share 1 item") as err:
        build_records([rows("baseline", 8, ["1"] * 3, [1, 1, 1]), rows("treatment", 8, ["1"] * 2, [1, 1],
                                                                     ids=["i0", "x"])], [])
    assert "no test can compare arms on fewer than 2 shared items" in str(err.value.problems[0].message)


def test_a_check_runs_in_memory():
    """No claim file, no logs on disk: a Claim from a dict, Records from DataFrames, the truncation check on them."""
    from audit.checks import truncation
    from audit.checks._common import Context
    from audit.claim import Claim

    claim = Claim.model_validate({"claim": {"title": "t", "metric": "exact", "settings": {"max_tokens": 8},
                                            "reported": {"delta": 0.5}}})
    n = 40
    base8 = ["Let me"] * n  # cut at 8 tokens: a prefix of the 32-token output
    frames = [rows("baseline", 8, base8, [0.0] * n), rows("baseline", 32, ["Let me verify: 1"] * n, [1.0] * n),
              rows("treatment", 8, ["1"] * n, [1.0] * n), rows("treatment", 32, ["1"] * n, [1.0] * n)]
    rec = build_records(frames, []).with_truncation()
    ctx = Context(claim, rec, 0, 1000, 0.95, 0.05, 0.8, 8, "exact")
    found = {f.code: f for f in truncation.run(ctx, truncation.Params())}
    rates = {(r.arm, r.budget): (r.count, r.known) for r in found["rates"].table.rows}
    assert rates[("baseline", 8)] == (n, n) and rates[("treatment", 8)] == (0, n)
    assert found["vanishes"].impact == "fragile" and found["vanishes"].subject.budget == 32
    assert "100% of baseline vs 0% of treatment outputs were cut off" in found["vanishes"].title
