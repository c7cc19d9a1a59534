"""Sequential audits (audit.stopping): the draw order, the looks, the decisions, the anytime-valid cells, and a live
audit on a loopback server that stops early, resumes from the cache and continues past a smaller n_max."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from audit import stats, stopping
from audit.claim import load_claim
from audit.cli import main
from audit.errors import InputError
from audit.generation.cache import GenerationCache
from audit.measure import draw_keys, draw_order
from audit.records import Records
from audit.verify import fixed_n_look, verify
from servers import FakeServer, raw


# --------------------------------------------------------------------------------------------------------------
# The draw order and the looks


def test_draw_order_depends_on_id_and_seed_only():
    ids = [f"q{i}" for i in range(50)]
    keys = draw_keys(ids, 3)
    # the same item has the same key in any list, in any order
    shuffled = list(reversed(ids))
    assert dict(zip(shuffled, draw_keys(shuffled, 3))) == dict(zip(ids, keys))
    assert (draw_keys(ids, 4) != keys).any()
    expected = int.from_bytes(hashlib.sha256(b"3\x00q7").digest()[:8], "big")
    assert int(keys[7]) == expected
    order = draw_order(ids, 3)
    assert sorted(order.tolist()) == list(range(50)) and order.tolist() != list(range(50))


def test_schedule_and_share():
    assert stopping.schedule(120, 50, None) == [50, 100, 120]
    assert stopping.schedule(120, 50, 60) == [50, 60]
    assert stopping.schedule(100, 50, None) == [50, 100]
    assert stopping.schedule(0, 50, None) == []
    assert stopping.share(50, 100, 30) == 15 and stopping.share(1, 100, 30) == 1 and stopping.share(100, 100, 7) == 7


def test_drawn_first_is_nested():
    ids = [f"item-{i}" for i in range(40)]
    prev = set()
    for k in (5, 10, 25, 40):
        got = {i for i, m in zip(ids, stopping.drawn_first(ids, k, 11)) if m}
        assert len(got) == k and prev <= got
        prev = got


def _records(b: np.ndarray, t: np.ndarray, variants: dict[str, tuple[np.ndarray, np.ndarray]] | None = None) -> Records:
    rows = []
    for variant, (bb, tt) in {"default": (b, t), **(variants or {})}.items():
        for arm, scores in (("baseline", bb), ("treatment", tt)):
            rows.append(
                pd.DataFrame(
                    {
                        "arm": arm,
                        "item_id": [f"q{i:04d}" for i in range(len(scores))],
                        "variant": variant,
                        "budget": 512,
                        "scoring": "exact",
                        "score": scores.astype(float),
                        "text": "",
                        "target": "",
                    }
                )
            )
    return Records(pd.concat(rows, ignore_index=True))


def _claim(tmp_path, reported=None, extra_options=None):
    from audit.claim import Claim

    logs = {512: "simulated/512"}
    data = {
        "claim": {"title": "t", "metric": "exact_match", "reported": {} if reported is None else {"delta": reported},
                  "settings": {"max_tokens": 512, "scoring": "exact"}},
        "samples": {"format": "jsonl", "baseline": logs, "treatment": logs},
        "options": {"resamples": 1000, **(extra_options or {})},
    }
    return Claim.model_validate(data)


def _pairs(rng, n, p_b, p_t):
    b = (rng.random(n) < p_b).astype(float)
    keep = rng.random(n) < 0.6
    t = np.where(keep, b, (rng.random(n) < p_t).astype(float))
    t = np.where((t == 0) & (rng.random(n) < (p_t - p_b) / (1 - p_b)), 1.0, t)
    return b, t


def test_prefix_keeps_the_first_drawn_items_of_every_variant():
    rng = np.random.default_rng(0)
    b, t = _pairs(rng, 100, 0.5, 0.6)
    rec = _records(b, t, {"ood": (b[:60], t[:60])})
    sub = stopping.prefix(rec, 30, 5)
    ids = sorted(rec.table["item_id"].unique())
    first = {i for i, m in zip(ids, stopping.drawn_first(ids, 30, 5)) if m}
    tab = sub.table
    assert set(tab.loc[tab["variant"] == "default", "item_id"]) == first
    ood_ids = sorted(rec.table.loc[rec.table["variant"] == "ood", "item_id"].unique())
    ood_first = {i for i, m in zip(ood_ids, stopping.drawn_first(ood_ids, 18, 5)) if m}  # 30/100 of 60
    assert set(tab.loc[tab["variant"] == "ood", "item_id"]) == ood_first
    assert len(tab) == 2 * (30 + 18)


def test_items_only_one_arm_holds_are_neither_counted_nor_drawn(tmp_path):
    """Replayed logs on different item sets (the treatment's run stopped after 180 of 300 items): the looks count and
    draw only the items both arms hold, so "would have stopped after k of n" counts the paired items a live re-run
    generates, not items no paired decision can read."""
    rng = np.random.default_rng(3)
    tab = _records(*_pairs(rng, 300, 0.4, 0.7)).table
    short = Records(tab[(tab["arm"] == "baseline") | (tab["item_id"] < "q0180")].reset_index(drop=True))
    assert stopping.default_items(short) == 180
    shared = [f"q{i:04d}" for i in range(180)]
    first = {i for i, m in zip(shared, stopping.drawn_first(shared, 60, 5)) if m}
    sub = stopping.prefix(short, 60, 5).table
    assert {a: set(g) for a, g in sub.groupby("arm")["item_id"]} == {"baseline": first, "treatment": first}
    seq = verify(_claim(tmp_path), records=short, seed=0, sequential=True).report.sequential
    assert seq.items_total == 180 and seq.settled and seq.stopped_at < 180


# --------------------------------------------------------------------------------------------------------------
# The anytime-valid inference


def test_anytime_interval_inverts_its_one_sided_tests():
    rng = np.random.default_rng(2)
    d = rng.choice([-1.0, 0.0, 1.0], size=300, p=[0.1, 0.65, 0.25])
    inf = stats.anytime_inference(d, 0.95, (-1.0, 1.0))
    lo, hi = inf.interval.low, inf.interval.high
    assert lo < inf.value < hi and inf.interval.method == stats.ANYTIME_METHOD
    assert inf.p_value(lo, "greater") == pytest.approx(0.025, abs=1e-6)
    assert inf.p_value(hi, "less") == pytest.approx(0.025, abs=1e-6)
    assert inf.p_value(lo - 0.01, "greater") < 0.025 < inf.p_value(lo + 0.01, "greater")
    assert inf.test.p_value == pytest.approx(min(1.0, 2 * min(inf.p_value(0, "greater"), inf.p_value(0, "less"))))
    # wider than the fixed-n interval on the same items: the price of looking at any time
    fixed = stats.paired_inference(np.zeros(300), d, outcomes="scores")
    assert hi - lo > fixed.interval.high - fixed.interval.low


def test_anytime_p_holds_its_level_when_peeked_at_every_batch():
    """Under a null, rejecting at the first of 20 looks where p < α/2 (one side) happens at most α/2 of the time; a
    fixed-n test peeked at the same looks rejects far more often."""
    rng = np.random.default_rng(7)
    reps, n, looks = 300, 400, range(20, 401, 20)
    anytime = fixed = 0
    for _ in range(reps):
        d = rng.choice([-1.0, 0.0, 1.0], size=n, p=[0.2, 0.6, 0.2])
        anytime += any(stats.anytime_inference(d[:k]).p_value(0.0, "greater") < 0.025 for k in looks)
        fixed += any(stats.paired_inference(np.zeros(k), d[:k], outcomes="scores").p_value(0.0, "greater") < 0.025
                     for k in looks)
    assert anytime / reps <= 0.025 + 2 * math.sqrt(0.025 * 0.975 / reps)
    assert fixed / reps > 0.05  # peeking at a fixed-n test inflates its error: the reason for the betting test


# --------------------------------------------------------------------------------------------------------------
# Decisions and streaming over in-memory records


def test_streamed_audit_stops_early_on_a_clear_gain(tmp_path):
    rng = np.random.default_rng(1)
    b, t = _pairs(rng, 1000, 0.4, 0.7)
    claim = _claim(tmp_path)
    out = verify(claim, records=_records(b, t), seed=0, stream=True)
    seq = out.report.sequential
    assert out.report.verdict == "supported"
    assert seq.mode == "live" and seq.stopped_early and seq.stopped_at < 500 and seq.items_total == 1000
    assert seq.reason == "the gain is shown" and seq.looks[-1].items == seq.stopped_at and seq.looks[-1].open == []
    claimed = [c for c in out.report.cells if c.claimed][0]
    assert claimed.n == seq.stopped_at and claimed.ci_method == stats.ANYTIME_METHOD
    d = seq.decisions[0]
    assert d.name == "claimed gain" and d.state == "shown" and d.fixed_method == "tango-score-cc"
    assert d.fixed_low > d.low  # the fixed-n interval shown beside is narrower


def test_streamed_null_runs_to_n_max_and_is_not_supported(tmp_path):
    rng = np.random.default_rng(3)
    b, t = _pairs(rng, 400, 0.5, 0.5)
    claim = _claim(tmp_path, extra_options={"sequential": {"batch": 40, "n_max": 200}})
    out = verify(claim, records=_records(b, t), seed=0, stream=True)
    seq = out.report.sequential
    assert seq.stopped_at == 200 and seq.n_max == 200 and len(seq.looks) == 5
    assert seq.reason.startswith("no stop before 200 items")
    assert out.report.verdict == "inconclusive"


def test_reversal_settles_the_verdict_at_once(tmp_path):
    rng = np.random.default_rng(4)
    b, t = _pairs(rng, 600, 0.4, 0.7)
    out = verify(_claim(tmp_path, reported=0.3), records=_records(t, b), seed=0, stream=True)
    seq = out.report.sequential
    assert out.report.verdict == "not_reproduced" and seq.stopped_early
    assert seq.decisions[0].settles_verdict and len(seq.decisions) == 1


def _claimed_state(d) -> str:
    if d.settles_verdict:
        return "reversed" if "reversed" in d.why else "smaller_than_reported"
    return "reproduced" if d.why.startswith("the gain is shown") else "not shown"


@pytest.mark.parametrize(
    ("p_b", "p_t", "reported", "flip", "states"),
    [(0.4, 0.7, None, False, {"reproduced"}), (0.4, 0.7, None, True, {"reversed"}),
     (0.45, 0.55, 0.3, False, {"not shown", "reproduced", "smaller_than_reported"}),
     (0.5, 0.5, 0.1, False, {"not shown"}), (0.4, 0.55, 0.15, False, {"not shown", "reproduced"})],
)
def test_the_stop_rule_reads_the_claimed_gain_as_the_verdict_does(tmp_path, p_b, p_t, reported, flip, states):
    """At every stopping point the stop rule's claimed-gain decision is the significance check's finding on the same
    anytime-valid cell (one rule, `audit.breaks.read_gain`): a stop never disagrees with the verdict it settles."""
    rng = np.random.default_rng(12)
    b, t = _pairs(rng, 600, p_b, p_t)
    rec = _records(t, b) if flip else _records(b, t)
    seen = set()
    for n_max in (40, 80, 160, 320, 600):
        claim = _claim(tmp_path, reported=reported, extra_options={"sequential": {"batch": 40, "n_max": n_max}})
        out = verify(claim, records=rec, seed=0, stream=True)
        code = next(f.code for f in out.findings if f.check == "significance" and f.code != "larger_than_reported")
        state = _claimed_state(out.report.sequential.decisions[0])
        assert state == (code if code in ("reversed", "smaller_than_reported", "reproduced") else "not shown")
        seen.add(state)
    assert seen == states  # the cases between them pass through every state


def test_the_fixed_n_yardstick_reads_the_same_rule_from_narrower_intervals(tmp_path):
    """`fixed_n_look` (the calibration's yardstick, never a stop) settles at 100 items where the streamed audit cannot
    yet: the same decisions, read from the fixed-n interval the report shows beside the anytime one."""
    rng = np.random.default_rng(1)
    rec = _records(*_pairs(rng, 1000, 0.5, 0.58))
    fixed = fixed_n_look(_claim(tmp_path), rec, 100, 0, 1000)
    claim = _claim(tmp_path, extra_options={"sequential": {"batch": 50, "n_max": 100}})
    seq = verify(claim, records=rec, seed=0, stream=True).report.sequential
    assert fixed.items == seq.stopped_at == 100 and fixed.settled and not seq.settled
    f, s = fixed.decisions[0], seq.decisions[0]
    assert f.low > 0 > s.low and f.high - f.low < s.high - s.low
    assert (f.low, f.high) == pytest.approx((s.fixed_low, s.fixed_high))


def test_replay_keeps_the_fixed_verdict_and_says_where_it_would_stop(tmp_path):
    rng = np.random.default_rng(1)
    b, t = _pairs(rng, 1000, 0.4, 0.7)
    fixed = verify(_claim(tmp_path), records=_records(b, t), seed=0)
    replay = verify(_claim(tmp_path), records=_records(b, t), seed=0, sequential=True)
    seq = replay.report.sequential
    assert fixed.report.sequential is None
    assert seq.mode == "replay" and seq.stopped_at < 1000
    assert [c.model_dump() for c in replay.report.cells] == [c.model_dump() for c in fixed.report.cells]
    assert replay.report.verdict == fixed.report.verdict


def test_clustered_items_are_refused(tmp_path):
    claim = _claim(tmp_path, extra_options={"cluster_field": "passage", "sequential": {}})
    rng = np.random.default_rng(1)
    b, t = _pairs(rng, 100, 0.4, 0.7)
    with pytest.raises(InputError) as e:
        verify(claim, records=_records(b, t), seed=0)
    assert "options.sequential" in str(e.value) and "cluster" in str(e.value)


# --------------------------------------------------------------------------------------------------------------
# Live: a loopback server answers the treatment right on 55% of items, the baseline on 35%


def _right(item: str, arm: str) -> bool:
    h = int(hashlib.sha256(f"{arm}:{item}".encode()).hexdigest()[:8], 16) / 16**8
    return h < (0.55 if arm == "treatment" else 0.35)


def _responder(n: int, body: dict):
    prompt = body.get("prompt", "")
    arm = "treatment" if prompt.startswith("Carefully:") else "baseline"
    q = prompt.split("Q: ")[1].split(" =")[0]
    a, b = (int(x) for x in q.split(" + "))
    answer = a + b if _right(q, arm) else a + b + 1
    payload = {
        "id": "x",
        "object": "text_completion",
        "choices": [{"index": 0, "text": f" The answer is {answer}.", "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11},
    }
    return raw(json.dumps(payload).encode())


def _live_claim(tmp_path, url: str, n: int = 300, **seq) -> object:
    data = tmp_path / "data.jsonl"
    with data.open("w") as f:
        for i in range(n):
            a, b = 10 + i, 3 + i % 7
            f.write(json.dumps({"id": f"q{i:03d}", "question": f"{a} + {b}", "answer": str(a + b)}) + "\n")
    arm = {"endpoint": url, "model": "m"}
    c = {
        "claim": {"title": "live", "settings": {"max_tokens": 16, "scoring": "strict"}},
        "arms": {"baseline": arm, "treatment": arm | {"prompt": "Carefully: Q: {{ question }} =\nA:"}},
        "task": {"dataset": str(data), "prompt": "Q: {{ question }} =\nA:", "target": "{{ answer }}"},
        "scorers": {"strict": {"regex": "The answer is (-?[0-9]+)", "compare": "numeric"}},
        "options": {"resamples": 1000, "sequential": {"batch": 10, **seq}},
    }
    p = tmp_path / "claim.yaml"
    p.write_text(yaml.safe_dump(c))
    return load_claim(p)


def test_live_sequential_stops_early_resumes_and_continues(tmp_path):
    with FakeServer(responder=_responder, max_requests=2000) as srv:
        cache = GenerationCache(tmp_path / "cache.sqlite")
        out = verify(_live_claim(tmp_path, srv.url), cache=cache)
        seq = out.report.sequential
        assert out.report.verdict == "supported" and seq.mode == "live"
        assert seq.stopped_early and seq.stopped_at <= 150 and seq.items_total == 300
        # only the drawn items were generated: two arms, one budget each, once each
        assert srv.n_generation_hits == 2 * seq.stopped_at == seq.generations["requests"]
        ids = sorted(f"q{i:03d}" for i in range(300))
        first = {i for i, m in zip(ids, stopping.drawn_first(ids, seq.stopped_at, 0)) if m}
        assert set(out.records.table["item_id"]) == first

        # resuming costs nothing and stops at the same look
        again = verify(_live_claim(tmp_path, srv.url), cache=cache)
        assert srv.n_generation_hits == 2 * seq.stopped_at and again.report.sequential.generations["requests"] == 0
        assert again.report.sequential.stopped_at == seq.stopped_at and again.report.verdict == out.report.verdict

        # a run cut at n_max = 10 (before the stop) continues past it when n_max is raised, paying only the new items
        cache2 = GenerationCache(tmp_path / "cache2.sqlite")
        hits0 = srv.n_generation_hits
        cut = verify(_live_claim(tmp_path, srv.url, n_max=10), cache=cache2)
        assert cut.report.sequential.stopped_at == 10 and cut.report.sequential.reason.startswith("no stop before 10")
        assert srv.n_generation_hits - hits0 == 20
        resumed = verify(_live_claim(tmp_path, srv.url), cache=cache2)
        assert resumed.report.sequential.stopped_at == seq.stopped_at
        assert srv.n_generation_hits - hits0 == 2 * seq.stopped_at

        # the fixed-n audit of the same claim generates every item and agrees on the verdict
        fixed_claim = _live_claim(tmp_path, srv.url)
        fixed_claim = fixed_claim.model_copy(
            update={"options": fixed_claim.options.model_copy(update={"sequential": None})}
        )
        fixed = verify(fixed_claim, cache=GenerationCache(tmp_path / "cache3.sqlite"))
        assert fixed.report.sequential is None and fixed.report.verdict == out.report.verdict
        assert srv.n_generation_hits - hits0 == 2 * seq.stopped_at + 600


def test_cli_sequential_flag_and_n_max(tmp_path):
    with FakeServer(responder=_responder, max_requests=2000) as srv:
        claim = _live_claim(tmp_path, srv.url)
        res = CliRunner().invoke(
            main, ["verify", str(claim.path), "--no-cache", "--json", "--sequential", "--n-max", "60"]
        )
        assert res.exit_code in (0, 1), res.output
        report = json.loads(res.output[res.output.index("{") :])
        assert report["sequential"]["n_max"] == 60 and report["sequential"]["stopped_at"] <= 60
        assert srv.n_generation_hits == 2 * report["sequential"]["stopped_at"]


def test_a_variant_on_other_items_is_paired_by_draw_rank(tmp_path):
    """A second dataset shares no item with the claimed cell: its change is tested on the i-th drawn item of each
    paired with the other's, as many pairs as the smaller cell has."""
    from audit.breaks import perturbations
    from audit.verify import _context

    rng = np.random.default_rng(9)
    b, t = _pairs(rng, 300, 0.4, 0.6)
    vb, vt = _pairs(rng, 200, 0.4, 0.6)
    rec = _records(b, t)
    ood = _records(vb, vt).table.assign(variant="ood", item_id=lambda f: "x" + f["item_id"])
    rec = Records(pd.concat([rec.table, ood], ignore_index=True))
    claim = _claim(tmp_path)
    ctx = _context(claim, rec, 0, 1000, None, 0)
    (pt,) = [p for p in perturbations(ctx) if p.kind == "variant"]
    assert pt.change.method == stats.ANYTIME_METHOD and pt.change.estimate.n == 200 and pt.shared == 0
    g0 = (t - b)[draw_order([f"q{i:04d}" for i in range(300)], 0)][:200]
    g1 = (vt - vb)[draw_order([f"xq{i:04d}" for i in range(200)], 0)]
    assert pt.change.value == pytest.approx(float(np.mean(g1 - g0)))
