"""Shared test helpers: write claims and generic JSONL logs into a temporary folder."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def arm_rows(correct: list[int], texts: list[str] | None = None, finish: list[str | None] | None = None,
             scores: dict[str, list[float]] | None = None) -> list[dict]:
    """Generic JSONL rows: item i is correct when correct[i] == 1 (target "1", output "1" or "0")."""
    rows = []
    for i, c in enumerate(correct):
        r = {"id": f"q{i:04d}", "output": texts[i] if texts else ("1" if c else "0"), "target": "1"}
        if finish is not None and finish[i] is not None:
            r["finish_reason"] = finish[i]
        if scores is not None:
            r["scores"] = {k: v[i] for k, v in scores.items()}
        rows.append(r)
    return rows


@pytest.fixture
def claim_dir(tmp_path: Path) -> Callable[..., Path]:
    """Write a claim (dict) plus logs (name → rows) into tmp_path; return the claim path."""

    def make(claim: dict, logs: dict[str, list[dict]] | None = None, name: str = "claim.yaml") -> Path:
        for rel, rows in (logs or {}).items():
            write_jsonl(tmp_path / rel, rows)
        p = tmp_path / name
        p.write_text(yaml.safe_dump(claim, sort_keys=False), encoding="utf-8")
        return p

    return make


def jsonl_claim(budgets: list[int], claimed: int, scorings: list[str] | None = None, **reported) -> dict:
    return {
        "claim": {"title": "synthetic", "metric": "exact_match", "reported": reported,
                  "settings": {"max_tokens": claimed}},
        "samples": {"format": "jsonl",
                    "baseline": {b: f"logs/base_{b}.jsonl" for b in budgets},
                    "treatment": {b: f"logs/treat_{b}.jsonl" for b in budgets}},
        "perturbations": {"scorings": scorings or ["exact"]},
        "options": {"resamples": 2000},
    }
