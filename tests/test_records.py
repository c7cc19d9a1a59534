"""Records own every per-item fact: truncation flags as columns, one join across cells, built and checked in
memory (no YAML or JSONL on disk)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from audit.errors import InputError
from audit.records import NOT_A_PREFIX, Records, LogSource, build_records


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
    return build_records(frames, [LogSource("baseline", 8, "mem", "0" * 64, 6)])


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


def _merged_flags(rec: Records) -> pd.DataFrame:
    """The reference: truncation_frame merged onto the table on (arm, variant, budget, item_id)."""
    from audit.records import COLUMNS, DERIVED_COLUMNS, truncation_frame

    fr = truncation_frame(rec)
    t = rec.table.drop(columns=["truncated", "truncated_by"])
    t = t.merge(fr, on=["arm", "variant", "budget", "item_id"], how="left", validate="many_to_one") if len(fr) \
        else t.assign(truncated=np.nan, truncated_by=None)
    return t[COLUMNS + DERIVED_COLUMNS]


def test_truncation_columns_equal_the_merged_frame():
    """with_truncation derives the flags on the rows where they are; the same table as merging truncation_frame
    onto it, odd cases included: items a budget lacks, items in another order, a second scoring with items the
    first lacks (at this budget, at every budget), finish reasons, token counts, think blocks, empty outputs."""
    rng = np.random.default_rng(3)
    texts = ["Let me", "Let me verify: 1", "<think> a", "<think> a</think> 2", "", "  ", "1", "12", "abc", None]
    frames = []
    for arm in ("baseline", "treatment"):
        for variant in ("default", "ood"):
            for b in (8, 32, 128):
                ids = [f"i{k}" for k in range(30) if not (b == 32 and k % 7 == 3)]
                rng.shuffle(ids)
                for scoring, keep in (("exact", lambda k: True), ("other", lambda k: k % 5 != 1)):
                    sel = [i for i in ids if keep(int(i[1:]))] + (["x1", "x2"] if scoring == "other" else [])
                    m = len(sel)
                    f = rows(arm, b, [texts[int(rng.integers(len(texts)))] for _ in range(m)],
                             list(rng.integers(0, 2, m).astype(float)),
                             finish=[[None, "length", "stop", None][int(rng.integers(4))] for _ in range(m)],
                             tokens=[[None, None, b, b - 1][int(rng.integers(4))] for _ in range(m)],
                             ids=sel, scoring=scoring)
                    f["variant"] = variant
                    frames.append(f)
    rec = build_records(frames, [])
    got = rec.with_truncation().table
    want = _merged_flags(rec)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert got["truncated_by"].isna().any() and (got["truncated_by"] == "prefix of budget 32").any()


def test_truncation_columns_with_one_arm_missing_a_budget_and_a_missing_budget():
    a = rows("baseline", 8, ["Let me", "x"], [0, 1])
    b = rows("treatment", 8, ["1", "<think> y"], [1, 1])
    c = rows("baseline", 16, ["Let me go", "x"], [1, 1])
    d = rows("treatment", 16, ["1", "z"], [1, 1], scoring="other")
    e = rows("baseline", 16, ["1", "z"], [1, 1], scoring="other")
    rec = build_records([a, b, c, d, e], [])
    pd.testing.assert_frame_equal(rec.with_truncation().table, _merged_flags(rec), check_exact=True)


def _wide_truncation(rec: Records, arm: str, variant: str = "default"):
    """The reference: Records.truncation from the wide (pivoted) tables."""
    from audit.records import _evidence_order

    flags = rec.column_wide(arm, "truncated", variant)
    by = rec.column_wide(arm, "truncated_by", variant)
    counts = {b: by[b].value_counts() for b in by.columns}
    return (flags.index.to_numpy(), {b: flags[b].to_numpy(dtype=float) for b in flags.columns},
            {b: {k: int(c[k]) for k in sorted(c.index, key=_evidence_order)} for b, c in counts.items()})


@pytest.mark.parametrize("build", ["sweep", "odd"])
def test_truncation_read_off_the_rows_equals_the_wide_tables(build):
    if build == "sweep":
        rec = sweep().with_truncation()
        cases = [("baseline", "default"), ("treatment", "default")]
    else:
        a = rows("baseline", 8, ["Let me", "x", "q"], [0, 1, 1], ids=["b", "a", "c"])
        b = rows("treatment", 8, ["1", "<think> y", "q"], [1, 1, 0], ids=["b", "a", "c"])
        c = rows("baseline", 16, ["Let me go", "x", "d"], [1, 1, 0], ids=["a", "b", "d"])
        d = rows("treatment", 16, ["1", "z", "d"], [1, 1, 1], ids=["d", "b", "a"])
        rec = build_records([a, b, c, d], []).with_truncation()
        cases = [("baseline", "default"), ("treatment", "default")]
    for arm, variant in cases:
        ids, flags, evidence = rec.truncation(arm, variant)
        w_ids, w_flags, w_evidence = _wide_truncation(rec, arm, variant)
        assert list(ids) == list(w_ids) and ids.dtype == w_ids.dtype
        assert flags.keys() == w_flags.keys()
        for k in flags:
            np.testing.assert_array_equal(flags[k], w_flags[k])
        assert evidence == w_evidence and [list(e) for e in evidence.values()] == [list(e) for e in w_evidence.values()]


def test_whitespace_list_is_what_strip_removes():
    import sys

    from audit.records import WHITESPACE

    assert set(WHITESPACE) == {chr(i) for i in range(sys.maxunicode + 1) if chr(i).isspace()}


@pytest.mark.parametrize("arrow", [True, False])
def test_no_output_causes_with_and_without_the_arrow_prefilter(arrow):
    from audit.records import no_output_causes

    texts = ["", " ", "\u3000\n", "a", " a ", "\x1c", None, float("nan"), "\u200b", "x\u2028", "\u2028"] * 3
    given = [None, "null content", None, np.nan, None, None, None, None, None, None, None] * 3
    t = pd.Series(texts, dtype="str" if arrow else object)
    want = []
    for x, g in zip(t.tolist(), given):
        if g is not None and not (isinstance(g, float) and np.isnan(g)):
            want.append(g)
        elif isinstance(x, str) and not x.strip():
            want.append("empty output")
        else:
            want.append(None)
    assert list(no_output_causes(t, pd.Series(given, dtype=object))) == want


@pytest.mark.parametrize("order", ["same", "shuffled", "subset"])
def test_paired_side_by_side_equals_the_join(order):
    """Arms with the same items in the same order are put side by side; the frame is the inner join's."""
    ids = [f"i{k}" for k in range(12)]
    other = {"same": ids, "shuffled": ids[::-1], "subset": ids[2:]}[order]
    a = rows("baseline", 8, [f"b{k}" for k in range(12)], [k % 2 for k in range(12)], ids=ids,
             finish=["stop"] * 12, tokens=list(range(12)))
    b = rows("treatment", 8, [f"t{k}" for k in range(len(other))], [1.0] * len(other), ids=other)
    rec = build_records([a, b], []).with_truncation()
    got = rec.paired("exact", 8).frame
    cols = ["item_id", "score", "text", "finish_reason", "completion_tokens", "answered", "truncated", "no_output"]
    bb = rec.table[rec.table["arm"] == "baseline"][cols + ["cluster"]].set_index("item_id")
    tt = rec.table[rec.table["arm"] == "treatment"][cols].set_index("item_id")
    want = bb.merge(tt, how="inner", left_index=True, right_index=True, suffixes=("_b", "_t")).sort_index()
    want = want.rename(columns={"finish_reason_b": "finish_b", "finish_reason_t": "finish_t",
                                "completion_tokens_b": "tokens_b", "completion_tokens_t": "tokens_t"}).reset_index()
    pd.testing.assert_frame_equal(got, want, check_exact=True)


def _rules_one_by_one(b, texts, larger, nxt, finish, tokens, nothing, think_open="<think>", think_close="</think>"):
    """The truncation rules as they were written item by item (the reference for truncation_rules)."""
    from audit.records import NO_OUTPUT_EVIDENCE

    n = len(texts)
    flags = np.full(n, np.nan)
    by = np.full(n, None, dtype=object)
    fr = pd.Series(finish, dtype=object)
    known = fr.isin(("length", "stop")).to_numpy(dtype=bool)
    flags[known] = (fr[known] == "length").to_numpy(dtype=float)
    by[known] = "finish_reason"
    use = np.isnan(flags) & ~np.isnan(tokens)
    flags[use] = (tokens[use] >= b).astype(float)
    by[use] = "token count"
    if larger is not None:
        for i in np.flatnonzero(np.isnan(flags)).tolist():
            s, l_ = texts[i], larger[i]
            if not isinstance(s, str) or not isinstance(l_, str):
                continue
            if l_.startswith(s):
                flags[i] = float(s != l_)
                by[i] = f"prefix of budget {nxt}"
            else:
                by[i] = NOT_A_PREFIX
    opened = np.array([isinstance(s, str) and think_open in s and think_close not in s for s in texts], dtype=bool)
    think = np.isnan(flags) & opened
    flags[think] = 1.0
    by[think] = "unclosed think"
    empty = np.array([c is not None and not (isinstance(c, float) and np.isnan(c)) for c in nothing], dtype=bool)
    gone = np.isnan(flags) & empty
    flags[gone] = 1.0
    by[gone] = NO_OUTPUT_EVIDENCE
    return flags, by


@pytest.mark.parametrize("seed", range(6))
def test_truncation_rules_equal_the_rules_item_by_item(seed):
    from audit.records import truncation_rules

    rng = np.random.default_rng(seed)
    pool = ["", "a", "ab", "abc", "<think> x", "<think> x</think> y", "<think>", "x <think>", None, np.nan, "ab c"]
    n = 300

    def pick(values):
        return np.array([values[int(k)] for k in rng.integers(len(values), size=n)], dtype=object)

    texts, larger = pick(pool), pick(pool)
    finish = pick([None, None, "length", "stop", "content_filter", np.nan])
    tokens = np.array([[np.nan, np.nan, 8.0, 7.0, 9.0][int(k)] for k in rng.integers(5, size=n)])
    nothing = pick([None, None, None, "empty output", "null content", np.nan])
    for lg, opens in ((larger, ("<think>", "</think>")), (None, ("<think>", "</think>")), (larger, ("<r>", "</r>"))):
        got = truncation_rules(8, texts, lg, 32, finish, tokens, nothing, *opens)
        want = _rules_one_by_one(8, texts, lg, 32, finish, tokens, nothing, *opens)
        np.testing.assert_array_equal(got[0], want[0])
        assert list(got[1]) == list(want[1])


@pytest.mark.parametrize("seed", range(5))
def test_budget_gaps_decided_on_codes_equal_the_named_gaps(seed):
    """build_records names no gaps when every budget holds every item (decided on codes); else the gaps
    _budget_gaps names: the same as naming them every time."""
    from audit.records import _budget_gaps

    rng = np.random.default_rng(seed)
    frames = []
    for arm in ("baseline", "treatment"):
        for variant in ("default", "ood"):
            for b in (8, 32, 64):
                keep = [k for k in range(10) if seed == 0 or not (arm == "baseline" and rng.random() < 0.1)]
                f = rows(arm, b, ["x"] * len(keep), [1.0] * len(keep), ids=[f"i{k}" for k in keep])
                f["variant"] = variant
                frames.append(f)
    rec = build_records(frames, [])
    assert rec.gaps == tuple(_budget_gaps(rec.table, {}))
    assert (rec.gaps == ()) == (seed == 0)
