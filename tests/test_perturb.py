"""Built-in prompt perturbations: deterministic, digit-preserving, and each one actually changes a prompt."""
from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.perturb import PERTURBATIONS

FEWSHOT = ("Q: 3 + 4 = ?\nA: Let me verify. 3 + 4 = 7. Check: 7 - 4 = 3. Correct. The answer is 7.\n\n"
           "Q: 12 + 25 = ?\nA: The answer is 37. It is not hard, do not worry.\n\n"
           "Q: 28 + 16 = ?\nA: The answer is 44.\n\nQ: 6 + 5 = ?\nA:")


@pytest.mark.parametrize("name", sorted(PERTURBATIONS))
def test_changes_the_prompt_for_some_items(name):
    p = PERTURBATIONS[name]
    outs = {p.apply(FEWSHOT, seed=0, item_id=f"i{i}") for i in range(12)}
    assert any(o != FEWSHOT for o in outs), name


@pytest.mark.parametrize("name", sorted(PERTURBATIONS))
def test_deterministic_per_seed_and_item(name):
    p = PERTURBATIONS[name]
    assert p.apply(FEWSHOT, 3, "x") == p.apply(FEWSHOT, 3, "x")


@pytest.mark.parametrize("name", sorted(PERTURBATIONS))
def test_digits_and_final_query_survive(name):
    p = PERTURBATIONS[name]
    for i in range(10):
        out = p.apply(FEWSHOT, 1, f"item{i}")
        assert sorted(re.findall(r"\d+", out)) == sorted(re.findall(r"\d+", FEWSHOT))
        # the query stays the last block: the model still answers 6 + 5
        assert out.rstrip().endswith(("A:", "A -", "A ::", "A =", "A |", "a:", "Answer:", "ANSWER:", "answer:",
                                      "A :", "Answer -", "Answer ::", "Answer =", "Answer |")) or "6 + 5" in out[-30:]


def test_fewshot_order_permutes_examples_keeping_the_query_last():
    out = PERTURBATIONS["fewshot_order"].apply(FEWSHOT, 0, "a")
    blocks, orig = out.split("\n\n"), FEWSHOT.split("\n\n")
    assert blocks[-1] == orig[-1]
    assert sorted(blocks[:-1]) == sorted(orig[:-1]) and blocks[:-1] != orig[:-1]


def test_field_names_and_casing():
    assert PERTURBATIONS["field_names"].apply("Q: 1 + 1 = ?\nA:", 0, "a") == "Question: 1 + 1 = ?\nAnswer:"
    out = PERTURBATIONS["casing"].apply("Question: x\nAnswer:", 0, "a")
    assert out.lower() == "question: x\nanswer:"


@settings(max_examples=50, deadline=None)
@given(text=st.text(alphabet=st.characters(codec="ascii"), max_size=200), seed=st.integers(0, 10**6))
def test_never_touches_digits(text, seed):
    for p in PERTURBATIONS.values():
        # the same digits (fewshot_order may move whole blocks, so compare as a multiset)
        assert sorted(re.findall(r"\d", p.apply(text, seed, "id"))) == sorted(re.findall(r"\d", text))
