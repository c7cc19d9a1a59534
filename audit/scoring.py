"""Built-in scorers: re-score raw outputs against targets when a scoring is not already in the logs.

A scoring named in the claim is looked up first among the scores the logs carry (lm-eval filter names such as
``strict-match`` / ``flexible-extract``, or a generic JSONL ``scores`` key); otherwise it must be one of these.
Each scorer maps (output text, target) to a float in [0, 1].
"""
from __future__ import annotations

import re
import string
from typing import Callable

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def _norm(s: str) -> str:
    s = s.strip().lower()
    s = s.translate(str.maketrans("", "", string.punctuation))
    return " ".join(s.split())


def _num(s: str) -> str | None:
    s = s.replace(",", "").strip()
    try:
        f = float(s)
    except ValueError:
        return None
    return repr(int(f)) if f == int(f) else repr(f)


def exact(output: str, target: str) -> float:
    """Whole output equals the target after lower-casing, removing punctuation and collapsing whitespace."""
    return float(_norm(output) == _norm(target))


def first_line_exact(output: str, target: str) -> float:
    """The first non-empty line of the output equals the target (normalised as in ``exact``)."""
    line = next((ln for ln in output.splitlines() if ln.strip()), "")
    return float(_norm(line) == _norm(target))


def first_number(output: str, target: str) -> float:
    """The first number in the output equals the target number (GSM8K-style strict extraction, lenient position)."""
    m = _NUMBER.search(output)
    return float(m is not None and _num(m.group()) == _num(target))


def last_number(output: str, target: str) -> float:
    """The last number in the output equals the target number (lm-eval's flexible-extract convention)."""
    ms = _NUMBER.findall(output)
    return float(bool(ms) and _num(ms[-1]) == _num(target))


def contains(output: str, target: str) -> float:
    """The normalised target occurs in the normalised output."""
    t = _norm(target)
    return float(bool(t) and t in _norm(output))


def regex_scorer(spec) -> Callable[[str, str], float]:
    """A claim-defined scorer (``scorers:`` in the claim): extract like lm-eval's regex filter, then compare."""
    flags = re.IGNORECASE if spec.ignore_case else 0
    pattern = re.compile(spec.regex, flags)

    def score(output: str, target: str) -> float:
        matches = list(pattern.finditer(output or ""))
        if not matches:
            return 0.0
        m = matches[0] if spec.select == "first" else matches[-1]
        try:
            got = m.group(spec.group)
        except IndexError:
            return 0.0
        if got is None:
            return 0.0
        if spec.compare == "numeric":
            a, b = _num(got), _num(target or "")
            return float(a is not None and a == b)
        return float(_norm(got) == _norm(target or ""))

    score.__doc__ = f"regex {spec.regex!r}, {spec.select} match, group {spec.group}, {spec.compare} comparison"
    return score


def resolve(name: str, defined: dict | None = None) -> Callable[[str, str], float] | None:
    """The scorer called ``name``: one defined in the claim's ``scorers:`` first, else a built-in, else None."""
    if defined and name in defined:
        return regex_scorer(defined[name])
    return SCORERS.get(name)


SCORERS: dict[str, Callable[[str, str], float]] = {
    "exact": exact,
    "first-line-exact": first_line_exact,
    "first-number": first_number,
    "last-number": last_number,
    "contains": contains,
}
