"""Live runs from lm-eval task YAMLs: the prompts are byte-identical to the ones lm-eval logged."""
from __future__ import annotations

import json

import pytest

from audit.generation.cache import GenerationCache
from audit.claim import load_claim
from audit.verify import verify
from conftest import FIXTURES, require_live

pytestmark = pytest.mark.live


def logged_prompt_hashes(task: str, budget: int) -> dict[str, str]:
    (f,) = (FIXTURES / f"logs/{task}_{budget}").glob("samples_*.jsonl")
    out = {}
    for line in f.read_text().splitlines():
        d = json.loads(line)
        out[str(d["doc_id"])] = d["prompt_hash"]
    return out


def test_lm_eval_task_claim_runs_with_lm_evals_own_prompts(tmp_path):
    require_live()
    pytest.importorskip("lm_eval")
    claim = load_claim(FIXTURES / "claims/lmeval_task.yaml")
    claim = claim.model_copy(update={"task": claim.task.model_copy(update={"limit": 4})})
    out = verify(claim, cache=GenerationCache(tmp_path / "cache.sqlite"))
    t = out.records.table
    for arm, task in (("baseline", "add_verify"), ("treatment", "add_direct")):
        ours = t[(t["arm"] == arm) & (t["budget"] == 32) & (t["scoring"] == "strict-match")]
        logged = logged_prompt_hashes(task, 32)
        assert {i: logged[i] for i in ours["item_id"]} == dict(zip(ours["item_id"], ours["prompt_hash"]))
        assert out.records.settings[arm][32]["lm_eval_task"] == task
    assert {c.scoring for c in out.report.cells} == {"strict-match", "flexible-extract"}
    assert {c.budget for c in out.report.cells} == {32, 64}
