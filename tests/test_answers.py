"""Answer extraction steps and compare modes of claim-defined scorers (``kind: answer``, ``braces``, ``json_key``,
``compare: first-number | math``), ``kind: logged`` scorings, ``samples.target_regex``, and ZeroEval's scorer
written in the claim language."""
from __future__ import annotations

import json

import pytest
from pydantic import TypeAdapter, ValidationError

from audit.claim import RegexScorer, load_claim
from audit.errors import InputError
from audit.importers import load_records
from audit.scoring import kind_of, resolve
from audit.scoring.answers import (arithmetic, balanced_after, compare, first_number_equal, json_value,
                                   math_equal, zeroeval_sanitise)
from audit.scoring.resolve import extractor_of
from audit.scoring.specs import scorer_spec

SPEC = TypeAdapter(scorer_spec(RegexScorer))

# ZeroEval's MATH scorer (WildEval/ZeroEval src/evaluation/math_eval.py) as a claim writes it.
ZEROEVAL = {"kind": "answer", "compare": "first-number", "steps": [
    {"json_key": "answer", "json_object": "first"},
    {"regex": r'"answer"\s*:\s*"([^"]*?)"'},
    {"regex": r'"answer"\s*:\s*([^,\s]*)'},
    {"regex": r'answer\s*:\s*([^,\s]*)'},
    {"regex": r'\\boxed{([\w\d]+)}', "tail": 30, "tail_contains": "boxed"}]}
ROBUST = {"kind": "answer", "compare": "math", "steps": [
    {"json_key": "answer", "json_object": "any"}, {"regex": r"\\boxed\{", "braces": True, "select": "last"}]}


def scorer(spec: dict):
    return resolve("s", {"s": SPEC.validate_python(spec)})


def extract(spec: dict, output: str):
    return extractor_of("s", {"s": SPEC.validate_python(spec)})(output)


def test_balanced_braces_take_nested_answers_and_skip_unclosed_ones():
    assert balanced_after(r"\boxed{\frac{1}{2}} tail", 7) == r"\frac{1}{2}"
    assert balanced_after(r"\boxed{\frac{1}{2", 7) is None
    spec = {"regex": r"\\boxed\{", "braces": True, "select": "last"}
    assert extract(spec, r"first \boxed{3} then \boxed{-\frac{1}{2}} and \boxed{7") == r"-\frac{1}{2}"
    assert extract({**spec, "select": "first"}, r"\boxed{3} \boxed{4}") == "3"
    assert extract(spec, "no box") is None


def test_json_blocks_first_any_and_last():
    text = 'We use $\\{x\\}$ first. {"reasoning": "r", "answer": 5} then {"answer": "7"}'
    # the first balanced block is the LaTeX set, not JSON: ZeroEval's first-complete rule finds nothing
    assert json_value(text, "answer", "first") is None
    assert json_value(text, "answer", "any") == "5" and json_value(text, "answer", "last") == "7"
    assert json_value('{"answer": null}', "answer") == "None"  # Python's str(), as ZeroEval's str(...)
    assert json_value('{"answer": 0.5,\n "reasoning": "a\nb"}', "answer") == "0.5"  # newlines removed first


def test_zeroeval_sanitise_and_first_number():
    assert zeroeval_sanitise("$1,000$") == "1000"
    assert zeroeval_sanitise("3/4") == "0.75" and zeroeval_sanitise("\\frac{3}{4}") == "\\frac{3}{4}"
    assert zeroeval_sanitise("__import__('os')/2") == "__import__('os')/2"  # never evaluated
    assert arithmetic("(1+2)/4") == 0.75
    with pytest.raises(ValueError):
        arithmetic("2**10**10")
    assert first_number_equal("2\\sqrt{2}", "2")  # lenient by design, as the authors'
    assert first_number_equal("-15", "-15") and not first_number_equal("15", "-15")
    assert not first_number_equal("\\frac{3}{4}", "0.75") and first_number_equal("3/4", "0.75")
    assert not first_number_equal("x", "1")


def test_math_compare_normalises_latex_and_numbers():
    assert math_equal("\\dfrac{1}{2}", "\\frac{1}{2}") and math_equal("0.5", "\\frac{1}{2}")
    assert math_equal("x = 5", "5") and math_equal("$10\\%$", "10") and math_equal("90^\\circ", "90")
    assert math_equal("\\text{(B)}", "(B)") and math_equal("1,000", "1000")
    assert not math_equal("2\\sqrt{2}", "2") and not math_equal("", "")
    assert compare("math", None, "1") == 0.0


def test_zeroeval_scorer_follows_the_authors_cascade():
    s = scorer(ZEROEVAL)
    assert s('{"reasoning": "...", "answer": "-15"}', "-15") == 1.0
    assert s('reasoning then "answer": 12, more', "12") == 1.0  # the loose no-quotes regex
    # the \boxed{} fallback only when "boxed" is in the last 30 characters, and only [\w\d]+ inside
    assert s("so it is 36. The final answer is: $\\boxed{36}$", "36") == 1.0
    assert s("The final answer is: $\\boxed{36}$" + " " * 40, "36") == 0.0
    assert s("The final answer is: $\\boxed{-15}$", "-15") == 0.0
    assert extract(ZEROEVAL, "The final answer is: $\\boxed{\\frac{1}{2}}$") is None
    # the robust scoring takes the full boxed answer and compares it as math
    r = scorer(ROBUST)
    assert r("The final answer is: $\\boxed{-15}$", "-15") == 1.0
    assert r("The final answer is: $\\boxed{\\frac{1}{2}}$", "\\frac12") == 1.0  # \frac12 is 1/2 too
    assert r("The final answer is: $\\boxed{\\frac{1}{2}}$", "0.5") == 1.0


def test_spec_validation_names_the_mistake():
    with pytest.raises(ValidationError, match="exactly one of regex or json_key"):
        SPEC.validate_python({"kind": "answer", "steps": [{"group": 1}]})
    with pytest.raises(ValidationError, match="tail_contains needs tail"):
        SPEC.validate_python({"kind": "answer", "steps": [{"regex": "(x)", "tail_contains": "boxed"}]})
    with pytest.raises(ValidationError, match="group 2 does not exist"):
        SPEC.validate_python({"kind": "answer", "steps": [{"regex": "(x)", "group": 2}]})
    with pytest.raises(ValidationError, match="field must be 'extracted' or 'scores.<name>'"):
        SPEC.validate_python({"kind": "logged", "field": "pred"})
    with pytest.raises(ValidationError, match="range applies to a logged score"):
        SPEC.validate_python({"kind": "logged", "field": "extracted", "range": [1, 2]})
    assert SPEC.validate_python({"regex": r"\\boxed\{", "braces": True, "compare": "first-number"}).braces


def test_kinds_of_new_scorers():
    defined = {"a": SPEC.validate_python(ZEROEVAL), "p": SPEC.validate_python({"kind": "logged", "field": "extracted"}),
               "w": SPEC.validate_python({"kind": "logged", "field": "scores.pref", "range": [1, 2]})}
    assert kind_of("a", defined) == "discontinuous" and kind_of("p", defined) == "discontinuous"
    assert kind_of("w", defined) == "continuous"


# ---------------------------------------------------------------------------------------------------------------
# Through the importers


def _export(tmp_path, name, recs):
    (tmp_path / name).write_text(json.dumps(recs))


def _claim(tmp_path, body: str) -> object:
    p = tmp_path / "claim.yaml"
    p.write_text("claim: {title: t, settings: {max_tokens: 64}}\noptions: {resamples: 1000}\n" + body)
    return load_claim(p)


def test_answer_scorer_records_extraction_and_no_answer(tmp_path):
    out = ['{"answer": "4"}', "The final answer is: $\\boxed{4}$", "no answer at all", '{"answer": "5"}']
    _export(tmp_path, "b.json", [{"id": i, "output": [o], "answer": "4"} for i, o in enumerate(out)])
    _export(tmp_path, "t.json", [{"id": i, "output": ['{"answer": "4"}'], "answer": "4"} for i in range(4)])
    claim = _claim(tmp_path, "samples:\n  format: json\n  fields: {id: id, output: output.0, target: answer}\n"
                             "  baseline: {64: b.json}\n  treatment: {64: t.json}\n"
                             f"perturbations: {{scorings: [ze]}}\nscorers: {{ze: {json.dumps(ZEROEVAL)}}}\n")
    p = load_records(claim).paired("ze", 64)
    assert list(p.baseline) == [1, 1, 0, 0] and list(p.frame["answered_b"]) == [1, 1, 0, 1]
    assert list(p.frame["text_b"])[1].endswith("$\\boxed{4}$")  # output.0: the first element of the list


def test_logged_prediction_and_rescaled_score(tmp_path):
    recs = [{"qid": i, "out": "x", "gold": "B", "pred": p, "pref": str(1 + i / 4)}
            for i, p in enumerate(["B", "A", None, "B", "[invalid]"])]
    _export(tmp_path, "b.json", recs)
    _export(tmp_path, "t.json", recs)
    claim = _claim(tmp_path, "samples:\n  format: json\n"
                             "  fields: {id: qid, output: out, target: gold, extracted: pred, scores.pref: pref}\n"
                             "  baseline: {64: b.json}\n  treatment: {64: t.json}\n"
                             "perturbations: {scorings: [pred, win]}\n"
                             "scorers:\n  pred: {kind: logged, field: extracted}\n"
                             "  win: {kind: logged, field: scores.pref, range: [1, 2]}\n")
    rec = load_records(claim)
    p = rec.paired("pred", 64)
    assert list(p.baseline) == [1, 0, 0, 1, 0] and list(p.frame["answered_b"]) == [1, 1, 0, 1, 0]
    assert list(rec.paired("win", 64).baseline) == [0, 0.25, 0.5, 0.75, 1.0]  # "1.25" read as 1.25, then rescaled


def test_logged_score_outside_its_range_is_refused(tmp_path):
    recs = [{"id": i, "output": "x", "pref": 3.0} for i in range(2)]
    _export(tmp_path, "b.json", recs)
    _export(tmp_path, "t.json", recs)
    claim = _claim(tmp_path, "samples:\n  format: json\n  fields: {scores.pref: pref}\n"
                             "  baseline: {64: b.json}\n  treatment: {64: t.json}\n"
                             "perturbations: {scorings: [win]}\n"
                             "scorers: {win: {kind: logged, field: scores.pref, range: [1, 2]}}\n")
    with pytest.raises(InputError, match=r"outside the range \[1, 2\]"):
        load_records(claim)


def test_prediction_scoring_without_a_mapped_prediction_says_how(tmp_path):
    recs = [{"id": i, "output": "x", "target": "A"} for i in range(2)]
    _export(tmp_path, "b.json", recs)
    _export(tmp_path, "t.json", recs)
    claim = _claim(tmp_path, "samples:\n  format: json\n  baseline: {64: b.json}\n  treatment: {64: t.json}\n"
                             "perturbations: {scorings: [pred]}\nscorers: {pred: {kind: logged, field: extracted}}\n")
    with pytest.raises(InputError, match="map samples.fields.extracted"):
        load_records(claim)


def test_target_regex_takes_the_final_answer_of_a_worked_solution(tmp_path):
    rows = [{"id": 1, "output": "so 42", "target": "6 * 7 = <<6*7=42>>42\n#### 42"},
            {"id": 2, "output": "so 3", "target": "1 + 2 = 3\n#### 3"}]
    for name in ("b.jsonl", "t.jsonl"):
        (tmp_path / name).write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    body = ("samples:\n  format: jsonl\n  target_regex: '####\\s*(.+?)\\s*$'\n"
            "  baseline: {64: b.jsonl}\n  treatment: {64: t.jsonl}\nperturbations: {scorings: [last-number]}\n")
    p = load_records(_claim(tmp_path, body)).paired("last-number", 64)
    assert list(p.baseline) == [1.0, 1.0]
    (tmp_path / "b.jsonl").write_text(json.dumps({**rows[0], "target": "no marker"}) + "\n"
                                      + json.dumps(rows[1]) + "\n")
    with pytest.raises(InputError) as err:
        load_records(_claim(tmp_path, body))
    (prob,) = err.value.problems
    assert "matches none of 1 target(s)" in prob.message and prob.line == 1 and prob.field == "samples.target_regex"
