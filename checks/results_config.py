"""results_config: a results-only claim (``samples.format: lm-eval-results``) — what was read, and were the two runs
configured alike?

A folder of ``results_*.json`` per model, without per-sample logs, can still be audited from the counts it publishes:
the claim loader (:func:`audit.claim.load_claim`) reads each arm's rate and n for the claim's task and filter and
writes them as the reported ``{passes, n}``, so the significance and reported-numbers checks audit from counts
(Miettinen–Nurminen score test and interval, Fisher beside) with no hand arithmetic. This check says what was read
(file, task, metric and filter, published value, k/n) and compares the runs' configurations exactly as the settings
check compares the settings of replayed samples (:func:`audit.checks.settings.run`, the same rules and severities):
generation kwargs (greedy vs sampled, ``max_gen_toks``, ``until``), the command-line ``--gen_kwargs``, n-shot, the
model arguments beyond the model's name, task versions and harness versions.
"""

from __future__ import annotations

import dataclasses

import pandas as pd

from audit.check_params import ResultsConfigParams
from audit.checks import settings as settings_check
from audit.checks._common import CheckSpec, Context
from audit.findings import Finding, Outcome
from audit.records import COLUMNS, Records

NAME = "results_config"

Params = ResultsConfigParams


def run(ctx: Context, params: Params) -> list[Finding]:
    read = ctx.claim.results_only
    if not read:
        return []
    budget = ctx.claimed_budget
    rows = [
        {
            "arm": arm,
            "results_file": r["results_file"],
            "sha256": r["sha256"],
            "task": r["task"],
            "metric": r["metric"],
            "filter": r["filter"],
            "published": r["value"],
            "passes": r["passes"],
            "n": r["n"],
        }
        for arm, r in read.items()
    ]
    b, t = read["baseline"], read["treatment"]
    findings = [
        Finding(
            NAME,
            "read",
            Outcome.info,
            f"Audited from the published counts: baseline {b['passes']}/{b['n']} ({b['metric']},{b['filter']} = "
            f"{b['value']:.6g}) vs treatment {t['passes']}/{t['n']} ({t['value']:.6g}), task {b['task']!r}",
            detail="No per-sample logs: each arm's rate and n were read from its results_*.json and k = rate × n "
            "checked to be a whole number of documents; the tests on these counts are unpaired (the pairing of items, "
            "and every per-item check, needs --log_samples output).",
            rows=rows,
            provenance=ctx.provenance(source="results_*.json of each run", n="n-samples effective (else sample_len)"),
        )
    ]
    stub = Records(
        table=pd.DataFrame(columns=COLUMNS), settings={arm: {budget: r["settings"]} for arm, r in read.items()}
    )
    sub = dataclasses.replace(ctx, records=stub, _memo={})
    for f in settings_check.run(sub, params):
        findings.append(f.model_copy(update={"check": NAME, "subject": f.subject.model_copy(update={"check": NAME})}))
    return findings


SPEC = CheckSpec(
    NAME,
    run,
    Params,
    needs_samples=False,
    description="results-only claims: the rates and n read from each run's results_*.json, and the "
    "runs' configs compared as the settings check compares samples",
)
"""This check in the registry (:data:`audit.checks.REGISTRY`)."""
