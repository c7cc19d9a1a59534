"""Built-in prompt perturbations: seeded, deterministic rewrites of a rendered prompt.

Two families:

* format changes in the spirit of FormatSpread (Sclar et al. 2023, arXiv:2310.11324), which showed that
  semantically equivalent prompt formats (separators, casing, spacing, field names) move accuracy by many points:
  ``separator``, ``casing``, ``spacing``, ``field_names``;
* robustness edits in the spirit of HELM's perturbations (Liang et al. 2022, arXiv:2211.09110): ``typos``,
  ``contractions``, ``whitespace``; and ``fewshot_order``, which shuffles the worked examples of a few-shot prompt
  (Lu et al. 2022, arXiv:2104.08786, on order sensitivity).

Each perturbation maps (prompt, rng) to a new prompt and never touches digits, so arithmetic items keep their
answers. The rng is seeded per (seed, perturbation, item id): the same item is perturbed the same way in both arms
and in every run.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Callable

import numpy as np

# A "field label" such as "Q:", "A:", "Question:", "Answer:" at the start of a line.
_LABEL = re.compile(r"(?m)^(?P<name>[A-Za-z][A-Za-z ]{0,20}?)(?P<sep>:[ \t]?)")
_WORD = re.compile(r"\b[A-Za-z]{4,}\b")

_FIELD_NAMES = {"Q": "Question", "A": "Answer", "Question": "Q", "Answer": "A", "Input": "Question", "Output": "Answer"}
_SEPARATORS = [" - ", " :: ", ":\n", " = ", " | "]
_CONTRACTIONS = [
    ("do not", "don't"),
    ("does not", "doesn't"),
    ("is not", "isn't"),
    ("it is", "it's"),
    ("let us", "let's"),
    ("I am", "I'm"),
    ("you are", "you're"),
    ("cannot", "can't"),
    ("will not", "won't"),
    ("that is", "that's"),
    ("Let me", "Lemme"),
]


def _rng(seed: int, name: str, item_id: str) -> np.random.Generator:
    h = int.from_bytes(hashlib.sha256(f"{name}\x00{item_id}".encode()).digest()[:8], "little")
    return np.random.default_rng([seed, h])


def separator(prompt: str, rng: np.random.Generator) -> str:
    """Replace the ": " after every field label ("Q: ", "A:") with one other separator, chosen per item."""
    sep = _SEPARATORS[int(rng.integers(len(_SEPARATORS)))]
    # A label at the very end ("A:") keeps a separator that invites the answer on the same line.
    return _LABEL.sub(
        lambda m: m.group("name") + sep.rstrip() if m.end() == len(prompt) else m.group("name") + sep, prompt
    )


def casing(prompt: str, rng: np.random.Generator) -> str:
    """Change the case of every field label: all upper, all lower or title case."""
    how = ["upper", "lower", "title"][int(rng.integers(3))]
    return _LABEL.sub(lambda m: getattr(m.group("name"), how)() + m.group("sep"), prompt)


def spacing(prompt: str, rng: np.random.Generator) -> str:
    """Change the spacing between blocks and after labels: single newlines between blocks, or a space before ':'."""
    if rng.random() < 0.5:
        return re.sub(r"\n\n+", "\n", prompt)
    return _LABEL.sub(lambda m: m.group("name") + " " + m.group("sep"), prompt)


def field_names(prompt: str, rng: np.random.Generator) -> str:
    """Rename field labels: Q ↔ Question, A ↔ Answer (labels without a known synonym stay)."""
    return _LABEL.sub(lambda m: _FIELD_NAMES.get(m.group("name").strip(), m.group("name")) + m.group("sep"), prompt)


def typos(prompt: str, rng: np.random.Generator, rate: float = 0.1) -> str:
    """Swap two adjacent inner letters in about ``rate`` of the words of four or more letters (never digits)."""

    def swap(m: re.Match) -> str:
        w = m.group()
        if rng.random() >= rate:
            return w
        i = int(rng.integers(1, len(w) - 2))
        return w[:i] + w[i + 1] + w[i] + w[i + 2 :]

    return _WORD.sub(swap, prompt)


def contractions(prompt: str, rng: np.random.Generator) -> str:
    """Contract common phrases ("do not" → "don't"), or expand them, chosen per item."""
    pairs = _CONTRACTIONS if rng.random() < 0.5 else [(b, a) for a, b in _CONTRACTIONS]
    for a, b in pairs:
        prompt = re.sub(rf"\b{re.escape(a)}\b", b, prompt)
    return prompt


def whitespace(prompt: str, rng: np.random.Generator, rate: float = 0.15) -> str:
    """Double about ``rate`` of the spaces between words (the prompt's final characters stay as they are)."""
    body, tail = prompt[:-3], prompt[-3:]
    return re.sub(r"(?<=\S) (?=\S)", lambda m: "  " if rng.random() < rate else " ", body) + tail


def fewshot_order(prompt: str, rng: np.random.Generator) -> str:
    """Shuffle the worked examples (blocks separated by a blank line), keeping the final query block last."""
    blocks = prompt.split("\n\n")
    if len(blocks) < 3:
        return prompt
    head, query = blocks[:-1], blocks[-1]
    order = rng.permutation(len(head))
    if len(head) > 1 and np.array_equal(order, np.arange(len(head))):
        order = np.roll(order, 1)
    return "\n\n".join([head[i] for i in order] + [query])


@dataclass(frozen=True)
class Perturbation:
    name: str
    family: str
    fn: Callable[[str, np.random.Generator], str]

    @property
    def description(self) -> str:
        return (self.fn.__doc__ or "").strip().splitlines()[0]

    def apply(self, prompt: str, seed: int, item_id: str) -> str:
        return self.fn(prompt, _rng(seed, self.name, item_id))


PERTURBATIONS: dict[str, Perturbation] = {
    p.name: p
    for p in [
        Perturbation("separator", "format (FormatSpread)", separator),
        Perturbation("casing", "format (FormatSpread)", casing),
        Perturbation("spacing", "format (FormatSpread)", spacing),
        Perturbation("field_names", "format (FormatSpread)", field_names),
        Perturbation("typos", "robustness (HELM)", typos),
        Perturbation("contractions", "robustness (HELM)", contractions),
        Perturbation("whitespace", "robustness (HELM)", whitespace),
        Perturbation("fewshot_order", "few-shot order", fewshot_order),
    ]
}
