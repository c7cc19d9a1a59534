"""The check registry: a plain dict of name → :class:`CheckSpec`.

A check is a pure function ``(Context, params) -> list[Finding]``. It never talks to servers and never joins arms on
its own (it asks ``ctx.records.paired``). A check that cannot compute returns an *inconclusive* finding with the
reason, never a fake 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from pydantic import BaseModel

from audit.checks import (emergence, extraction, mimicry, ood, probes, reported_numbers, scoring, settings,
                          significance, truncation)
from audit.checks import item_sets, lengths, log_integrity, reduction, results_config
from audit.checks._common import Context


@dataclass(frozen=True)
class CheckSpec:
    name: str
    run: Callable[[Context, BaseModel], list]
    params: type[BaseModel]
    needs_samples: bool
    description: str


REGISTRY: dict[str, CheckSpec] = {
    "significance": CheckSpec("significance", significance.run, significance.Params, False,
                              "the delta at the claimed setting, its CI, the right test for the design, power/MDE"),
    "truncation": CheckSpec("truncation", truncation.run, truncation.Params, True,
                            "outputs that hit the generation budget; the delta per budget and on untruncated items"),
    "scoring": CheckSpec("scoring", scoring.run, scoring.Params, True,
                         "the delta under every scoring; arms scored with different extractors or metric versions"),
    "reported_numbers": CheckSpec("reported_numbers", reported_numbers.run, reported_numbers.Params, False,
                                  "reported rates, delta and p-value against k/n granularity and the standard tests"),
    "ood": CheckSpec("ood", ood.run, ood.Params, True,
                     "the delta under every OOD prompt variant; intersection-union or Holm, as the claim asks"),
    "probes": CheckSpec("probes", probes.run, probes.Params, False,
                        "probe AUC in distribution vs OOD: DeLong CIs, Mann-Whitney vs chance, paired DeLong ID vs OOD"),
    "emergence": CheckSpec("emergence", emergence.run, emergence.Params, True,
                           "delta under discontinuous vs continuous metrics; exact match predicted from per-token "
                           "accuracy (p^L); resolution at 0/n"),
    "mimicry": CheckSpec("mimicry", mimicry.run, mimicry.Params, True,
                         "disposition markers (self-verification, hedges) vs correctness; stated confidence vs "
                         "correctness"),
    "settings": CheckSpec("settings", settings.run, settings.Params, True,
                          "the arms' effective settings side by side; differences not declared as treatment changes; "
                          "budget-sweep derivation mismatches"),
    "extraction": CheckSpec("extraction", extraction.run, extraction.Params, True,
                            "outputs with no extractable answer per arm; their asymmetry; the delta on answered items"),
    "log_integrity": CheckSpec("log_integrity", log_integrity.run, log_integrity.Params, True,
                               "lm-eval samples vs their results file: document counts, filters, each filter's metric "
                               "recomputed"),
    "item_sets": CheckSpec("item_sets", item_sets.run, item_sets.Params, True,
                           "arms run on different item sets: the items only one arm has; the published unpaired "
                           "comparison beside the paired one on the shared items"),
    "lengths": CheckSpec("lengths", lengths.run, lengths.Params, True,
                         "the arms' output lengths (characters, words, tokens) and their paired difference, beside "
                         "the gain where the treatment is longer and where it is not"),
    "results_config": CheckSpec("results_config", results_config.run, results_config.Params, False,
                                "results-only claims: the rates and n read from each run's results_*.json, and the "
                                "runs' configs compared as the settings check compares samples"),
    "reduction": CheckSpec("reduction", reduction.run, reduction.Params, True,
                           "several outputs per item: arms reduced differently (mean vs any-of-k, pass@k, majority) "
                           "and the like-for-like deltas"),
}

__all__ = ["REGISTRY", "CheckSpec", "Context"]
