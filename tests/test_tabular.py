"""Tabular exports by field mapping (audit/importers/tabular.py): JSON, JSON lines, CSV, Parquet, .gz and .zip."""
from __future__ import annotations

import gzip
import json
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from audit.claim import load_claim
from audit.errors import InputError
from audit.importers import load_records

ROOT = Path(__file__).resolve().parents[1]
MMLU = ROOT.parent / "shared" / "data" / "mmlu_pro_mistral"
MMLU_CLAIM = ROOT / "fixtures" / "claims" / "mmlu_pro_mistral.yaml"


def _claim(tmp_path: Path, samples: str, extra: str = "") -> Path:
    p = tmp_path / "claim.yaml"
    p.write_text("claim:\n  title: t\n  settings: {max_tokens: 256}\n" + samples + extra)
    return p


GSM_LINES = [
    {"question": f"q{i}", "ground_truth": str(i),
     "175b_finetuning": {"is_correct": i % 3 == 0, "solution": f"answer {i}"},
     "6b_verification": {"is_correct": i % 2 == 0, "solution": f"so {i}"}, "note": "metadata"}
    for i in range(12)
]


def test_side_by_side_jsonl_example_as_written(tmp_path):
    (tmp_path / "solutions.jsonl").write_text("".join(json.dumps(d) + "\n" for d in GSM_LINES))
    path = _claim(tmp_path, """samples:
  format: jsonl
  fields:
    id: question
    target: ground_truth
    output: {baseline: 175b_finetuning.solution, treatment: 6b_verification.solution}
    scores.correct: {baseline: 175b_finetuning.is_correct, treatment: 6b_verification.is_correct}
  baseline:  {256: solutions.jsonl}
  treatment: {256: solutions.jsonl}
""")
    rec = load_records(load_claim(path))
    p = rec.paired("correct", 256)
    assert p.n == 12
    assert list(p.baseline) == [float(int(i[1:]) % 3 == 0) for i in p.item_ids]  # booleans are scores, true = 1
    assert list(p.treatment) == [float(int(i[1:]) % 2 == 0) for i in p.item_ids]
    assert set(p.frame["text_b"]) == {f"answer {i}" for i in range(12)}
    assert set(p.frame["text_t"]) == {f"so {i}" for i in range(12)}


def _json_records(n=6, **over):
    return [{"question_id": i, "generated_text": 'AB'[i % 2], "answer": "A",
             "question": f"Q{i}", "pred": "AB"[i % 2], "category": "math", **over} for i in range(n)]


JSON_SAMPLES = """samples:
  format: {fmt}
  fields: {{id: question_id, output: generated_text, target: answer, prompt: question}}
  baseline:  {{256: {b}}}
  treatment: {{256: {t}}}
perturbations: {{scorings: [exact]}}
"""


@pytest.mark.parametrize("shape", ["array", "object", "zip", "gz"])
def test_json_array_object_zip_gz(tmp_path, shape):
    recs = _json_records()
    doc = recs if shape != "object" else {"meta": {"v": 1}, "rows": recs}
    raw = json.dumps(doc).encode()
    for arm in ("b", "t"):
        if shape == "zip":
            with zipfile.ZipFile(tmp_path / f"{arm}.zip", "w") as zf:
                zf.writestr(f"{arm}.json", raw)
        elif shape == "gz":
            (tmp_path / f"{arm}.json.gz").write_bytes(gzip.compress(raw))
        else:
            (tmp_path / f"{arm}.json").write_bytes(raw)
    name = {"zip": "{}.zip", "gz": "{}.json.gz"}.get(shape, "{}.json")
    path = _claim(tmp_path, JSON_SAMPLES.format(fmt="json", b=name.format("b"), t=name.format("t")))
    rec = load_records(load_claim(path))
    p = rec.paired("exact", 256)
    assert p.n == 6 and list(p.baseline) == [1.0, 0.0] * 3


def test_csv_and_parquet(tmp_path):
    df = pd.DataFrame({"qid": ["a", "b", "c"], "out": ["1", "2", "x"], "gold": ["1", "3", "x"],
                       "ok": ["true", "False", "1"], "toks": ["5", "7", "9"]})
    df.to_csv(tmp_path / "b.csv", index=False)
    df.to_parquet(tmp_path / "t.parquet")
    fields = "  fields: {id: qid, output: out, target: gold, completion_tokens: toks, scores.ok: ok}\n"
    for fmt, f in (("csv", "b.csv"), ("parquet", "t.parquet")):
        path = _claim(tmp_path, f"samples:\n  format: {fmt}\n" + fields
                      + f"  baseline: {{256: {f}}}\n  treatment: {{256: {f}}}\n")
        if fmt == "parquet":  # parquet keeps the column types: strings stay strings, so the score column is refused
            with pytest.raises(InputError) as err:
                load_records(load_claim(path))
            assert "must be a number, not a string" in str(err.value) and "record 1" in str(err.value)
            continue
        rec = load_records(load_claim(path))
        p = rec.paired("ok", 256)
        assert list(p.baseline) == [1.0, 0.0, 1.0]
        assert list(p.frame["tokens_b"]) == [5, 7, 9]
    typed = pd.DataFrame({"qid": [1, 2], "out": ["a", "b"], "gold": ["a", "c"], "ok": [True, False]})
    typed.to_parquet(tmp_path / "typed.parquet")
    path = _claim(tmp_path, "samples:\n  format: parquet\n  fields: {id: qid, output: out, target: gold, "
                            "scores.ok: ok}\n  baseline: {256: typed.parquet}\n  treatment: {256: typed.parquet}\n")
    assert list(load_records(load_claim(path)).paired("ok", 256).baseline) == [1.0, 0.0]


def test_problems_name_file_record_user_key_and_did_you_mean(tmp_path):
    recs = _json_records(4)
    recs[2]["generated_text"] = None  # a null output is no output (recorded with its cause), not an error
    recs[3]["answer"] = ["A"]
    (tmp_path / "b.json").write_text(json.dumps(recs))
    (tmp_path / "t.json").write_text(json.dumps(_json_records(4)))
    path = _claim(tmp_path, """samples:
  format: json
  fields: {id: question_ids, output: generated_text, target: answer}
  baseline:  {256: b.json}
  treatment: {256: t.json}
""")
    with pytest.raises(InputError) as err:
        load_records(load_claim(path))
    text = str(err.value)
    assert "b.json, record 1: question_ids: required key 'question_ids' is missing (samples.fields.id)" in text
    assert "did you mean 'question_id'?" in text
    path.write_text(path.read_text().replace("question_ids", "question_id"))
    with pytest.raises(InputError) as err:
        load_records(load_claim(path))
    text = str(err.value)
    assert "record 3" not in text
    assert "b.json, record 4: answer: must be a string" in text
    assert "t.json" not in text  # unknown keys (pred, category, question) are metadata, never errors


def test_unknown_generic_key_and_lmeval_fields_refused(tmp_path):
    path = _claim(tmp_path, "samples:\n  format: json\n  fields: {outptu: x}\n  baseline: {256: b.json}\n"
                            "  treatment: {256: b.json}\n")
    with pytest.raises(InputError) as err:
        load_claim(path)
    assert "did you mean 'output'" in str(err.value)
    path = _claim(tmp_path, "samples:\n  fields: {output: x}\n  baseline: {256: b.json}\n  treatment: {256: b.json}\n")
    with pytest.raises(InputError) as err:
        load_claim(path)
    assert "samples.format" in str(err.value)


def test_zip_with_two_files_is_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "b.zip", "w") as zf:
        zf.writestr("a.json", "[]")
        zf.writestr("b.json", "[]")
    path = _claim(tmp_path, JSON_SAMPLES.format(fmt="json", b="b.zip", t="b.zip"))
    with pytest.raises(InputError) as err:
        load_records(load_claim(path))
    assert "the zip holds 2 files" in str(err.value)


# --- the real MMLU-Pro exports ------------------------------------------------------------------------------

needs_mmlu = pytest.mark.skipif(not MMLU.exists(), reason="../shared/data/mmlu_pro_mistral is not beside the repo")


def _published(name: str) -> list[dict]:
    with zipfile.ZipFile(MMLU / name) as zf:
        return json.loads(zf.read(zf.namelist()[0]))


@needs_mmlu
def test_mmlu_pro_mistral_claim_is_not_reproduced_with_independent_no_answer_rates():
    from audit.verify import verify

    t0 = time.perf_counter()
    out = verify(load_claim(MMLU_CLAIM))
    elapsed = time.perf_counter() - t0
    assert out.report.verdict == "not_reproduced"
    rates = next(f for f in out.findings if f.check == "extraction" and f.code == "rates").rows
    got = {r["arm"]: (r["no_answer"], r["known"]) for r in rates if r["scoring"] == "answer-is"}
    for arm, name in (("baseline", "model_outputs_Mistral-7B-v0.1_5shots.zip"),
                      ("treatment", "model_outputs_Mistral-7B-Instruct-v0.1_5shots.zip")):
        data = _published(name)
        assert got[arm] == (sum(d["pred"] is None for d in data), len(data))
    assert got["baseline"] == (1251, 12032) and got["treatment"] == (1865, 12032)
    sig = next(f for f in out.findings if f.check == "significance" and f.outcome == "flag")
    assert sig.code == "reversed"
    assert elapsed < 30  # the 10 s target is measured on an idle machine (see the README); this guards regressions
