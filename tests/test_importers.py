"""Importers: lm-eval samples and generic JSONL into Records, and every way input can be bad."""
from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner

from audit.claim import load_claim
from audit.cli import main
from audit.errors import InputError
from audit.importers import load_records
from conftest import arm_rows, jsonl_claim, write_lmeval_run

TEXTS = ["1", "the answer is 2", "x", "5"]


def lmeval_claim(tmp_path, scorings=("strict-match", "flexible-extract"), **kw) -> dict:
    c = {"claim": {"title": "t", "settings": {"max_tokens": 16}},
         "samples": {"format": "lm-eval",
                     "baseline": {16: "runs/b16/samples_*.jsonl", 64: "runs/b64/samples_*.jsonl"},
                     "treatment": {16: "runs/t16/samples_*.jsonl", 64: "runs/t64/samples_*.jsonl"}},
         "perturbations": {"scorings": list(scorings)}}
    c.update(kw)
    p = tmp_path / "claim.yaml"
    p.write_text(yaml.safe_dump(c))
    return p


def make_runs(tmp_path, with_filter_key=True, t_prompt="T", b_version=1.0, t64_budget=64):
    sc = {"strict-match": [1, 1, 0, 0], "flexible-extract": [1, 1, 0, 1]}
    write_lmeval_run(tmp_path / "runs/b16", "add_direct", 16, TEXTS, sc, "B", with_filter_key, b_version)
    write_lmeval_run(tmp_path / "runs/b64", "add_direct", 64, TEXTS, sc, "B", with_filter_key, b_version)
    write_lmeval_run(tmp_path / "runs/t16", "add_verify", 16, TEXTS, sc, t_prompt, with_filter_key)
    write_lmeval_run(tmp_path / "runs/t64", "add_verify", t64_budget, TEXTS, sc, t_prompt, with_filter_key)


@pytest.mark.parametrize("with_filter_key", [True, False])
def test_lmeval_rows_per_filter(tmp_path, with_filter_key):
    """Before v0.4.7 lines carry no 'filter': the k-th line of a document is the k-th filter of filter_list."""
    make_runs(tmp_path, with_filter_key=with_filter_key)
    rec = load_records(load_claim(lmeval_claim(tmp_path)))
    t = rec.table
    assert len(t) == 2 * 2 * 2 * 4  # arms × budgets × filters × docs
    assert rec.scorings() == ["strict-match", "flexible-extract"]
    p = rec.paired("flexible-extract", 16)
    assert list(p.baseline) == [1, 1, 0, 1]
    assert list(p.frame["text_t"]) == TEXTS
    assert rec.settings["baseline"][16]["filter_list"] == ["strict-match", "flexible-extract"]
    assert "SECRET" not in str(rec.settings)


def test_builtin_scoring_rescore_from_raw_text(tmp_path):
    make_runs(tmp_path)
    rec = load_records(load_claim(lmeval_claim(tmp_path, scorings=("strict-match", "last-number"))))
    p = rec.paired("last-number", 16)
    # targets are i+1 for doc i; the last number of each output against it
    assert list(p.baseline) == [1.0, 1.0, 0.0, 0.0]
    assert p.frame["text_b"].tolist() == TEXTS


def test_prompt_hash_differs_across_budgets_refused(tmp_path):
    make_runs(tmp_path)
    sc = {"strict-match": [1, 1, 0, 0], "flexible-extract": [1, 1, 0, 1]}
    write_lmeval_run(tmp_path / "runs/t64", "add_verify", 64, TEXTS, sc, "OTHER PROMPT")
    with pytest.raises(InputError) as exc:
        load_records(load_claim(lmeval_claim(tmp_path)))
    msg = str(exc.value)
    assert "did not use the same prompt" in msg and "t64" in msg


def test_log_filed_under_wrong_budget(tmp_path):
    make_runs(tmp_path, t64_budget=128)
    with pytest.raises(InputError) as exc:
        load_records(load_claim(lmeval_claim(tmp_path)))
    assert "generated with max_gen_toks=[128]" in str(exc.value)


def test_truncated_lmeval_log_names_file_and_line(tmp_path):
    make_runs(tmp_path)
    f = next((tmp_path / "runs/t16").glob("samples_*.jsonl"))
    text = f.read_text()
    f.write_text(text[: len(text) - 40])  # cut the last line mid-object
    with pytest.raises(InputError) as exc:
        load_records(load_claim(lmeval_claim(tmp_path)))
    (prob,) = exc.value.problems
    assert prob.file == str(f) and prob.line == 8
    assert "interrupted" in prob.fix


def test_unknown_scoring_did_you_mean(tmp_path):
    make_runs(tmp_path)
    with pytest.raises(InputError) as exc:
        load_records(load_claim(lmeval_claim(tmp_path, scorings=("strict-match", "flexible-extrct"))))
    (prob,) = exc.value.problems
    assert "did you mean 'flexible-extract'" in prob.fix


def test_metric_missing(tmp_path):
    make_runs(tmp_path)
    p = lmeval_claim(tmp_path)
    c = yaml.safe_load(p.read_text())
    c["claim"]["metric"] = "acc"
    p.write_text(yaml.safe_dump(c))
    with pytest.raises(InputError) as exc:
        load_records(load_claim(p))
    assert "set claim.metric to one of ['exact_match']" in str(exc.value)


def test_jsonl_non_json_line_in_middle(claim_dir):
    rows = arm_rows([1, 0, 1])
    p = claim_dir(jsonl_claim([16], 16), {"logs/base_16.jsonl": rows, "logs/treat_16.jsonl": rows})
    f = p.parent / "logs/treat_16.jsonl"
    lines = f.read_text().splitlines(keepends=True)
    lines[1] = "{not json\n"
    f.write_text("".join(lines))
    with pytest.raises(InputError) as exc:
        load_records(load_claim(p))
    (prob,) = exc.value.problems
    assert (prob.file, prob.line) == (str(f), 2)
    assert "one JSON object" in prob.fix


def test_arms_with_different_items_pair_on_the_shared_ones(claim_dir):
    base = arm_rows([1, 0, 1, 1])
    treat = arm_rows([1, 0, 1])
    p = claim_dir(jsonl_claim([16], 16), {"logs/base_16.jsonl": base, "logs/treat_16.jsonl": treat})
    rec = load_records(load_claim(p))
    (s,) = rec.item_sets
    assert (s.shared, s.only_baseline, s.only_treatment) == (3, ("q0003",), ())
    assert s.baseline_file.endswith("base_16.jsonl") and s.treatment_file.endswith("treat_16.jsonl")
    assert rec.paired("exact", 16).n == 3


def test_arms_sharing_fewer_than_two_items_are_refused(claim_dir):
    base = arm_rows([1, 0, 1, 1])
    treat = [dict(r, id=f"other{i}") for i, r in enumerate(arm_rows([1, 0, 1]))]
    treat[0]["id"] = "q0000"
    p = claim_dir(jsonl_claim([16], 16), {"logs/base_16.jsonl": base, "logs/treat_16.jsonl": treat})
    with pytest.raises(InputError) as exc:
        load_records(load_claim(p))
    msg = str(exc.value)
    assert "the arms share 1 item(s) at budget 16" in msg and "'q0003'" in msg
    assert "base_16.jsonl vs" in msg and "treat_16.jsonl" in msg


def test_duplicate_item_ids(claim_dir):
    rows = arm_rows([1, 0])
    dup = rows + [dict(rows[0])]
    p = claim_dir(jsonl_claim([16], 16), {"logs/base_16.jsonl": dup, "logs/treat_16.jsonl": rows})
    with pytest.raises(InputError) as exc:
        load_records(load_claim(p))
    assert "appears more than once" in str(exc.value)


def test_jsonl_missing_required_key(claim_dir):
    rows = arm_rows([1, 0])
    bad = [dict(rows[0]), {"id": "q0001", "target": "1"}]
    p = claim_dir(jsonl_claim([16], 16), {"logs/base_16.jsonl": rows, "logs/treat_16.jsonl": bad})
    with pytest.raises(InputError) as exc:
        load_records(load_claim(p))
    (prob,) = exc.value.problems
    assert prob.line == 2 and "output" in prob.message


def test_jsonl_scores_and_finish_reason(claim_dir):
    rows = arm_rows([1, 0], finish=["length", "stop"], scores={"judge": [0.5, 1.0]})
    p = claim_dir(jsonl_claim([16], 16, scorings=["judge", "exact"]),
                  {"logs/base_16.jsonl": rows, "logs/treat_16.jsonl": rows})
    rec = load_records(load_claim(p))
    assert list(rec.paired("judge", 16).baseline) == [0.5, 1.0]
    assert list(rec.paired("exact", 16).baseline) == [1.0, 0.0]
    assert list(rec.paired("judge", 16).frame["finish_b"]) == ["length", "stop"]


@pytest.mark.parametrize("case", ["truncated", "ids", "syntax", "unknown_key", "missing_file"])
def test_cli_malformed_input_exits_2(claim_dir, case):
    rows = arm_rows([1, 0, 1])
    logs = {"logs/base_16.jsonl": rows, "logs/treat_16.jsonl": rows}
    if case == "ids":
        logs["logs/treat_16.jsonl"] = [dict(r, id=f"x{i}") for i, r in enumerate(arm_rows([1, 0]))]
    c = jsonl_claim([16], 16)
    if case == "unknown_key":
        c["claim"]["titel"] = "x"
    if case == "missing_file":
        c["samples"]["baseline"][16] = "logs/missing.jsonl"
    p = claim_dir(c, logs)
    if case == "truncated":
        f = p.parent / "logs/base_16.jsonl"
        f.write_text(f.read_text()[:-10])
    if case == "syntax":
        p.write_text(p.read_text().replace("claim:", "claim: [", 1))
    res = CliRunner().invoke(main, ["verify", str(p)])
    assert res.exit_code == 2, res.output
    assert res.output.startswith("error: ")
    expected = {"truncated": ("base_16.jsonl:3", "interrupted"), "ids": ("the arms share 0 item(s)", "same dataset"),
                "syntax": (f"{p}:", "YAML syntax error"), "unknown_key": ("claim.titel: unknown key", "did you mean 'title'"),
                "missing_file": ("samples.baseline.16", "check the path")}[case]
    for text in expected:
        assert text in res.output


def test_jsonl_misspelt_key_is_caught_but_metadata_is_fine(claim_dir):
    rows = arm_rows([1, 0])
    typo = [dict(r, finish_reson="length", meta={"k": 1}) for r in rows]
    p = claim_dir(jsonl_claim([16], 16), {"logs/base_16.jsonl": rows, "logs/treat_16.jsonl": typo})
    with pytest.raises(InputError) as exc:
        load_records(load_claim(p))
    (prob,) = exc.value.problems
    assert prob.message == "unknown key(s) ['finish_reson']" and "finish_reson→finish_reason" in prob.fix


def test_a_log_format_is_added_by_one_importer(tmp_path, monkeypatch):
    """CONTRIBUTING.md, "A log format": one Importer in IMPORTERS. Here a pipe-separated export ("id|output|score")
    is read under the csv name (a new name also goes into the Literal of Samples.format in audit/claim.py)."""
    import pandas as pd

    import audit.importers as importers
    from audit.errors import Problem
    from audit.importers import IMPORTERS, Importer
    from audit.importers.jsonl import record_row

    def read(claim, files, arm, budget, variant):
        rows, problems = [], []
        for f in files:
            for i, line in enumerate(f.read_text().splitlines(), 1):
                parts = line.split("|")
                if len(parts) != 3:
                    problems.append(Problem("need id|output|score", file=str(f), line=i))
                    continue
                row = record_row({"id": parts[0], "output": parts[1], "scores": {"exact": float(parts[2])}},
                                 str(f), i, problems, arm, budget, variant, claim.options.cluster_field)
                if row is not None:
                    rows.append({**row, "source": str(f), "line": i})
        return pd.DataFrame(rows), problems, {"format": "pipes", "files": [str(f) for f in files]}

    monkeypatch.setitem(IMPORTERS, "csv", Importer("csv", read, select=lambda fs: [f for f in fs if f.suffix == ".txt"]))
    assert importers.IMPORTERS["csv"].read is read
    (tmp_path / "b.txt").write_text("q1|4|1\nq2|5|0\nq3|6|1\n")
    (tmp_path / "t.txt").write_text("q1|4|1\nq2|7|1\nq3|6|1\n")
    (tmp_path / "claim.yaml").write_text(
        "claim: {title: t, metric: exact, settings: {max_tokens: 16, scoring: exact}}\n"
        "samples: {format: csv, baseline: {16: b.txt}, treatment: {16: t.txt}}\n")
    records = load_records(load_claim(tmp_path / "claim.yaml"))
    p = records.paired("exact", 16)
    assert p.n == 3 and list(p.baseline) == [1.0, 0.0, 1.0] and list(p.treatment) == [1.0, 1.0, 1.0]
    assert records.settings["treatment"][16]["format"] == "pipes"
    (tmp_path / "t.txt").write_text("q1|4|1\nbroken line\nq3|6|1\n")
    with pytest.raises(InputError, match="need id|output|score"):
        load_records(load_claim(tmp_path / "claim.yaml"))
