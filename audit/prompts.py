"""Prompt and target templates (jinja2, StrictUndefined: a field the row lacks is an error, not an empty string).

Templates come from claim files, so they are rendered in jinja2's sandbox (no attribute walks to Python
internals) with bounds the sandbox itself lacks:

* a rendered prompt (or target) holds at most :data:`MAX_PROMPT_CHARS` characters: the output is streamed and cut
  off at the cap, and the operations that build big strings in one step (``'a' * n``, ``'%9999999d' % x``,
  ``s.ljust(n)``, ``center``/``indent``/``format``/``join``/``replace``, ``**``) are refused beforehand when their
  result would pass the cap;
* ``range()`` is capped by the sandbox (100,000 items); an OverflowError, a ZeroDivisionError or any other error
  in a template is a located input error naming the template, never a crash;
* rendering one row may take at most :data:`MAX_RENDER_S` seconds (a template that loops for hours is stopped);
* ``lipsum()`` (which generates text without bound) is not available.
"""

from __future__ import annotations

import math
import re
import threading
from functools import lru_cache
from typing import Any

from audit.errors import InputError, Problem

MAX_PROMPT_CHARS = 1_000_000
"""Largest rendered prompt or target, in characters (about 250k tokens: more than any model's context)."""
MAX_RENDER_S = 10.0
"""Longest time rendering one template for one row may take."""
_MAX_POW_BITS = 100_000
_WIDTH = re.compile(r"(\d{7,})")


class TemplateLimit(Exception):
    """A template operation would pass a bound (size or time)."""


class RenderStopped(TemplateLimit):
    """Rendering one row ran past its time or memory bound (the other rows would do the same)."""


class _Timeout(BaseException):
    """Raised inside a rendering thread when it runs past its deadline (BaseException: jinja must not swallow it)."""


def _size(x: Any) -> int | None:
    return len(x) if isinstance(x, (str, bytes, list, tuple)) else None


def _too_big(n: float, what: str) -> None:
    if n > MAX_PROMPT_CHARS:
        raise TemplateLimit(
            f"{what} would hold {int(min(n, 1e18)):,} items or characters (the cap on a rendered "
            f"prompt is {MAX_PROMPT_CHARS:,})"
        )


def _check_format_string(fmt: Any) -> None:
    m = _WIDTH.search(fmt) if isinstance(fmt, str) else None
    if m is not None:
        raise TemplateLimit(
            f"a format width or precision of {m.group()} (the cap on a rendered "
            f"prompt is {MAX_PROMPT_CHARS:,} characters)"
        )


def _check_binop(op: str, left: Any, right: Any) -> None:
    if op == "*":
        for seq, n in ((left, right), (right, left)):
            size = _size(seq)
            if size is not None and isinstance(n, int):
                _too_big(size * max(n, 0), "'*' repetition")
    elif op == "+":
        a, b = _size(left), _size(right)
        if a is not None and b is not None:
            _too_big(a + b, "'+' concatenation")
    elif op == "%":
        if isinstance(left, str):
            _check_format_string(left)
            args = right if isinstance(right, tuple) else (right,)
            if "*" in left and any(isinstance(a, int) and a > MAX_PROMPT_CHARS for a in args):
                _too_big(max(a for a in args if isinstance(a, int)), "'%' formatting")
    elif op == "**":
        if isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0:
            if right * math.log2(abs(left)) > _MAX_POW_BITS:
                raise TemplateLimit(f"{left} ** {right} has more than {_MAX_POW_BITS:,} bits")


def _check_call(obj: Any, args: tuple, kwargs: dict) -> None:
    inner = getattr(obj, "__wrapped__", obj)  # jinja wraps str.format in a function of its own
    owner = getattr(inner, "__self__", None)
    name = getattr(inner, "__name__", "")
    if not isinstance(owner, str):
        return
    ints = [a for a in (*args, *kwargs.values()) if isinstance(a, int)]
    if name in ("ljust", "rjust", "center", "zfill") and ints:
        _too_big(max(ints), f"str.{name}()")
    elif name == "expandtabs" and ints:
        _too_big(owner.count("\t") * max(ints[0], 0) + len(owner), "str.expandtabs()")
    elif name in ("format", "format_map"):
        _check_format_string(owner)
    elif name == "join" and args:
        items = args[0]
        if isinstance(items, (list, tuple)):
            _too_big(sum(len(i) if isinstance(i, str) else 0 for i in items) + len(owner) * len(items), "str.join()")
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        hits = owner.count(args[0]) if args[0] else len(owner) + 1
        _too_big(len(owner) + hits * len(args[1]), "str.replace()")


def _bounded_filters(filters: dict) -> dict:
    """The built-in filters that can build a big string from small arguments, each checked first."""
    out = dict(filters)
    center, indent, fmt, join, replace = (filters[n] for n in ("center", "indent", "format", "join", "replace"))

    def do_center(value, width=80):
        _too_big(width if isinstance(width, int) else 0, "the center filter")
        return center(value, width)

    def do_indent(s, width=4, *args, **kwargs):
        w = width if isinstance(width, int) else len(str(width))
        _too_big(str(s).count("\n") * w + len(str(s)), "the indent filter")
        return indent(s, width, *args, **kwargs)

    def do_format(value, *args, **kwargs):
        _check_format_string(value)
        return fmt(value, *args, **kwargs)

    def do_join(ctx, value, d="", attribute=None):
        if isinstance(value, (list, tuple)):
            _too_big(sum(len(str(v)) for v in value[:MAX_PROMPT_CHARS]) + len(str(d)) * len(value), "the join filter")
        return join(ctx, value, d, attribute)

    def do_replace(ctx, s, old, new, count=None):
        s_, o_, n_ = str(s), str(old), str(new)
        hits = s_.count(o_) if o_ else len(s_) + 1
        if isinstance(count, int) and count >= 0:
            hits = min(hits, count)
        _too_big(len(s_) + hits * len(n_), "the replace filter")
        return replace(ctx, s, old, new, count)

    from jinja2.utils import pass_eval_context

    do_join = pass_eval_context(do_join)
    do_replace = pass_eval_context(do_replace)
    out.update(center=do_center, indent=do_indent, format=do_format, join=do_join, replace=do_replace)
    return out


@lru_cache(maxsize=1)
def environment():
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    class BoundedSandbox(SandboxedEnvironment):
        intercepted_binops = frozenset(["*", "+", "%", "**"])

        def call_binop(self, context, operator, left, right):
            _check_binop(operator, left, right)
            return super().call_binop(context, operator, left, right)

        def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 - jinja's own signature
            _check_call(__obj, args, kwargs)
            return super().call(__context, __obj, *args, **kwargs)

    # Prompts are plain text, not HTML: no autoescape. Sandboxed because templates come from claim files.
    env = BoundedSandbox(undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False)
    env.filters = _bounded_filters(env.filters)
    env.globals.pop("lipsum", None)
    return env


MAX_RENDER_BYTES = 512 << 20
"""Most memory rendering one row may add (checked every 20 ms where /proc/self/statm exists)."""


def _rss() -> int | None:
    try:
        with open("/proc/self/statm", "rb") as fh:
            import os

            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


class _Watchdog:
    """Interrupt the rendering thread with ``_Timeout`` when one row runs past :data:`MAX_RENDER_S` or grows the
    process by more than :data:`MAX_RENDER_BYTES` (CPython's asynchronous exception, delivered between bytecodes:
    a template's loops cannot outrun it, and every single operation is bounded by the size checks above)."""

    def __init__(self) -> None:
        self.tid = threading.get_ident()
        self.lock = threading.Lock()
        self.armed_at: float | None = None
        self.rss0: int | None = None
        self.fired: str | None = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="audit-template-watchdog", daemon=True)

    def _watch(self) -> None:
        import ctypes
        import time

        while not self.stop.wait(0.02):
            with self.lock:
                if self.armed_at is None or self.fired:
                    continue
                why = None
                if time.monotonic() - self.armed_at > MAX_RENDER_S:
                    why = f"rendering took longer than {MAX_RENDER_S:g} s (the limit per row)"
                elif self.rss0 is not None and (rss := _rss()) is not None and rss - self.rss0 > MAX_RENDER_BYTES:
                    why = f"rendering used more than {MAX_RENDER_BYTES >> 20} MiB of memory (the limit per row)"
                if why:
                    self.fired = why
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self.tid), ctypes.py_object(_Timeout))

    def arm(self) -> None:
        import time

        with self.lock:
            self.fired = None
            self.rss0 = _rss()
            self.armed_at = time.monotonic()

    def disarm(self) -> str | None:
        import ctypes

        with self.lock:
            self.armed_at = None
            fired, self.fired = self.fired, None
            if fired:  # clear an exception that was set but not yet raised
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self.tid), None)
        return fired

    def __enter__(self) -> "_Watchdog":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disarm()
        self.stop.set()
        self.thread.join()


def render_one(tmpl: Any, row: dict[str, Any], watchdog: _Watchdog | None = None) -> str:
    """Render a compiled template for one row within the bounds above; raises TemplateLimit or the template's error."""
    parts: list[str] = []
    size = 0
    if watchdog is None:
        with _Watchdog() as wd:
            return render_one(tmpl, row, wd)
    watchdog.arm()
    try:
        for chunk in tmpl.generate(**row):
            size += len(chunk)
            if size > MAX_PROMPT_CHARS:
                raise TemplateLimit(
                    f"the rendered text passes {MAX_PROMPT_CHARS:,} characters (the cap on a rendered prompt)"
                )
            parts.append(chunk)
    except _Timeout:
        parts.clear()
        why = watchdog.disarm()
        raise RenderStopped(why or "rendering was interrupted") from None
    finally:
        why = watchdog.disarm()
    if why:  # fired after the last chunk, before the exception was raised: it has been cleared
        raise RenderStopped(why)
    return "".join(parts)


def render_all(template: str, rows: list[dict[str, Any]], where: str, file: str, lines: list[int]) -> list[str]:
    """Render ``template`` for every row; every failing row is reported (up to 10), with its dataset line and the
    template's name (``where``)."""
    from jinja2 import TemplateSyntaxError

    try:
        tmpl = environment().from_string(template)
    except TemplateSyntaxError as exc:
        raise InputError(
            [
                Problem(
                    f"jinja2 syntax error: {exc.message}",
                    field=where,
                    fix="check the {{ }} / {% %} pairs in the template",
                )
            ]
        ) from None
    except (RecursionError, MemoryError):
        raise InputError(
            [Problem("the template is nested too deeply to compile", field=where, fix="simplify the template")]
        ) from None
    out: list[str] = []
    problems: list[Problem] = []
    with _Watchdog() as wd:
        for row, line in zip(rows, lines):
            try:
                out.append(_render_row(tmpl, row, line, where, file, wd, problems))
            except RenderStopped as exc:
                problems.append(
                    Problem(
                        f"{exc}; stopped at this row (every row runs the same template)",
                        file=file,
                        line=line,
                        field=where,
                        fix="check the template for loops or repetition that never end",
                    )
                )
                break
    if problems:
        raise InputError(problems)
    return out


def _render_row(tmpl, row, line, where, file, wd, problems) -> str:
    try:
        return render_one(tmpl, row, wd)
    except RenderStopped:
        raise
    except TemplateLimit as exc:
        if len(problems) < 10:
            problems.append(
                Problem(
                    str(exc),
                    file=file,
                    line=line,
                    field=where,
                    fix="check the template for unbounded repetition ('x' * n, loops, padding)",
                )
            )
    except Exception as exc:  # the template is user input: any error it raises is an input error
        if len(problems) < 10:
            msg = str(exc) or type(exc).__name__
            kind = "" if type(exc).__module__.startswith("jinja2") else f"{type(exc).__name__}: "
            problems.append(
                Problem(
                    f"cannot render the template for this row: {kind}{msg}",
                    file=file,
                    line=line,
                    field=where,
                    fix=f"the row's keys are {sorted(row)[:20]}; fix the template or the row",
                )
            )
    return ""
