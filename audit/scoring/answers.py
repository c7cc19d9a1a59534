"""Answer extraction and comparison for claim-defined scorers: the steps of ``kind: answer`` and the compare modes.

Extraction (one step of a ``kind: answer`` scorer, or a regex scorer with ``braces: true``):

* a regex, its ``group``-th group, the ``first`` or ``last`` match;
* ``braces: true`` — the regex ends at an opening brace (``\\\\boxed\\{``) and the answer is everything up to the brace
  that closes it, nested braces included (``\\boxed{\\frac{1}{2}}`` → ``\\frac{1}{2}``); a match whose brace never
  closes (an output cut off inside it) is not a full answer and is skipped;
* ``json_key`` — the value of a key in a ``{...}`` block of the output parsed as JSON: ``json_object: first`` takes
  the first brace-balanced block only, and finds nothing when that block is not JSON or lacks the key (ZeroEval's
  ``extract_first_complete_json``); ``any`` the first block that parses and holds the key; ``last`` the last
  block. Newlines are removed before parsing (raw newlines in JSON strings are common in model output), and a value
  that is not a string is written as Python's ``str()`` writes it (``5``, ``0.5``, ``None``), as ZeroEval does.
* ``tail`` / ``tail_contains`` — the step applies only when the text occurs within the output's last ``tail``
  characters (ZeroEval's Llama-3.1 fallback: ``"boxed" in output[-30:]``).

Comparison of an extracted answer with the target (``compare``):

* ``exact`` — normalised text (lower case, punctuation removed, whitespace collapsed);
* ``numeric`` — both read as one number (``12 == 12.0``);
* ``first-number`` — the first number in each, compared as floats, after ZeroEval's ``sanitize_math_answers``:
  ``$`` and ``,`` removed, and an answer with a ``/`` replaced by its value when it is plain arithmetic (``3/4`` →
  ``0.75``; the authors call ``eval``, audit evaluates only numbers and arithmetic operators, which gives the same
  value on every arithmetic answer and refuses what is not one). Lenient by design: ``2\\sqrt{2}`` matches ``2``;
* ``math`` — a normalised comparison for LaTeX answers: ``$``, ``\\left``/``\\right``, spacing commands, ``\\text{}``
  wrappers, degree signs, a leading ``x =`` and spaces removed, ``\\dfrac``/``\\tfrac`` read as ``\\frac``; equal
  when the strings are equal, or when both are numbers (``0.5``, ``1/2``, ``\\frac{1}{2}``, ``-\\frac12``) of equal
  value.

Source of the ZeroEval rules: WildEval/ZeroEval ``src/evaluation/math_eval.py`` and ``eval_utils.py`` (commit
8c1485e), read for this module and re-implemented, not copied.
"""

from __future__ import annotations

import ast
import json
import math
import operator
import re
from typing import Any, Callable

from audit.scoring.builtin import normalise, number_of

Extractor = Callable[[str], "str | None"]


# ---------------------------------------------------------------------------------------------------------------
# extraction


def balanced_after(text: str, start: int) -> str | None:
    """The text between ``text[start - 1] == "{"`` and the brace that closes it, or None when it never closes."""
    depth = 1
    for i in range(start, len(text)):
        c = text[i]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[start:i]
    return None


def brace_blocks(text: str):
    """Every top-level brace-balanced ``{...}`` block of ``text``, in order (braces counted as characters, as
    ZeroEval's extract_first_complete_json does, strings included)."""
    depth, begin = 0, None
    for i, c in enumerate(text):
        if c == "{":
            if depth == 0:
                begin = i
            depth += 1
        elif c == "}" and depth:
            depth -= 1
            if depth == 0:
                yield text[begin : i + 1]


def _py_str(v: Any) -> str:
    return v if isinstance(v, str) else str(v)


def json_value(text: str, key: str, which: str = "first") -> str | None:
    """``key`` of a ``{...}`` block of ``text`` parsed as JSON (see the module docstring for ``which``)."""
    found = None
    for block in brace_blocks(text or ""):
        try:
            obj = json.loads(block.replace("\n", ""))
        except (ValueError, RecursionError):
            obj = None
        ok = isinstance(obj, dict) and key in obj
        if which == "first":
            return _py_str(obj[key]) if ok else None
        if ok:
            if which == "any":
                return _py_str(obj[key])
            found = _py_str(obj[key])
    return found


def regex_extractor(
    regex: str,
    group: int = 1,
    select: str = "first",
    ignore_case: bool = False,
    braces: bool = False,
    dotall: bool = False,
) -> Extractor:
    flags = (re.IGNORECASE if ignore_case else 0) | (re.DOTALL if dotall else 0)
    pattern = re.compile(regex, flags)

    def extract(output: str) -> str | None:
        text = output or ""
        if braces:
            got = [a for m in pattern.finditer(text) if (a := balanced_after(text, m.end())) is not None]
        elif select == "first":
            m = pattern.search(text)
            return m.group(group) if m else None
        else:
            got = [m.group(group) for m in pattern.finditer(text)]
        if not got:
            return None
        return got[0] if select == "first" else got[-1]

    return extract


def step_extractor(step) -> Extractor:
    """One extraction step (:class:`audit.scoring.specs.Extraction` or a regex scorer) as a function."""
    base: Extractor
    if getattr(step, "json_key", None):
        key, which = step.json_key, step.json_object

        def json_base(output: str) -> str | None:
            return json_value(output, key, which)

        base = json_base
    else:
        base = regex_extractor(
            step.regex,
            step.group,
            step.select,
            step.ignore_case,
            getattr(step, "braces", False),
            getattr(step, "dotall", False),
        )
    tail, needle = getattr(step, "tail", None), getattr(step, "tail_contains", None)
    if tail is None and needle is None:
        return base

    def gated(output: str) -> str | None:
        text = output or ""
        end = text[-tail:] if tail else text
        return base(text) if (needle or "") in end else None

    return gated


def chain(extractors: list[Extractor]) -> Extractor:
    """The answer of the first extractor that finds one (an empty match counts as found)."""

    def extract(output: str) -> str | None:
        for e in extractors:
            got = e(output)
            if got is not None:
                return got
        return None

    return extract


# ---------------------------------------------------------------------------------------------------------------
# comparison

_OPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.BitXor: operator.xor,
    ast.BitAnd: operator.and_,
    ast.BitOr: operator.or_,
    ast.LShift: operator.lshift,
    ast.RShift: operator.rshift,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
    ast.Invert: operator.invert,
}


def arithmetic(expr: str) -> float:
    """The value of a plain arithmetic expression (numbers, + − × / // % ** and Python's bit operators,
    parentheses): what Python's ``eval`` gives on one, without evaluating anything else. Raises ValueError
    otherwise (names, calls, strings, huge powers)."""
    if len(expr) > 200:
        raise ValueError("too long")
    tree = ast.parse(expr.strip(), mode="eval")

    def ev(node: ast.AST):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, complex)):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            a, b = ev(node.left), ev(node.right)
            if isinstance(node.op, (ast.Pow, ast.LShift)) and abs(b) > 64:
                raise ValueError("power too large")
            return _OPS[type(node.op)](a, b)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](ev(node.operand))
        raise ValueError(f"not arithmetic: {type(node).__name__}")

    return float(ev(tree))


def zeroeval_sanitise(answer: str) -> str:
    """ZeroEval's ``sanitize_math_answers``: drop ``$`` and ``,``; an answer with a ``/`` becomes its value when
    it is arithmetic (``eval`` in the original), else stays as it is."""
    answer = answer.replace("$", "").strip().replace(",", "")
    if "/" in answer:
        try:
            answer = str(arithmetic(answer))
        except (ValueError, TypeError, SyntaxError, ZeroDivisionError, OverflowError, MemoryError, RecursionError):
            pass
    return answer


_FIRST = re.compile(r"-?\d+(\.\d+)?")


def first_number_equal(answer: str, target: str) -> bool:
    """The first number of the sanitised answer equals the first number of the sanitised target (as floats)."""
    a = _FIRST.search(zeroeval_sanitise(answer))
    b = _FIRST.search(zeroeval_sanitise(target.replace("#", "").strip()))
    return bool(a and b and float(a.group()) == float(b.group()))


_TEXT = re.compile(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}")
_FRAC = re.compile(r"^(-?)\\frac\{?(-?\d+(?:\.\d+)?)\}?\{?(-?\d+(?:\.\d+)?)\}?$")


def normalise_math(s: str) -> str:
    s = (s or "").strip()
    s = _TEXT.sub(r"\1", s)
    for a, b in (
        ("\\dfrac", "\\frac"),
        ("\\tfrac", "\\frac"),
        ("\\left", ""),
        ("\\right", ""),
        ("\\!", ""),
        ("\\,", ""),
        ("\\;", ""),
        ("\\:", ""),
        ("\\ ", ""),
        ("$", ""),
        ("^{\\circ}", ""),
        ("^\\circ", ""),
        ("\\%", ""),
        ("%", ""),
        ("\\displaystyle", ""),
    ):
        s = s.replace(a, b)
    s = re.sub(r"\s+", "", s)
    s = re.sub(r"^[a-zA-Z]=", "", s)
    s = s.rstrip(".")
    while len(s) > 1 and s.startswith("{") and s.endswith("}") and balanced_after(s, 1) == s[1:-1]:
        s = s[1:-1]
    return s


def _math_number(s: str) -> float | None:
    t = s.replace(",", "") if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", s) else s
    n = number_of(t)
    if n is not None:
        return float(n)
    m = _FRAC.match(t)
    if m:
        sign, num, den = m.groups()
        try:
            v = float(num) / float(den)
        except ZeroDivisionError:
            return None
        return -v if sign else v
    m = re.fullmatch(r"(-?\d+(?:\.\d+)?)/(-?\d+(?:\.\d+)?)", t)
    if m:
        try:
            return float(m.group(1)) / float(m.group(2))
        except ZeroDivisionError:
            return None
    return None


def math_equal(answer: str, target: str) -> bool:
    """Normalised LaTeX equality, or equal numeric value (see the module docstring)."""
    a, b = normalise_math(answer), normalise_math(target)
    if a == b and a != "":
        return True
    x, y = _math_number(a), _math_number(b)
    return x is not None and y is not None and math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)


def compare(mode: str, answer: str | None, target: str | None) -> float:
    """1.0 when ``answer`` matches ``target`` under ``mode``, else 0.0 (no answer: 0.0)."""
    if answer is None:
        return 0.0
    target = target or ""
    if mode == "numeric":
        a, b = number_of(answer), number_of(target)
        return float(a is not None and a == b)
    if mode == "first-number":
        return float(first_number_equal(answer, target))
    if mode == "math":
        return float(math_equal(answer, target))
    return float(normalise(answer) == normalise(target))


COMPARE_MODES = ("exact", "numeric", "first-number", "math")
