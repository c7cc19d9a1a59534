"""The check registry: a plain dict of name → :class:`CheckSpec`.

A check is a pure function ``(Context, params) -> list[Finding]``. It never talks to servers and never joins arms on
its own (it asks ``ctx.records.paired``). A check that cannot compute returns an *inconclusive* finding with the
reason, never a fake 0.
"""

from __future__ import annotations

from audit.checks import (
    emergence,
    extraction,
    mimicry,
    ood,
    probes,
    reported_numbers,
    scoring,
    settings,
    significance,
    truncation,
)
from audit.checks import item_sets, lengths, log_integrity, reduction, results_config
from audit.checks._common import CheckSpec, Context


MODULES = (
    significance,
    truncation,
    scoring,
    reported_numbers,
    ood,
    probes,
    emergence,
    mimicry,
    settings,
    extraction,
    log_integrity,
    item_sets,
    lengths,
    results_config,
    reduction,
)
"""Every check module, in the order the audit runs them (and the report lists them). Adding a check is adding its
module here (CONTRIBUTING.md, "A check")."""

REGISTRY: dict[str, CheckSpec] = {m.SPEC.name: m.SPEC for m in MODULES}


__all__ = ["MODULES", "REGISTRY", "CheckSpec", "Context"]
