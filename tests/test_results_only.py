"""Results-only claims (samples.format: lm-eval-results): rates and n read from each run's results_*.json, audited
from counts with no hand arithmetic, and the runs' configs compared as the settings check compares samples."""
from __future__ import annotations

import json

import pytest
import yaml

from audit.claim import load_claim
from audit.errors import InputError
from audit.verify import verify
from conftest import lmeval_results


def results(folder, name: str, value: float, n: int, gen_kwargs: dict, fewshot: int = 5) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    r = lmeval_results("gsm8k", 256, ["strict-match", "flexible-extract"])
    r["configs"]["gsm8k"]["generation_kwargs"] = gen_kwargs
    r["configs"]["gsm8k"]["num_fewshot"] = fewshot
    r["results"]["gsm8k"] = {"alias": "gsm8k", "exact_match,strict-match": value,
                             "exact_match_stderr,strict-match": 0.01, "exact_match,flexible-extract": value + 0.01}
    r["n-samples"] = {"gsm8k": {"original": n, "effective": n}}
    r["n-shot"] = {"gsm8k": fewshot}
    p = folder / name
    p.write_text(json.dumps(r))
    return name


GREEDY = {"until": ["Question:"], "do_sample": False, "temperature": 0.0, "max_gen_toks": 256}
SAMPLED = {"until": ["Question:"], "do_sample": True, "temperature": 0.7, "max_gen_toks": 256}


def claim(tmp_path, base: str, treat: str, **extra) -> object:
    c = {"claim": {"title": "the new model beats the old on GSM8K", "metric": "exact_match",
                   "settings": {"max_tokens": 256, "scoring": "strict-match"}, "treatment_changes": ["model"],
                   **extra},
         "samples": {"format": "lm-eval-results", "baseline": {256: f"runs/{base}"},
                     "treatment": {256: f"runs/{treat}"}}}
    (tmp_path / "claim.yaml").write_text(yaml.safe_dump(c))
    return load_claim(tmp_path / "claim.yaml")


def test_counts_come_from_the_results_and_a_greedy_vs_sampled_difference_is_flagged(tmp_path):
    b = results(tmp_path / "runs", "results_2026-01-01T00-00-00.000000.json", 530 / 1319, 1319, GREEDY)
    t = results(tmp_path / "runs", "results_2026-01-02T00-00-00.000000.json", 610 / 1319, 1319, SAMPLED)
    c = claim(tmp_path, b, t)
    rep = c.claim.reported
    assert (rep.baseline.passes, rep.baseline.n, rep.treatment.passes, rep.treatment.n) == (530, 1319, 610, 1319)
    assert c.samples is None and c.results_only["baseline"]["filter"] == "strict-match"
    findings = verify(c).findings
    (sig,) = [f for f in findings if f.check == "significance" and f.code == "reproduced"]
    assert "mn-score" in sig.title and f"{80 / 1319:+.3f}" in sig.title  # unpaired, from the counts
    read = [f for f in findings if f.check == "results_config" and f.code == "read"]
    assert read and "530/1319" in read[0].title and "610/1319" in read[0].title
    diffs = {f.statistic["setting"]: f for f in findings
             if f.check == "results_config" and f.code == "undeclared_difference"}
    assert {"do_sample", "temperature"} <= set(diffs)
    assert diffs["temperature"].severity == "critical" and diffs["temperature"].impact == "fragile"


def test_a_rate_that_is_no_share_of_n_and_reported_rates_beside_the_results_are_refused(tmp_path):
    b = results(tmp_path / "runs", "results_a.json", 0.4001234, 1319, GREEDY)
    t = results(tmp_path / "runs", "results_b.json", 610 / 1319, 1319, GREEDY)
    with pytest.raises(InputError, match="is not a share of the 1319 documents"):
        claim(tmp_path, b, t)
    b = results(tmp_path / "runs", "results_a.json", 530 / 1319, 1319, GREEDY)
    with pytest.raises(InputError, match="claim.reported.baseline is read from the results file"):
        claim(tmp_path, b, t, reported={"baseline": 0.4})


def test_the_filter_must_be_named_when_the_results_publish_several(tmp_path):
    b = results(tmp_path / "runs", "results_a.json", 530 / 1319, 1319, GREEDY)
    t = results(tmp_path / "runs", "results_b.json", 610 / 1319, 1319, GREEDY)
    c = {"claim": {"title": "t", "metric": "exact_match", "settings": {"max_tokens": 256}},
         "samples": {"format": "lm-eval-results", "baseline": {256: f"runs/{b}"}, "treatment": {256: f"runs/{t}"}}}
    (tmp_path / "claim.yaml").write_text(yaml.safe_dump(c))
    with pytest.raises(InputError, match="under 2 filters"):
        load_claim(tmp_path / "claim.yaml")
