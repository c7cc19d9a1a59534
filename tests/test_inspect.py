"""samples.format: inspect — inspect_ai logs (.eval and .json) read with inspect_ai's own reader."""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

pytest.importorskip("inspect_ai", reason="samples.format: inspect needs inspect_ai (pip install 'claimaudit[inspect]')")

from inspect_ai.log import read_eval_log, write_eval_log  # noqa: E402

from audit.claim import load_claim  # noqa: E402
from audit.cli import main  # noqa: E402
from audit.errors import InputError  # noqa: E402
from audit.importers import load_records  # noqa: E402
from audit.importers.inspect import finish_reason, score_values  # noqa: E402
from audit.verify import verify  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CLAIM = FIXTURES / "claims" / "inspect_truncation.yaml"
RUNS = {("baseline", 32): "add_verify_32", ("baseline", 64): "add_verify_64",
        ("treatment", 32): "add_direct_32", ("treatment", 64): "add_direct_64"}


def log_path(run: str, root: Path = FIXTURES / "logs" / "inspect") -> Path:
    (p,) = sorted((root / run).glob("*.eval"))
    return p


def copy_claim(tmp_path: Path, edit=None) -> Path:
    shutil.copytree(FIXTURES / "logs" / "inspect", tmp_path / "logs" / "inspect")
    (tmp_path / "claims").mkdir()
    c = yaml.safe_load(CLAIM.read_text())
    if edit:
        edit(c)
    p = tmp_path / "claims" / "inspect_truncation.yaml"
    p.write_text(yaml.safe_dump(c))
    return p


def test_fixture_claim_replays():
    claim = load_claim(CLAIM)
    rec = load_records(claim)
    assert rec.budgets() == [32, 64]
    assert rec.scorings() == ["pattern", "match"]
    assert len(rec.paired("pattern", 32).baseline) == 20
    st = rec.settings["baseline"][32]
    assert st["format"] == "inspect" and st["max_tokens"] == 32 and st["temperature"] == 0
    assert st["model"] == "openai-api-completions/llamacpp/gemma-3-270m" and st["stop"] == ["\n\n", "Q:"]
    report = verify(claim).report
    assert report.verdict in ("inconclusive", "fragile", "not_reproduced")
    trunc = [f for f in report.findings if f.check == "truncation"]
    assert any(f.outcome == "flag" for f in trunc), [f.title for f in trunc]


def test_truncation_rates_come_from_stop_reason():
    """The truncation check's per-arm rates equal the share of samples whose stop_reason is max_tokens, counted
    here from the logs with inspect's own reader."""
    report = verify(load_claim(CLAIM)).report
    (rates,) = [f for f in report.findings if f.check == "truncation" and f.code == "rates"]
    got = {(r["arm"], r["budget"]): (r["truncated"], r["known"]) for r in rates.rows}
    for (arm, budget), run in RUNS.items():
        log = read_eval_log(str(log_path(run)))
        k = sum(s.output.stop_reason == "max_tokens" for s in log.samples)
        assert got[(arm, budget)] == (k, len(log.samples)), (arm, budget)
    assert got[("baseline", 32)][0] > 0  # the verification answers are cut at 32 tokens
    rec = load_records(load_claim(CLAIM))
    row = rec.table[(rec.table["arm"] == "baseline") & (rec.table["budget"] == 32)].iloc[0]
    assert "stop_reason" not in rec.table.columns and row["finish_reason"] in ("length", "stop")


def test_scores_tokens_and_answers_match_the_log():
    rec = load_records(load_claim(CLAIM))
    log = read_eval_log(str(log_path("add_direct_32")))
    t = rec.table[(rec.table["arm"] == "treatment") & (rec.table["budget"] == 32)]
    for s in log.samples:
        for name, sc in s.scores.items():
            (row,) = t[(t["item_id"] == str(s.id)) & (t["scoring"] == name)].itertuples()
            assert row.score == {"C": 1.0, "I": 0.0}[sc.value]
            assert row.text == s.output.completion
            assert row.completion_tokens == s.output.usage.output_tokens
            assert row.extracted == sc.answer
            assert row.target == s.target
    mean = t[t["scoring"] == "pattern"]["score"].mean()
    assert mean == pytest.approx(log.results.scores[0].metrics["accuracy"].value)


def test_json_logs_read_like_eval_logs(tmp_path):
    """inspect's .json format (written here by inspect's own writer from the .eval fixture) gives the same rows."""
    def to_json(c):
        for arm in ("baseline", "treatment"):
            for b in (32, 64):
                c["samples"][arm][b] = c["samples"][arm][b].replace("*.eval", "*.json")

    p = copy_claim(tmp_path, to_json)
    for run in RUNS.values():
        src = log_path(run, tmp_path / "logs" / "inspect")
        write_eval_log(read_eval_log(str(src)), str(src.with_suffix(".json")), format="json")
        src.unlink()
    a = load_records(load_claim(CLAIM)).table
    b = load_records(load_claim(p)).table
    cols = ["arm", "item_id", "budget", "scoring", "score", "text", "finish_reason", "completion_tokens", "answered"]
    key = ["arm", "budget", "scoring", "item_id"]
    left = a[cols].sort_values(key).reset_index(drop=True)
    right = b[cols].sort_values(key).reset_index(drop=True)
    assert left.equals(right)


def _two_epochs(src: Path, dest: Path) -> None:
    log = read_eval_log(str(src))
    second = [s.model_copy(update={"epoch": 2}) for s in log.samples]
    log.samples = [*log.samples, *second]
    log.eval.config.epochs = 2
    write_eval_log(log, str(dest), format="eval")


def test_two_epochs_need_samples_epoch(tmp_path):
    """A log with two epochs is refused (repeats of a sample are not independent items) unless samples.epoch picks
    one, which is then audited."""
    p = copy_claim(tmp_path)
    for run in RUNS.values():
        src = log_path(run, tmp_path / "logs" / "inspect")
        _two_epochs(src, src)
    with pytest.raises(InputError) as e:
        load_records(load_claim(p))
    msg = str(e.value)
    assert "holds 2 epochs ([1, 2]) of each sample" in msg and "samples.epoch: 1" in msg
    assert CliRunner().invoke(main, ["verify", str(p), "--out", str(tmp_path / "o")]).exit_code == 2

    def pick(epoch):
        def edit(c):
            c["samples"]["epoch"] = epoch
        return edit

    shutil.rmtree(tmp_path / "claims")
    p2 = copy_claim(tmp_path / "second", pick(2))
    for run in RUNS.values():
        src = log_path(run, tmp_path / "second" / "logs" / "inspect")
        _two_epochs(log_path(run), src)
    rec = load_records(load_claim(p2))
    assert len(rec.paired("pattern", 32).baseline) == 20
    assert rec.settings["treatment"][32]["epoch"] == 2
    base = load_records(load_claim(CLAIM))
    assert rec.paired("pattern", 64).treatment.tolist() == base.paired("pattern", 64).treatment.tolist()
    p3 = copy_claim(tmp_path / "third", pick(3))
    for run in RUNS.values():
        src = log_path(run, tmp_path / "third" / "logs" / "inspect")
        _two_epochs(log_path(run), src)
    with pytest.raises(InputError, match=r"samples.epoch 3 is not in this log \(epochs: \[1, 2\]\)"):
        load_records(load_claim(p3))


def test_epoch_needs_inspect_format(tmp_path):
    p = copy_claim(tmp_path, lambda c: c["samples"].update(format="jsonl", epoch=1))
    with pytest.raises(InputError, match="samples.epoch picks an epoch of inspect logs"):
        load_claim(p)


def test_truncated_eval_file_is_a_located_input_error(tmp_path):
    p = copy_claim(tmp_path)
    bad = log_path("add_direct_64", tmp_path / "logs" / "inspect")
    raw = bad.read_bytes()
    bad.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError) as e:
        load_records(load_claim(p))
    (prob,) = e.value.problems
    assert Path(prob.file).resolve() == bad.resolve() and prob.message.startswith("inspect_ai cannot read this log")
    assert "truncated" in prob.fix
    res = CliRunner().invoke(main, ["verify", str(p), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert bad.name in res.output and "inspect_ai cannot read this log" in res.output


def test_malformed_json_log_is_a_located_input_error(tmp_path):
    p = copy_claim(tmp_path, lambda c: c["samples"]["baseline"].update({64: "../logs/inspect/add_verify_64/*.json"}))
    bad = tmp_path / "logs" / "inspect" / "add_verify_64" / "broken.json"
    bad.write_text('{"version": 2, "status": "success", "eval": {')
    with pytest.raises(InputError) as e:
        load_records(load_claim(p))
    assert [Path(q.file).resolve() for q in e.value.problems] == [bad.resolve()]


def test_log_filed_under_the_wrong_budget(tmp_path):
    def swap(c):
        c["samples"]["treatment"][32], c["samples"]["treatment"][64] = \
            c["samples"]["treatment"][64], c["samples"]["treatment"][32]

    with pytest.raises(InputError, match="filed under budget 32 was generated with max_tokens=64"):
        load_records(load_claim(copy_claim(tmp_path, swap)))


def test_score_values_and_stop_reasons():
    assert score_values("s", "C") == ({"s": 1.0}, None)
    assert score_values("s", "I") == ({"s": 0.0}, None)
    assert score_values("s", "P") == ({"s": 0.5}, None)
    assert score_values("s", "N") == ({"s": 0.0}, None)
    assert score_values("s", True) == ({"s": 1.0}, None)
    assert score_values("s", 0.25) == ({"s": 0.25}, None)
    assert score_values("s", "0.5") == ({"s": 0.5}, None)
    assert score_values("s", {"a": "C", "b": 2}) == ({"s.a": 1.0, "s.b": 2.0}, None)
    vals, why = score_values("s", "maybe")
    assert vals == {} and "neither a number nor one of C/I/P/N" in why
    from inspect_ai.scorer import CORRECT, INCORRECT, NOANSWER, PARTIAL, value_to_float

    to_float = value_to_float()
    for letter in (CORRECT, INCORRECT, PARTIAL, NOANSWER):
        assert score_values("s", letter)[0]["s"] == to_float(letter)
    assert finish_reason("max_tokens") == "length" and finish_reason("model_length") == "length"
    assert finish_reason("stop") == "stop" and finish_reason("tool_calls") == "stop"
    assert finish_reason("unknown") is None and finish_reason(None) is None


def test_answered_follows_the_scorers_answer(tmp_path):
    """pattern reports the answer it extracted, and none when its regex finds nothing: answered is 0 there."""
    rec = load_records(load_claim(CLAIM))
    t = rec.table[(rec.table["scoring"] == "pattern")]
    assert set(t["answered"].dropna().unique()) <= {0.0, 1.0}
    assert ((t["answered"] == 0) == t["extracted"].isna()).all()
    assert not math.isnan(t["answered"].iloc[0])


def test_an_extractor_that_found_nothing_anywhere_is_all_no_answer(tmp_path):
    """A small budget where no output reached the answer: every pattern score says "not matched" and reports no
    answer. That scorer extracts (100% no answer), it is not a scorer that "does not extract"."""
    p = copy_claim(tmp_path)
    f = log_path("add_verify_32", tmp_path / "logs" / "inspect")
    log = read_eval_log(str(f))
    for s in log.samples:
        sc = s.scores["pattern"]
        s.scores["pattern"] = sc.model_copy(update={"answer": None, "value": "I",
                                                   "explanation": "Scoring pattern not matched in output: x"})
    write_eval_log(log, str(f))
    rec = load_records(load_claim(p))
    assert list(rec.paired("pattern", 32).frame["answered_b"]) == [0.0] * 20
    from audit.checks.extraction import no_answer_rates

    rows = {(r["arm"], r["scoring"], r["budget"]): r for r in no_answer_rates(rec)}
    assert rows[("baseline", "pattern", 32)]["rate"] == 1.0 and rows[("baseline", "pattern", 32)]["known"] == 20


def test_epochs_are_reduced_when_the_claim_says_how(tmp_path):
    """Several epochs are several outputs per item: samples.reduce turns each sample's epochs into one score."""
    def two_epochs(c):
        c["samples"]["reduce"] = {"baseline": "mean", "treatment": "any"}

    p = copy_claim(tmp_path, two_epochs)
    for run in RUNS.values():
        f = log_path(run, tmp_path / "logs" / "inspect")
        log = read_eval_log(str(f))
        log.samples = log.samples + [s.model_copy(update={"epoch": 2}) for s in log.samples]
        log.eval.config.epochs = 2
        write_eval_log(log, str(f))
    rec = load_records(load_claim(p))
    assert rec.paired("pattern", 32).n == 20
    assert rec.reductions["baseline"] == {"rule": "mean", "samples_min": 2, "samples_max": 2}
    assert len(rec.per_sample[(rec.per_sample["arm"] == "baseline") & (rec.per_sample["budget"] == 32)
                              & (rec.per_sample["scoring"] == "pattern")]) == 40


def test_a_sample_without_choices_is_no_output(tmp_path):
    """Issue 19: an output with empty ``choices`` (ModelOutput.stop_reason is choices[0]'s) is no output, with no
    finish reason — not an IndexError (exit 4)."""
    p = copy_claim(tmp_path)
    f = log_path("add_verify_32", tmp_path / "logs" / "inspect")
    log = read_eval_log(str(f))
    first = log.samples[0]
    first.output.choices = []
    first.output.completion = ""
    second = log.samples[1]
    second.output.choices = []  # the completion text survives: an output, without a stop reason
    write_eval_log(log, str(f))
    rec = load_records(load_claim(p))
    t = rec.table[(rec.table["arm"] == "baseline") & (rec.table["budget"] == 32)]
    row = t[t["item_id"] == str(first.id)].iloc[0]
    assert row["no_output"] == "no choices" and pd.isna(row["finish_reason"])
    row = t[t["item_id"] == str(second.id)].iloc[0]
    assert pd.isna(row["no_output"]) and pd.isna(row["finish_reason"]) and row["text"]
    assert t[~t["item_id"].isin([str(first.id), str(second.id)])]["finish_reason"].notna().all()
