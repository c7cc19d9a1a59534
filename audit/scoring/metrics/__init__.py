"""Hugging Face ``evaluate`` modules for audit's built-in scorers, loadable offline by local path.

Each module is a folder holding ``<name>.py`` (the layout ``evaluate.load`` expects of a local module)::

    import evaluate
    from audit.scoring.metrics import path_of
    m = evaluate.load(str(path_of("edit_similarity")))          # no network needed
    m.compute(predictions=["kitten"], references=["sitting"])    # {'edit_similarity': 0.571...}

In a claim, ``evaluate:edit_similarity`` (a shipped module's name) or ``evaluate:path/to/folder`` loads a module
the same way. Every module reports the mean over the items of the built-in scorer it wraps (see
:data:`MODULES`), so ``evaluate`` users and audit score identically. Names that exist on the Hugging Face Hub
with another meaning carry an ``_audit`` suffix.
"""

from __future__ import annotations

from pathlib import Path

from audit.scoring.builtin import BUILTIN
from audit.scoring.builtin import KINDS as SCORER_KINDS

HERE = Path(__file__).resolve().parent

MODULES: dict[str, str] = {r.evaluate_module: name for name, r in BUILTIN.items() if r.evaluate_module}
"""Shipped module name → the built-in scorer (:data:`audit.scoring.SCORERS`) it computes."""


def path_of(name: str) -> Path | None:
    """The folder of the shipped module ``name`` (None when audit ships no module of that name)."""
    return HERE / name if name in MODULES else None


def local_name(module: str) -> str | None:
    """The shipped module that ``module`` (a name, folder or ``.py`` path) refers to, if any."""
    if module in MODULES:
        return module
    try:
        p = Path(module).resolve()
    except OSError:
        return None
    if p.suffix == ".py":
        p = p.parent
    return p.name if p.parent == HERE and p.name in MODULES else None


KINDS = {m: SCORER_KINDS[s] for m, s in MODULES.items()}
"""Shipped module name → whether its scorer is discontinuous or continuous (:data:`audit.scoring.KINDS`)."""
