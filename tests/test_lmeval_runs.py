"""lm-eval: each samples file pairs with the results file of its own run (the shared timestamp suffix), and a folder
where that cannot be told is refused naming the candidates."""
from __future__ import annotations

import json

import pytest
import yaml

from audit.claim import load_claim
from audit.errors import InputError
from audit.importers import load_records
from audit.verify import verify
from conftest import lmeval_lines, lmeval_results, write_jsonl

BASE, TREAT = "2026-11-21T05-00-00.000000", "2026-11-21T06-30-00.000000"


def two_runs(folder, treat_results_date: str = TREAT) -> None:
    """The base and the instruct model's runs of one task, written by lm-eval into one output folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for date, res_date, model, vals in ((BASE, BASE, "base", [1, 0, 0, 1]),
                                        (TREAT, treat_results_date, "instruct", [1, 1, 1, 1])):
        lines = lmeval_lines(["1", "2", "3", "4"], {"strict-match": vals}, 16)
        write_jsonl(folder / f"samples_add_{date}.jsonl", lines)
        res = lmeval_results("add", 16, ["strict-match"])
        res["config"]["model_args"] = f"pretrained=org/{model},dtype=bfloat16"
        res["results"]["add"] = {"exact_match,strict-match": sum(vals) / 4}
        res["n-samples"] = {"add": {"original": 4, "effective": 4}}
        (folder / f"results_{res_date}.json").write_text(json.dumps(res))


def claim(tmp_path) -> object:
    c = {"claim": {"title": "instruct beats base", "settings": {"max_tokens": 16, "scoring": "strict-match"},
                   "treatment_changes": ["model"]},
         "samples": {"format": "lm-eval", "baseline": {16: f"out/samples_add_{BASE}.jsonl"},
                     "treatment": {16: f"out/samples_add_{TREAT}.jsonl"}},
         "options": {"resamples": 1000}}
    (tmp_path / "claim.yaml").write_text(yaml.safe_dump(c))
    return load_claim(tmp_path / "claim.yaml")


def test_two_runs_in_one_folder_pair_each_arm_with_its_own_results(tmp_path):
    two_runs(tmp_path / "out")
    c = claim(tmp_path)
    rec = load_records(c)
    b, t = rec.settings["baseline"][16], rec.settings["treatment"][16]
    assert b["results_file"].endswith(f"results_{BASE}.json") and t["results_file"].endswith(f"results_{TREAT}.json")
    assert b["model_args"] == "pretrained=org/base,dtype=bfloat16"
    assert t["model_args"] == "pretrained=org/instruct,dtype=bfloat16"
    findings = verify(c, records=rec).findings
    (integrity,) = [f for f in findings if f.check == "log_integrity"]
    assert integrity.code == "samples_support_results", integrity.title  # each against its own run's numbers
    assert not [f for f in findings if f.check == "settings" and f.outcome == "flag"]


def test_a_folder_whose_results_match_no_samples_is_refused_naming_the_candidates(tmp_path):
    two_runs(tmp_path / "out", treat_results_date="2026-11-22T00-00-00.000000")
    with pytest.raises(InputError) as err:
        load_records(claim(tmp_path))
    (prob,) = err.value.problems
    assert f"cannot tell which results file belongs to samples_add_{TREAT}.jsonl" in prob.message
    assert f"results_{BASE}.json" in prob.message and "results_2026-11-22T00-00-00.000000.json" in prob.message
    assert "its own folder" in prob.fix
