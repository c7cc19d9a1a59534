"""Scorers: built-ins against the libraries they wrap and hand-checked values, kinds, claim-defined scorers,
Hugging Face evaluate modules loaded offline, and scorings applied through the importers."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import scoring
from audit.claim import RegexScorer, load_claim
from audit.errors import InputError
from audit.importers import load_records
from audit.scoring.specs import CodeExecScorer, EvaluateScorer, ExtractScorer
from audit.scoring import KINDS, SCORERS, kind_of, resolve
from conftest import jsonl_claim

PAIRS = [
    ("kitten", "sitting"),
    ("the cat sat on the mat", "the cat sat on a mat"),
    ("The answer is 1234.", "1234"),
    ("1243", "1234"),
    ("", "1234"),
    ("completely unrelated words here", "the cat sat on a mat"),
    ("Zürich — naïve café", "Zurich - naive cafe"),
]
CONTINUOUS = [name for name, kind in KINDS.items() if kind == "continuous"]


# ---------------------------------------------------------------------------------------------------------------
# Kinds


def test_every_builtin_is_one_record_and_its_kind_is_what_it_does():
    """A scorer's kind is read from what it gives, not from a list of names: a continuous scorer gives partial
    credit somewhere on PAIRS, a discontinuous one only 0 or 1."""
    from audit.scoring import BUILTIN
    from audit.scoring.metrics import MODULES

    assert set(KINDS) == set(SCORERS) == set(BUILTIN)
    for name, record in BUILTIN.items():
        assert SCORERS[name] is record.fn and KINDS[name] == record.kind
        values = {record.fn(o, t) for o, t in PAIRS}
        partial = any(0.0 < v < 1.0 for v in values)
        assert partial == (record.kind == "continuous"), (name, sorted(values))
        assert record.evaluate_module is None or MODULES[record.evaluate_module] == name


def test_a_scorer_is_added_by_one_record():
    """CONTRIBUTING.md, "A scorer": one ScorerRecord, and name resolution, the kinds and the polarity know it."""
    from audit.checks._common import Context
    from audit.scoring import builtin
    from audit.scoring.builtin import ScorerRecord, register

    record = register(ScorerRecord("shorter-is-better", lambda o, t: float(len(o) <= len(t)), "discontinuous",
                                   higher_is_better=False))
    try:
        assert resolve("shorter-is-better")("ab", "abc") == 1.0
        assert kind_of("shorter-is-better") == "discontinuous"
        claim = load_claim_dict({"claim": {"title": "t", "metric": "m", "settings": {"max_tokens": 16}}})
        ctx = Context(claim=claim, records=None, seed=0, resamples=1000, level=0.95, alpha=0.05, power=0.8,
                      claimed_budget=16, claimed_scoring="exact")
        assert ctx.polarity("shorter-is-better") == -1 and ctx.polarity("contains") == 1
        with pytest.raises(ValueError, match="already named"):
            register(record)
    finally:
        for reg in (builtin.BUILTIN, builtin.SCORERS, builtin.KINDS):
            reg.pop("shorter-is-better", None)


def load_claim_dict(data: dict):
    from audit.claim import Claim

    return Claim.model_validate(data)


def test_kind_of_builtins_and_claim_defined():
    defined = {
        "strict": RegexScorer(regex=r"answer is (\d+)"),
        "answer-edit": ExtractScorer(kind="extract", regex=r"(\d+)", compare="edit-similarity"),
        "answer-exact": ExtractScorer(kind="extract", regex=r"(\d+)", compare="exact"),
        "bert": EvaluateScorer(kind="evaluate", module="some/hub-metric", continuity="continuous"),
        "opaque": EvaluateScorer(kind="evaluate", module="some/hub-metric"),
        "local": EvaluateScorer(kind="evaluate", module="token_edit_similarity"),
        "pass": CodeExecScorer(kind="code_exec", enabled=True),
    }
    assert kind_of("exact", defined) == "discontinuous"
    assert kind_of("chrf") == "continuous"
    assert kind_of("strict", defined) == "discontinuous"
    assert kind_of("answer-edit", defined) == "continuous"
    assert kind_of("answer-exact", defined) == "discontinuous"
    assert kind_of("bert", defined) == "continuous"
    assert kind_of("opaque", defined) is None
    assert kind_of("local", defined) == "continuous"
    assert kind_of("pass", defined) == "discontinuous"
    assert kind_of("evaluate:edit_similarity") == "continuous"
    assert kind_of("evaluate:exact_match_audit") == "discontinuous"
    assert kind_of("evaluate:someone/else") is None
    assert kind_of("flexible-extract") is None  # only the logs know what it is
    # A plain mapping (as in the YAML) is accepted too.
    assert kind_of("x", {"x": {"regex": "(a)"}}) == "discontinuous"


def test_metrics_kinds_follow_scoring_kinds():
    from audit.scoring.metrics import KINDS as LOCAL_KINDS, MODULES

    assert set(MODULES.values()) == set(SCORERS)
    assert all(LOCAL_KINDS[m] == KINDS[s] for m, s in MODULES.items())


# ---------------------------------------------------------------------------------------------------------------
# Continuous scorers: against the library called directly, and hand-checked values


def _levenshtein(a, b) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


@pytest.mark.parametrize("output,target", PAIRS)
def test_edit_similarities_match_rapidfuzz_and_a_plain_dp(output, target):
    from rapidfuzz.distance import Levenshtein

    got = SCORERS["edit-similarity"](output, target)
    assert got == pytest.approx(Levenshtein.normalized_similarity(output.strip(), target.strip()))
    assert got == pytest.approx(1 - _levenshtein(output, target) / max(len(output), len(target)))
    tok = SCORERS["token-edit-similarity"](output, target)
    a, b = output.split(), target.split()
    assert tok == pytest.approx(Levenshtein.normalized_similarity(a, b))
    assert tok == pytest.approx(1 - _levenshtein(a, b) / max(len(a), len(b)))


@pytest.mark.parametrize("output,target", PAIRS)
def test_sacrebleu_and_rouge_match_the_libraries(output, target):
    import sacrebleu
    from rouge_score import rouge_scorer

    assert SCORERS["chrf"](output, target) == pytest.approx(sacrebleu.sentence_chrf(output, [target]).score / 100)
    assert SCORERS["bleu"](output, target) == pytest.approx(
        min(1.0, sacrebleu.sentence_bleu(output, [target]).score / 100))
    ref = rouge_scorer.RougeScorer(["rougeL"]).score(target, output)["rougeL"].fmeasure
    assert SCORERS["rouge-l"](output, target) == pytest.approx(ref)


def test_hand_checked_values():
    s = SCORERS
    assert s["edit-similarity"]("kitten", "sitting") == pytest.approx(1 - 3 / 7)  # k→s, e→i, +g
    assert s["edit-similarity"]("1243", "1234") == pytest.approx(0.5)  # two substitutions in four
    assert s["edit-similarity"]("  12\n", "12") == 1.0  # surrounding whitespace does not count
    assert s["edit-similarity"]("", "") == 1.0
    assert s["edit-similarity"]("", "abc") == 0.0
    assert s["token-edit-similarity"]("the cat sat", "the dog sat") == pytest.approx(2 / 3)
    assert s["token-edit-similarity"]("a b c d", "a c d") == pytest.approx(3 / 4)  # one deletion
    # LCS of 6 tokens each is 5: P = R = F = 5/6.
    assert s["rouge-l"]("the cat sat on the mat", "the cat sat on a mat") == pytest.approx(5 / 6)
    # BLEU of an exact match is 100 up to rounding (sacrebleu gives 100.00000000000004): clipped to 1.
    assert s["bleu"]("the cat sat on the mat", "the cat sat on the mat") == 1.0
    assert s["chrf"]("the cat sat on the mat", "the cat sat on the mat") == pytest.approx(1.0)
    assert s["bleu"]("x y z", "the cat sat on the mat") == 0.0
    # An exact miss under exact match is a near hit under the continuous scorers.
    assert s["exact"]("1243", "1234") == 0.0 and s["chrf"]("1243", "1234") > 0


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=30), st.text(max_size=30))
def test_every_builtin_is_in_unit_interval(a, b):
    for name, fn in SCORERS.items():
        v = fn(a, b)
        assert 0.0 <= v <= 1.0, (name, a, b, v)
    assert SCORERS["edit-similarity"](a, b) == pytest.approx(SCORERS["edit-similarity"](b, a))
    assert SCORERS["edit-similarity"](a, a) == 1.0 and SCORERS["token-edit-similarity"](a, a) == 1.0


def test_existing_discontinuous_scorers_unchanged():
    s = SCORERS
    assert s["exact"]("The answer.", "the answer") == 1.0
    assert s["first-line-exact"]("\n42\nmore", "42") == 1.0
    assert s["first-number"]("3 then 4", "3") == 1.0 and s["last-number"]("3 then 4", "4") == 1.0
    assert s["last-number"]("1,234.0", "1234") == 1.0
    assert s["contains"]("so it is Paris.", "paris") == 1.0 and s["contains"]("x", "") == 0.0


# ---------------------------------------------------------------------------------------------------------------
# resolve: one entry point, a callable for every kind


def test_resolve_returns_a_callable_for_every_kind():
    defined = {
        "strict": RegexScorer(regex=r"answer is (\d+)", compare="numeric"),
        "as-dict": {"regex": r"answer is (\d+)"},
        "answer-edit": ExtractScorer(kind="extract", regex=r"answer is (\d+)", compare="edit-similarity"),
        "ev": EvaluateScorer(kind="evaluate", module="edit_similarity"),
        "pass": CodeExecScorer(kind="code_exec", enabled=True, timeout_s=2),
    }
    out, target = "so the answer is 1243", "1234"
    assert resolve("strict", defined)(out, "1243.0") == 1.0
    assert resolve("as-dict", defined)(out, "1243") == 1.0
    assert resolve("answer-edit", defined)(out, target) == pytest.approx(0.5)
    assert resolve("answer-edit", defined)("no number", target) == 0.0
    assert resolve("ev", defined)(out, target) == pytest.approx(SCORERS["edit-similarity"](out, target))
    assert resolve("evaluate:edit_similarity")(out, target) == pytest.approx(SCORERS["edit-similarity"](out, target))
    assert resolve("chrf", defined) is SCORERS["chrf"]
    assert callable(resolve("pass", defined))
    assert resolve("no-such-scorer", defined) is None


def test_claim_defined_name_shadows_builtin():
    defined = {"exact": RegexScorer(regex=r"(\d+)")}
    assert resolve("exact", defined)("x 12 y", "12") == 1.0
    assert SCORERS["exact"]("x 12 y", "12") == 0.0


# ---------------------------------------------------------------------------------------------------------------
# Hugging Face evaluate: audit's own modules, loaded offline by local path


@pytest.fixture
def offline(monkeypatch):
    evaluate = pytest.importorskip("evaluate")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_EVALUATE_OFFLINE", "1")
    # evaluate reads its offline flag when first imported; make it hold even if another test imported it first.
    monkeypatch.setattr(evaluate.config, "HF_EVALUATE_OFFLINE", True)
    scoring.load_evaluate_module.cache_clear()
    yield evaluate
    scoring.load_evaluate_module.cache_clear()


def test_local_modules_load_offline_and_agree_with_builtins(offline):
    from audit.scoring.metrics import MODULES, path_of

    preds = [p for p, _ in PAIRS] + ["42", "The answer.\nmore"]
    refs = [t for _, t in PAIRS] + ["42", "the answer"]
    for name, scorer in MODULES.items():
        metric = offline.load(str(path_of(name)), keep_in_memory=True)
        assert metric.name == name
        result = metric.compute(predictions=preds, references=refs)
        expected = sum(SCORERS[scorer](p, r) for p, r in zip(preds, refs)) / len(preds)
        assert result == {name: pytest.approx(expected)}, name
    # The .py file itself loads too.
    m = offline.load(str(path_of("exact_match_audit") / "exact_match_audit.py"), keep_in_memory=True)
    assert m.compute(predictions=["The answer."], references=["the answer"]) == {"exact_match_audit": 1.0}


def test_evaluate_scorer_by_path_and_by_name(offline, tmp_path):
    from audit.scoring.metrics import path_of

    by_name = resolve("evaluate:exact_match_audit")
    by_path = resolve(f"evaluate:{path_of('exact_match_audit')}")
    for out, tgt in PAIRS + [("The answer.", "the answer")]:
        assert by_name(out, tgt) == by_path(out, tgt) == SCORERS["exact"](out, tgt)
    # A user's own module in their own folder.
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "mine.py").write_text(
        "import datasets\nimport evaluate\n\n"
        "class Mine(evaluate.Metric):\n"
        "    def _info(self):\n"
        "        return evaluate.MetricInfo(description='', citation='', inputs_description='',\n"
        "            features=datasets.Features({'predictions': datasets.Value('string'),\n"
        "                                        'references': datasets.Value('string')}))\n"
        "    def _compute(self, predictions, references):\n"
        "        return {'mine': float(len(predictions[0]) == len(references[0])), 'n': len(predictions)}\n")
    fn = resolve(f"evaluate:{folder}")
    assert fn("abc", "xyz") == 1.0 and fn("ab", "xyz") == 0.0
    keyed = resolve("n", {"n": EvaluateScorer(kind="evaluate", module=str(folder), key="n")})
    assert keyed("ab", "xyz") == 1.0
    bad = resolve("k", {"k": EvaluateScorer(kind="evaluate", module=str(folder), key="nope")})
    with pytest.raises(InputError, match="result key 'nope'"):
        bad("a", "b")


def test_hub_name_offline_is_a_clear_input_error(offline):
    with pytest.raises(InputError) as exc:
        resolve("evaluate:bleu")
    msg = str(exc.value)
    assert "needs network access" in msg
    assert "evaluate:bleu_audit" in msg and "evaluate:edit_similarity" in msg
    with pytest.raises(InputError, match="cannot load the evaluate module"):
        resolve("evaluate:./no/such/folder")


# ---------------------------------------------------------------------------------------------------------------
# The claim's scorers: field


def _claim(claim_dir, scorers, scorings=None):
    rows_b = [{"id": f"q{i}", "output": o, "target": t} for i, (o, t) in enumerate(PAIRS)]
    rows_t = [{"id": f"q{i}", "output": t, "target": t} for i, (_, t) in enumerate(PAIRS)]
    c = jsonl_claim([16], 16, scorings)
    c["scorers"] = scorers
    return claim_dir(c, {"logs/base_16.jsonl": rows_b, "logs/treat_16.jsonl": rows_t})


def test_plain_regex_scorer_still_validates(claim_dir):
    claim = load_claim(_claim(claim_dir, {"strict": {"regex": r"(\d+)", "compare": "numeric"}}))
    assert isinstance(claim.scorers["strict"], RegexScorer)
    assert claim.scorers["strict"].compare == "numeric"


def test_scorer_spec_errors_are_located(claim_dir):
    with pytest.raises(InputError) as exc:
        load_claim(_claim(claim_dir, {"a": {"regex": "(x", "grop": 1},
                                      "b": {"kind": "extract", "regex": "(x)", "compare": "edit-similarty"},
                                      "c": {"kind": "nope"}}))
    msg = str(exc.value)
    assert "scorers.a.grop: unknown key" in msg
    assert "scorers.a.regex" in msg and "not a valid regular expression" in msg
    assert "scorers.b.compare" in msg and "did you mean 'edit-similarity'" in msg
    assert "scorers.c: unknown scorer kind" in msg
    assert "kind[" not in msg  # the union tags never reach the user


def test_scorings_through_the_importer(claim_dir, offline):
    scorers = {"answer-edit": {"kind": "extract", "regex": r"(\d+)", "compare": "edit-similarity"},
               "ev-tok": {"kind": "evaluate", "module": "token_edit_similarity"}}
    p = _claim(claim_dir, scorers, ["exact", "edit-similarity", "rouge-l", "evaluate:edit_similarity",
                                    "answer-edit", "ev-tok"])
    rec = load_records(load_claim(p))
    for name, fn in [("edit-similarity", SCORERS["edit-similarity"]), ("rouge-l", SCORERS["rouge-l"]),
                     ("evaluate:edit_similarity", SCORERS["edit-similarity"]),
                     ("ev-tok", SCORERS["token-edit-similarity"])]:
        pair = rec.paired(name, 16)
        assert list(pair.baseline) == pytest.approx([fn(o, t) for o, t in PAIRS]), name
    pair = rec.paired("answer-edit", 16)
    assert list(pair.baseline)[2:4] == pytest.approx([1.0, 0.5])  # "1234" from the prose; "1243" vs "1234"
    assert list(rec.paired("exact", 16).treatment) == [1.0] * len(PAIRS)
