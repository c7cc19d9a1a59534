"""Every sample-format example of the README, as written: the YAML blocks of "The claim file" (lm-eval samples) and
"Sample formats" are taken from README.md itself and read against small logs of the shape each names (only file
contents are made up here, never the claim text)."""
from __future__ import annotations

import json
import re
import shutil
import zipfile

import pytest
import yaml

from audit.claim import load_claim
from audit.importers import load_records
from conftest import REPO, lmeval_results, write_jsonl, write_lmeval_run

README = (REPO / "README.md").read_text(encoding="utf-8")


def blocks(lang: str, section: str, until: str) -> list[str]:
    part = README[README.index(section):README.index(until, README.index(section) + len(section))]
    return re.findall(rf"```{lang}\n(.*?)```", part, flags=re.S)


def sample_blocks() -> list[dict]:
    return [yaml.safe_load(b) for b in blocks("yaml", "### Sample formats", "### Scorers")
            if b.lstrip().startswith("samples:")]


def by_format(fmt: str, where: str = "") -> dict:
    found = [b for b in sample_blocks() if b["samples"]["format"] == fmt and where in json.dumps(b)]
    assert len(found) == 1, f"README has {len(found)} {fmt} example(s) matching {where!r}"
    return found[0]


def write_claim(tmp_path, samples: dict, head: dict) -> object:
    (tmp_path / "claim.yaml").write_text(yaml.safe_dump({"claim": {"title": "readme", **head}, **samples,
                                                         "options": {"resamples": 1000}}, sort_keys=False))
    return load_claim(tmp_path / "claim.yaml")


def test_the_lmeval_example_of_the_claim_file(tmp_path):
    (main_block,) = [b for b in blocks("yaml", "Replay mode", "Live mode") if "samples:" in b]
    samples = yaml.safe_load(main_block)["samples"]
    samples.pop("variants")  # written with "..." placeholders: shown, not runnable
    for arm, run in (("baseline", "base"), ("treatment", "treat")):
        for budget in samples[arm]:
            write_lmeval_run(tmp_path / "runs" / f"{run}_{budget}", "add", budget, ["1", "2", "3"],
                             {"strict-match": [1, 0, 1], "flexible-extract": [1, 1, 1]})
    rec = load_records(write_claim(tmp_path, {"samples": samples},
                                   {"settings": {"max_tokens": 16, "scoring": "strict-match"}}))
    assert rec.budgets() == [16, 64] and rec.paired("strict-match", 16).n == 3


def test_the_generic_jsonl_line():
    (line,) = blocks("json", "**jsonl** (generic)", "**json, csv")
    d = json.loads(line)
    assert {"id", "output", "target", "finish_reason", "completion_tokens", "scores"} <= set(d)


def test_the_generic_jsonl_line_reads(tmp_path):
    (line,) = blocks("json", "**jsonl** (generic)", "**json, csv")
    d = json.loads(line)
    write_jsonl(tmp_path / "b.jsonl", [d, {**d, "id": "q18"}])
    write_jsonl(tmp_path / "t.jsonl", [d, {**d, "id": "q18"}])
    c = write_claim(tmp_path, {"samples": {"format": "jsonl", "baseline": {512: "b.jsonl"}, "treatment": {512: "t.jsonl"}},
                               "perturbations": {"scorings": ["strict-match", "last-number"]}},
                    {"settings": {"max_tokens": 512}})
    rec = load_records(c)
    assert list(rec.paired("last-number", 512).baseline) == [1.0, 1.0]


def test_the_mmlu_pro_json_example(tmp_path):
    samples = by_format("json")
    recs = [{"question_id": i, "question": f"q{i}", "answer": "B", "pred": "B",
             "generated_text": f"... the answer is ({'B' if i % 2 else 'C'})"} for i in range(4)]
    for arm in ("baseline", "treatment"):
        (name,) = samples["samples"][arm].values()
        with zipfile.ZipFile(tmp_path / name, "w") as zf:
            zf.writestr(name.replace(".zip", ".json"), json.dumps(recs))
    c = write_claim(tmp_path, {**samples, "scorers": {"answer-is": {"regex": r"answer is \(?([A-J])\)?"}}},
                    {"settings": {"max_tokens": 2048, "scoring": "answer-is"}})
    assert list(load_records(c).paired("answer-is", 2048).baseline) == [0.0, 1.0, 0.0, 1.0]


def test_the_gsm8k_example_rescoring_has_a_real_target(tmp_path):
    """OpenAI's GSM8K solutions: ground_truth is a worked solution ending in '#### N'; the README's target rule makes
    it N, so re-scoring is not 0 on every item."""
    samples = by_format("jsonl", "ground_truth")
    assert samples["samples"]["target_regex"]

    def sol(ans: int, ok: bool) -> dict:
        return {"is_correct": ok, "solution": f"so it is {ans if ok else ans + 1}\n#### {ans if ok else ans + 1}"}

    rows = [{"question": f"question {i}", "ground_truth": f"{i} + {i} = <<{i}+{i}={2 * i}>>{2 * i}\n#### {2 * i}",
             "175b_finetuning": sol(2 * i, i % 2 == 0), "6b_verification": sol(2 * i, i % 3 != 1),
             "6b_finetuning": sol(2 * i, False), "175b_verification": sol(2 * i, True)} for i in range(6)]
    (name,) = samples["samples"]["baseline"].values()
    write_jsonl(tmp_path / name, rows)
    c = write_claim(tmp_path, {**samples, "perturbations": {"scorings": ["correct", "last-number"]}},
                    {"settings": {"max_tokens": 256, "scoring": "correct"}})
    rec = load_records(c)
    p = rec.paired("last-number", 256)
    assert list(p.frame["item_id"]) == sorted(f"question {i}" for i in range(6))
    assert list(p.baseline) == list(rec.paired("correct", 256).baseline)  # re-scoring agrees with is_correct
    assert p.baseline.sum() == 3 and p.treatment.sum() == 4


def test_the_inspect_example(tmp_path):
    pytest.importorskip("inspect_ai")
    samples = by_format("inspect")
    src = REPO / "fixtures" / "logs" / "inspect"
    for arm, run in (("baseline", "add_verify"), ("treatment", "add_direct")):
        for budget, pattern in samples["samples"][arm].items():
            folder = tmp_path / pattern.rsplit("/", 1)[0]
            folder.mkdir(parents=True, exist_ok=True)
            (log,) = sorted((src / f"{run}_{budget}").glob("*.eval"))
            if pattern.endswith(".json"):
                from inspect_ai.log import read_eval_log, write_eval_log

                write_eval_log(read_eval_log(str(log)), str(folder / (log.stem + ".json")))
            else:
                shutil.copy(log, folder / log.name)
    rec = load_records(write_claim(tmp_path, samples, {"settings": {"max_tokens": 32, "scoring": "pattern"}}))
    assert rec.budgets() == [32, 64] and rec.paired("pattern", 64).n == 20


def test_the_results_only_example(tmp_path):
    samples = by_format("lm-eval-results")
    for arm, value in (("baseline", 500 / 1319), ("treatment", 560 / 1319)):
        (path,) = samples["samples"][arm].values()
        r = lmeval_results("gsm8k", 256, ["strict-match"])
        r["results"]["gsm8k"] = {"exact_match,strict-match": value}
        r["n-samples"] = {"gsm8k": {"original": 1319, "effective": 1319}}
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(json.dumps(r))
    c = write_claim(tmp_path, samples, {"metric": "exact_match", "settings": {"max_tokens": 256}})
    assert (c.claim.reported.baseline.passes, c.claim.reported.treatment.passes) == (500, 560)
