"""Prompt and target templates (jinja2, StrictUndefined: a field the row lacks is an error, not an empty string)."""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from audit.errors import InputError, Problem


@lru_cache(maxsize=1)
def environment():
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    # Prompts are plain text, not HTML: no autoescape. Sandboxed because templates come from claim files.
    return SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False)


def render_all(template: str, rows: list[dict[str, Any]], where: str, file: str, lines: list[int]) -> list[str]:
    """Render ``template`` for every row; every failing row is reported (up to 10), with its dataset line."""
    from jinja2 import TemplateError

    tmpl = environment().from_string(template)
    out, problems = [], []
    for row, line in zip(rows, lines):
        try:
            out.append(tmpl.render(**row))
        except TemplateError as exc:
            if len(problems) < 10:
                problems.append(Problem(f"{where}: cannot render for this row: {exc}", file=file, line=line,
                                        fix=f"the row's keys are {sorted(row)}; fix the template or the row"))
            out.append("")
    if problems:
        raise InputError(problems)
    return out
