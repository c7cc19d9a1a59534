"""Several outputs per item (samples.reduce): list outputs (``output`` a list, or ``output.0`` for one element),
repeated ids and inspect epochs reduced per arm (mean, first, any, majority, pass@k), and the reduction check's
finding when the arms are reduced differently, with the like-for-like deltas beside."""
from __future__ import annotations

import json
from math import comb

import numpy as np
import pytest

from audit.claim import load_claim
from audit.errors import InputError
from audit.importers import load_records
from audit.importers.reduce import pass_at_k
from audit.verify import verify


def test_pass_at_k_is_the_unbiased_estimator():
    for n, c, k in [(5, 0, 1), (5, 2, 1), (5, 2, 3), (10, 3, 5), (4, 4, 2), (20, 1, 10)]:
        assert pass_at_k(n, c, k) == pytest.approx(1 - comb(n - c, k) / comb(n, k))
    assert pass_at_k(5, 2, 1) == pytest.approx(2 / 5)  # pass@1 is the mean


def write(tmp_path, base: list[dict], treat: list[dict], reduce, extra: str = "") -> object:
    (tmp_path / "b.json").write_text(json.dumps(base))
    (tmp_path / "t.json").write_text(json.dumps(treat))
    (tmp_path / "claim.yaml").write_text(
        "claim: {title: t, settings: {max_tokens: 64, scoring: answer}}\n"
        f"samples:\n  format: json\n  reduce: {json.dumps(reduce)}\n  fields: {{id: id, output: outputs, target: gold}}\n"
        "  baseline: {64: b.json}\n  treatment: {64: t.json}\n"
        "scorers: {answer: {regex: 'answer is (\\d+)'}}\noptions: {resamples: 1000}\n" + extra)
    return load_claim(tmp_path / "claim.yaml")


# 40 items, 4 samples each. Each arm solves a given item on sample j when rng says so; the arms have the same
# per-sample accuracy (0.3), so a like-for-like comparison finds no gain.
def arm(seed: int, n: int = 40, k: int = 4, p: float = 0.3) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"id": i, "gold": "7", "outputs": [f"answer is {7 if rng.random() < p else 3}" for _ in range(k)]}
            for i in range(n)]


def test_each_rule_reduces_a_list_of_outputs(tmp_path):
    base = [{"id": 0, "gold": "7", "outputs": ["answer is 3", "answer is 7", "answer is 7", "none"]},
            {"id": 1, "gold": "7", "outputs": ["answer is 7", "answer is 3", "answer is 3", "answer is 3"]}]
    expect = {"mean": [0.5, 0.25], "first": [0.0, 1.0], "any": [1.0, 1.0], "majority": [1.0, 0.0],
              "pass@2": [1 - comb(2, 2) / comb(4, 2), 1 - comb(3, 2) / comb(4, 2)]}
    for rule, want in expect.items():
        rec = load_records(write(tmp_path, base, base, rule))
        assert list(rec.paired("answer", 64).baseline) == pytest.approx(want), rule
        assert rec.reductions["baseline"] == {"rule": rule, "samples_min": 4, "samples_max": 4}
        assert len(rec.per_sample) == 2 * 2 * 4
    # without samples.reduce a list output is refused, and output.0 picks one element
    (tmp_path / "claim.yaml").write_text((tmp_path / "claim.yaml").read_text().replace("  reduce: \"pass@2\"\n", ""))
    with pytest.raises(InputError, match="must be a string"):
        load_records(load_claim(tmp_path / "claim.yaml"))
    (tmp_path / "claim.yaml").write_text((tmp_path / "claim.yaml").read_text().replace("output: outputs",
                                                                                       "output: outputs.0"))
    assert list(load_records(load_claim(tmp_path / "claim.yaml")).paired("answer", 64).baseline) == [0.0, 1.0]


def test_arms_reduced_differently_are_flagged_with_the_like_for_like_deltas(tmp_path):
    c = write(tmp_path, arm(1), arm(2), {"baseline": "mean", "treatment": "any"})
    out = verify(c)
    (f,) = [f for f in out.findings if f.check == "reduction"]
    assert (f.code, f.outcome, f.severity) == ("different_rules", "flag", "major")
    published, both_mean, both_any = f.rows
    assert published["baseline_rule"] == "mean" and published["treatment_rule"] == "any"
    assert published["delta"] > 0.3  # any-of-4 against a mean: a large "gain"
    assert abs(both_mean["delta"]) < 0.15 and abs(both_any["delta"]) < 0.25  # like for like: none to speak of
    assert "not a like-for-like comparison" in f.title
    # the claimed cell is the published one: per-item reduced scores, paired on the 40 items
    (cell,) = [c for c in out.report.cells if c.claimed]
    assert cell.n == 40 and cell.delta == pytest.approx(published["delta"])


def test_same_rule_is_reported_and_repeated_ids_are_samples(tmp_path):
    rows = [{"id": i // 3, "output": f"answer is {7 if i % 3 == 0 else 3}", "gold": "7"} for i in range(30)]
    (tmp_path / "b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "claim.yaml").write_text(
        "claim: {title: t, settings: {max_tokens: 64, scoring: answer}}\n"
        "samples:\n  format: jsonl\n  reduce: first\n  fields: {target: gold}\n"
        "  baseline: {64: b.jsonl}\n  treatment: {64: t.jsonl}\n"
        "scorers: {answer: {regex: 'answer is (\\d+)'}}\noptions: {resamples: 1000}\n")
    c = load_claim(tmp_path / "claim.yaml")
    rec = load_records(c)
    assert rec.paired("answer", 64).n == 10 and list(rec.paired("answer", 64).baseline) == [1.0] * 10
    (f,) = [f for f in verify(c, records=rec).findings if f.check == "reduction"]
    assert f.code == "same_rule" and "first over 3–3 samples" in f.title


def test_pass_at_k_needs_binary_scores_and_enough_samples(tmp_path):
    base = [{"id": i, "gold": "7", "outputs": ["answer is 7", "answer is 3"]} for i in range(3)]
    with pytest.raises(InputError, match="needs at least 5 samples per item"):
        load_records(write(tmp_path, base, base, "pass@5"))
    with pytest.raises(Exception, match="unknown reduction 'best'"):
        write(tmp_path, base, base, "best")
