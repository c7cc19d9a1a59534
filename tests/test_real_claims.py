"""The fixture claims over real third-party outputs (../shared/data beside the repository), read as published: the
authors' own numbers recomputed from their files with the claim language alone. Skipped where the data is absent."""
from __future__ import annotations

import numpy as np
import pytest

from audit.claim import load_claim
from audit.importers import load_records
from conftest import REPO

DATA = REPO.parent / "shared" / "data"
CLAIMS = REPO / "fixtures" / "claims"

needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data (real third-party outputs) is absent")


def counts(rec, scoring: str, budget: int, arm: str) -> tuple[int, int, int]:
    """(correct, no answer, items) of one arm on all its own items."""
    f = rec.arm_scores(arm, scoring, budget)
    return int(f["score"].sum()), int((f["answered"] == 0).sum()), len(f)


@needs_data
def test_zeroeval_8b_vs_70b_reproduces_the_leaderboard_exactly():
    rec = load_records(load_claim(CLAIMS / "zeroeval_mathl5_8b_vs_70b.yaml"))
    # math-l5.summary.md: 8B 22.19, no answer 19.42 %; 70B 43.13, no answer 12.21 %; Total 721
    assert counts(rec, "zeroeval", 4096, "baseline") == (160, 140, 721)  # 160/721 = 22.19 %, 140/721 = 19.42 %
    assert counts(rec, "zeroeval", 4096, "treatment") == (311, 88, 721)  # 311/721 = 43.13 %, 88/721 = 12.21 %
    assert not rec.item_sets


@needs_data
def test_zeroeval_local_vs_api_pairs_the_shared_items_and_names_the_rest():
    rec = load_records(load_claim(CLAIMS / "zeroeval_mathl5_70b_local_vs_api.yaml"))
    assert counts(rec, "zeroeval", 4096, "baseline") == (152, 52, 425)  # Hyperbolic: 35.76, no answer 12.24 %
    assert counts(rec, "zeroeval", 4096, "treatment") == (311, 88, 721)  # vLLM: 43.13
    (s,) = rec.item_sets
    assert (s.shared, len(s.only_baseline), len(s.only_treatment)) == (425, 0, 296)
    assert s.only_treatment == tuple(str(i) for i in range(425, 721))
    assert rec.paired("zeroeval", 4096).n == 425


@needs_data
def test_reflexion_and_alpacaeval_read_the_logged_scores():
    rec = load_records(load_claim(CLAIMS / "reflexion_mbpp.yaml"))
    p = rec.paired("is_solved", 1024)
    assert (p.n, int(p.baseline.sum()), int(p.treatment.sum())) == (397, 318, 306)  # 80.1 % vs 77.1 %
    rec = load_records(load_claim(CLAIMS / "alpacaeval2_concise.yaml"))
    p = rec.paired("win", 2048)
    # leaderboard CSV win_rate: claude-2.1_concise 9.22712524063354, claude-2.1 15.733506736409938
    assert p.n == 805 and np.isclose(p.baseline.mean() * 100, 9.22712524063354, atol=1e-9)
    assert np.isclose(p.treatment.mean() * 100, 15.733506736409938, atol=1e-9)
    assert not p.binary


@needs_data
def test_the_mmlu_pro_authors_logged_predictions_reproduce_their_accuracy(tmp_path):
    zips = DATA / "mmlu_pro_mistral"
    claim = tmp_path / "claim.yaml"
    claim.write_text(f"""claim: {{title: t, metric: accuracy, settings: {{max_tokens: 2048, scoring: pred}}}}
samples:
  format: json
  fields: {{id: question_id, output: generated_text, target: answer, extracted: pred}}
  baseline:  {{2048: {zips}/model_outputs_Mistral-7B-v0.1_5shots.zip}}
  treatment: {{2048: {zips}/model_outputs_Mistral-7B-Instruct-v0.1_5shots.zip}}
scorers:
  pred: {{kind: logged, field: extracted, compare: exact}}
""")
    rec = load_records(load_claim(claim))
    for arm, (correct, null) in {"baseline": (3582, 1251), "treatment": (2906, 1865)}.items():
        f = rec.arm_scores(arm, "pred", 2048)
        assert (int(f["score"].sum()), int((f["answered"] == 0).sum()), len(f)) == (correct, null, 12032)
        answered = f[f["answered"] == 1]
        # the accuracy of the authors' stored pred over the items where it is not null, exactly
        assert answered["score"].mean() == correct / (12032 - null)
