"""Scorers: re-score raw outputs against targets when a scoring is not already in the logs.

A scoring named in the claim is looked up first among the scores the logs carry (lm-eval filter names such as
``strict-match`` / ``flexible-extract``, or a generic JSONL ``scores`` key); otherwise :func:`resolve` finds it:

1. a scorer the claim defines under ``scorers:`` — a regex (``{regex: ...}``), ``kind: extract`` (regex, then a
   built-in comparison), ``kind: evaluate`` (a Hugging Face ``evaluate`` module) or ``kind: code_exec`` (run the
   completion against the item's tests; off unless the claim sets ``enabled: true``), see
   :mod:`audit.scoring.specs`;
2. a built-in scorer (:data:`SCORERS`);
3. ``evaluate:<module>`` — a Hugging Face ``evaluate`` module by local path, by the name of a module shipped in
   :mod:`audit.scoring.metrics`, or (online only) by Hub name.

Every scorer maps (output text, target) to a float in [0, 1]. :data:`KINDS` and :func:`kind_of` say whether a
scorer is *discontinuous* (all-or-nothing: exact match, extraction, pass/fail) or *continuous* (partial credit:
edit similarity, chrF, BLEU, ROUGE-L) — the distinction behind metric-dependent "emergence" (Schaeffer, Miranda &
Koyejo 2023, "Are Emergent Abilities of Large Language Models a Mirage?", arXiv:2304.15004).

Layout (imports point one way): ``builtin`` (the built-in scorers) ← ``specs`` (the claim's ``scorers:`` entries)
and ``metrics`` (the shipped ``evaluate`` modules) ← ``resolve`` (a name → a scorer). This package re-exports the
public names of ``builtin`` and ``resolve``.
"""

from __future__ import annotations

from audit.scoring.builtin import (
    BUILTIN,
    EVALUATE_PREFIX,
    KINDS,
    SCORERS,
    Kind,
    Scorer,
    ScorerRecord,
    bleu,
    chrf,
    contains,
    edit_similarity,
    exact,
    first_line_exact,
    first_number,
    last_number,
    rouge_l,
    token_edit_similarity,
)
from audit.scoring.resolve import evaluate_scorer, extract_scorer, kind_of, load_evaluate_module, regex_scorer, resolve

__all__ = [
    "BUILTIN",
    "ScorerRecord",
    "EVALUATE_PREFIX",
    "KINDS",
    "SCORERS",
    "Kind",
    "Scorer",
    "bleu",
    "chrf",
    "contains",
    "edit_similarity",
    "exact",
    "first_line_exact",
    "first_number",
    "last_number",
    "rouge_l",
    "token_edit_similarity",
    "evaluate_scorer",
    "extract_scorer",
    "kind_of",
    "load_evaluate_module",
    "regex_scorer",
    "resolve",
]
