"""Built-in scorers: (output text, target) → a float in [0, 1], and whether each is discontinuous or continuous.

Imports nothing else of :mod:`audit.scoring`, so the claim's scorer specs, the shipped ``evaluate`` modules and
name resolution can all import it.
"""

from __future__ import annotations

import math
import re
import string
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Literal

Scorer = Callable[[str, str], float]
Kind = Literal["discontinuous", "continuous"]

EVALUATE_PREFIX = "evaluate:"

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def normalise(s: str) -> str:
    s = s.strip().lower()
    s = s.translate(str.maketrans("", "", string.punctuation))
    return " ".join(s.split())


def number_of(s: str) -> str | None:
    s = s.replace(",", "").strip()
    try:
        f = float(s)
    except ValueError:
        return None
    if math.isnan(f) or math.isinf(f):
        return None
    return repr(int(f)) if f == int(f) else repr(f)


def _unit(x: float) -> float:
    # sacrebleu can return 100.00000000000004 for a perfect match; keep every score inside [0, 1].
    return min(1.0, max(0.0, float(x)))


# ---------------------------------------------------------------------------------------------------------------
# Discontinuous built-ins: all or nothing


def exact(output: str, target: str) -> float:
    """Whole output equals the target after lower-casing, removing punctuation and collapsing whitespace."""
    return float(normalise(output) == normalise(target))


def first_line_exact(output: str, target: str) -> float:
    """The first non-empty line of the output equals the target (normalised as in ``exact``)."""
    line = next((ln for ln in output.splitlines() if ln.strip()), "")
    return float(normalise(line) == normalise(target))


def first_number(output: str, target: str) -> float:
    """The first number in the output equals the target number (GSM8K-style strict extraction, lenient position)."""
    m = _NUMBER.search(output)
    return float(m is not None and number_of(m.group()) == number_of(target))


def last_number(output: str, target: str) -> float:
    """The last number in the output equals the target number (lm-eval's flexible-extract convention)."""
    ms = _NUMBER.findall(output)
    return float(bool(ms) and number_of(ms[-1]) == number_of(target))


def contains(output: str, target: str) -> float:
    """The normalised target occurs in the normalised output."""
    t = normalise(target)
    return float(bool(t) and t in normalise(output))


# ---------------------------------------------------------------------------------------------------------------
# Continuous built-ins: partial credit. Texts are compared as given (no lower-casing or punctuation removal), so
# that a near miss scores near 1 and an unrelated answer near 0.


def edit_similarity(output: str, target: str) -> float:
    """1 − Levenshtein distance / max(len) over characters, surrounding whitespace stripped (RapidFuzz
    ``Levenshtein.normalized_similarity``). Two empty strings are identical: 1.0.

    The character-level analogue of the token edit distance Schaeffer et al. (2023) use to show that "emergent"
    abilities can be an artefact of an all-or-nothing metric.
    """
    from rapidfuzz.distance import Levenshtein

    return _unit(Levenshtein.normalized_similarity((output or "").strip(), (target or "").strip()))


def token_edit_similarity(output: str, target: str) -> float:
    """1 − Levenshtein distance / max(len) over whitespace-separated tokens (RapidFuzz on token lists):
    a word substituted, inserted or deleted costs one edit. Two empty texts are identical: 1.0."""
    from rapidfuzz.distance import Levenshtein

    return _unit(Levenshtein.normalized_similarity((output or "").split(), (target or "").split()))


@lru_cache(maxsize=1)
def _sacrebleu_metrics():
    from sacrebleu.metrics import BLEU, CHRF

    # effective_order=True is sacrebleu's sentence-level default (sentence_bleu): n-gram orders the hypothesis
    # is too short to have are left out instead of zeroing the geometric mean.
    return BLEU(effective_order=True), CHRF()


def chrf(output: str, target: str) -> float:
    """Sentence-level chrF (Popović 2015) from sacrebleu with its defaults (character 6-grams, β = 2), / 100.
    Same value as ``sacrebleu.sentence_chrf(output, [target]).score / 100``."""
    return _unit(_sacrebleu_metrics()[1].sentence_score(output or "", [target or ""]).score / 100.0)


def bleu(output: str, target: str) -> float:
    """Sentence-level BLEU (Papineni et al. 2002) from sacrebleu: 13a tokenisation, exponential smoothing,
    effective order; / 100 and clipped to [0, 1]. Same value as ``sacrebleu.sentence_bleu(output, [target])``."""
    return _unit(_sacrebleu_metrics()[0].sentence_score(output or "", [target or ""]).score / 100.0)


@lru_cache(maxsize=1)
def _rouge_l_scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def rouge_l(output: str, target: str) -> float:
    """ROUGE-L F-measure (Lin 2004; longest common subsequence of tokens) from Google's ``rouge-score``, no
    stemming (the default of rouge-score and of Hugging Face ``evaluate``'s rouge)."""
    return _unit(_rouge_l_scorer().score(target or "", output or "")["rougeL"].fmeasure)


@dataclass(frozen=True)
class ScorerRecord:
    """Everything the audit knows of one built-in scorer: adding a scorer is adding one of these to `BUILTIN`
    (CONTRIBUTING.md, "A scorer").

    ``fn``: (output, target) → a float in [0, 1]. ``kind``: all-or-nothing ("discontinuous") or partial credit
    ("continuous"), read by the emergence check. ``higher_is_better``: the scorer's polarity when it is a
    perturbation of another claimed scoring. ``evaluate_module``: the folder under :mod:`audit.scoring.metrics` that
    ships it as a Hugging Face ``evaluate`` module (None: not shipped)."""

    name: str
    fn: Scorer
    kind: Kind
    higher_is_better: bool = True
    evaluate_module: str | None = None


BUILTIN: dict[str, ScorerRecord] = {}
"""Built-in scorer name → its record (filled by `register`)."""
SCORERS: dict[str, Scorer] = {}
"""Built-in scorer name → its function (from `BUILTIN`)."""
KINDS: dict[str, Kind] = {}
"""Built-in scorer name → whether it gives all-or-nothing or partial credit (from `BUILTIN`; read by the
``emergence`` check)."""


def register(record: ScorerRecord) -> ScorerRecord:
    """Add a built-in scorer: its record, function and kind under its name (a name taken is an error)."""
    if record.name in BUILTIN:
        raise ValueError(f"a built-in scorer is already named {record.name!r}")
    BUILTIN[record.name] = record
    SCORERS[record.name] = record.fn
    KINDS[record.name] = record.kind
    return record


for _record in (
    ScorerRecord("exact", exact, "discontinuous", evaluate_module="exact_match_audit"),
    ScorerRecord("first-line-exact", first_line_exact, "discontinuous", evaluate_module="first_line_exact"),
    ScorerRecord("first-number", first_number, "discontinuous", evaluate_module="first_number"),
    ScorerRecord("last-number", last_number, "discontinuous", evaluate_module="last_number"),
    ScorerRecord("contains", contains, "discontinuous", evaluate_module="contains_audit"),
    ScorerRecord("edit-similarity", edit_similarity, "continuous", evaluate_module="edit_similarity"),
    ScorerRecord("token-edit-similarity", token_edit_similarity, "continuous", evaluate_module="token_edit_similarity"),
    ScorerRecord("chrf", chrf, "continuous", evaluate_module="chrf_audit"),
    ScorerRecord("bleu", bleu, "continuous", evaluate_module="bleu_audit"),
    ScorerRecord("rouge-l", rouge_l, "continuous", evaluate_module="rouge_l_audit"),
):
    register(_record)
