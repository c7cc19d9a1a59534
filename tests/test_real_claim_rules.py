"""Verdicts on the shapes real published claims take (issue: right verdicts on real published claims).

Each numbered case of the issue on a small fixed table, in memory: the evidence about the *gain* decides; reported
rates, n or p that the logs do not reproduce are findings of their own; untrusted input caps every verdict; a
degenerate scoring is no evidence; mimicry flags need a material treatment effect; "smaller than reported" allows
the rounding of the reported number; a gain understated in the paper does not make its perturbations look material;
a reported CI alone is used; a supported verdict says what it rests on.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from audit.claim import Claim
from audit.errors import InputError
from audit.findings import Finding
from audit.records import Records
from audit.verify import decide, verify


def paired(b: int, c: int, both: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    """0/1 arms with b treatment-only passes, c baseline-only passes, and the concordant counts."""
    base = np.array([0] * b + [1] * c + [1] * both + [0] * neither, dtype=float)
    treat = np.array([1] * b + [0] * c + [1] * both + [0] * neither, dtype=float)
    return base, treat


def block(arm, scores, budget=512, scoring="exact", variant="default", answered=None, texts=None, ids=None):
    n = len(scores)
    ids = ids if ids is not None else [f"q{i:05d}" for i in range(n)]
    return pd.DataFrame({
        "arm": [arm] * n, "item_id": ids, "variant": [variant] * n, "budget": [budget] * n, "scoring": [scoring] * n,
        "score": list(map(float, scores)), "text": list(texts) if texts is not None else ["x"] * n,
        "target": ["1"] * n, "finish_reason": ["stop"] * n, "completion_tokens": [1.0] * n, "prompt_hash": [None] * n,
        "doc_hash": [None] * n, "source": ["mem"] * n, "line": list(range(1, n + 1)), "extracted": [None] * n,
        "cluster": [None] * n,
        "answered": list(map(float, answered)) if answered is not None else [math.nan] * n})


def records(*blocks) -> Records:
    return Records(table=pd.concat(blocks, ignore_index=True))


def claim(budgets=(512,), scorings=("exact",), variants=(), reported=None, options=None, direction="greater",
          checks=None, changes=()) -> Claim:
    logs = {b: f"mem/{b}" for b in budgets}
    return Claim.model_validate({
        "claim": {"title": "rule", "direction": direction, "reported": reported or {},
                  "settings": {"max_tokens": budgets[0], "scoring": scorings[0]},
                  "treatment_changes": list(changes)},
        "samples": {"format": "jsonl", "baseline": logs, "treatment": logs,
                    "variants": {v: {"baseline": logs, "treatment": logs} for v in variants}},
        "perturbations": {"scorings": list(scorings)},
        "options": {"resamples": 1000, **(options or {})},
        **({"checks": checks} if checks else {}),
    })


def by(out, check, code):
    return [f for f in out.findings if f.check == check and f.code == code]


def gain_0300_0380() -> tuple[np.ndarray, np.ndarray]:
    """1,000 items: baseline 300/1000, treatment 380/1000 (+0.080, McNemar p ≈ 2e-10)."""
    return paired(b=120, c=40, both=260, neither=580)


# --- 1. reported rates and n that the logs do not reproduce ---------------------------------------------------------


def test_rates_off_by_a_point_with_the_delta_reproduced_are_supported():
    """Reported 0.31 / 0.39 over logs 0.300 / 0.380, the delta +0.08 reproduced exactly: was not_reproduced."""
    b, t = gain_0300_0380()
    out = verify(claim(reported={"baseline": 0.31, "treatment": 0.39, "delta": 0.08}),
                 records=records(block("baseline", b), block("treatment", t)))
    assert out.report.verdict == "supported", out.report.verdict_reason
    diffs = by(out, "reported_numbers", "differs_from_logs")
    assert len(diffs) == 2
    # 0.01 apart, inside the materiality margin (half the +0.08 gain): a minor finding that moves nothing.
    assert all(f.severity == "minor" and f.impact == "none" for f in diffs)


def test_a_reported_n_two_items_off_is_a_minor_finding():
    b, t = gain_0300_0380()
    b, t = b[:998], t[:998]
    out = verify(claim(reported={"delta": 0.08, "n": 1000}), records=records(block("baseline", b),
                                                                              block("treatment", t)))
    assert out.report.verdict == "supported", out.report.verdict_reason
    (f,) = by(out, "reported_numbers", "n_mismatch")
    assert f.severity == "minor" and f.impact == "none"


def test_unanswered_items_credited_at_chance_explain_the_reported_rates():
    """Logs 300/1000 (80 unanswered) and 380/1000 (40 unanswered); the paper credits an unanswered item at 1/4:
    (300 + 20)/1000 = 0.320 and (380 + 10)/1000 = 0.390."""
    b, t = gain_0300_0380()
    ans_b = np.ones(1000)
    ans_b[np.flatnonzero(b == 0)[:80]] = 0
    ans_t = np.ones(1000)
    ans_t[np.flatnonzero(t == 0)[:40]] = 0
    out = verify(claim(reported={"baseline": 0.320, "treatment": 0.390}),
                 records=records(block("baseline", b, answered=ans_b), block("treatment", t, answered=ans_t)))
    (f,) = by(out, "reported_numbers", "explained_by_convention")
    assert f.outcome == "info" and f.statistic["convention"] == "chance_1_4"
    assert "credited at chance (1/4)" in f.title
    assert f.statistic["baseline_convention_rate"] == pytest.approx(0.32)
    assert not by(out, "reported_numbers", "differs_from_logs")
    assert out.report.verdict == "supported", out.report.verdict_reason


def test_unanswered_items_dropped_explain_the_reported_rates():
    b, t = gain_0300_0380()
    ans_b = np.ones(1000)
    ans_b[np.flatnonzero(b == 0)[:100]] = 0      # 300/900 = 0.3333
    ans_t = np.ones(1000)
    ans_t[np.flatnonzero(t == 0)[:50]] = 0       # 380/950 = 0.4
    out = verify(claim(reported={"baseline": 0.333, "treatment": 0.400}),
                 records=records(block("baseline", b, answered=ans_b), block("treatment", t, answered=ans_t)))
    (f,) = by(out, "reported_numbers", "explained_by_convention")
    assert f.statistic["convention"] == "dropped"


def test_material_mismatch_of_both_rates_caps_at_inconclusive():
    """Reported 0.50 / 0.58 over logs 0.300 / 0.380: neither arm reproduces and the gap is far beyond the margin;
    the logs or the scoring are not those behind the numbers, whatever the delta says."""
    b, t = gain_0300_0380()
    out = verify(claim(reported={"baseline": 0.50, "treatment": 0.58}),
                 records=records(block("baseline", b), block("treatment", t)))
    assert out.report.verdict == "inconclusive"
    assert all(f.impact == "untrusted_input" and f.severity == "major"
               for f in by(out, "reported_numbers", "differs_from_logs"))


def test_one_arm_reproducing_leaves_the_verdict_to_the_delta():
    """The baseline reproduces, the treatment is reported 0.2 higher than its logs: the gap is the delta's, which the
    significance check refutes (not_reproduced), and the rate finding does not cap it."""
    b, t = paired(b=40, c=40, both=160, neither=160)          # 0.5 vs 0.5 on 400
    out = verify(claim(reported={"baseline": 0.5, "treatment": 0.7, "delta": 0.2}),
                 records=records(block("baseline", b), block("treatment", t)))
    assert out.report.verdict == "not_reproduced"
    (f,) = by(out, "reported_numbers", "differs_from_logs")
    assert f.severity == "major" and f.impact == "none"


def test_internally_inconsistent_reported_numbers_cap_rather_than_refute():
    c = Claim.model_validate({"claim": {"title": "table", "reported": {"baseline": 0.153, "treatment": 0.30,
                                                                        "delta": 0.18, "n": 40}}})
    out = verify(c)
    assert out.report.verdict == "inconclusive"
    assert {f.code for f in out.findings if f.impact == "untrusted_input"} >= {"impossible_rate", "delta_arithmetic"}


# --- 2. untrusted input caps first ---------------------------------------------------------------------------------


def _f(impact: str, title: str, severity: str = "major") -> Finding:
    return Finding("x", "c", "flag" if impact != "reproduced" else "pass", title, severity=severity, impact=impact)


def test_untrusted_input_caps_a_reversal_too():
    verdict, reason = decide([_f("not_reproduced", "reversed", "critical"), _f("untrusted_input", "trimmed log")])
    assert verdict == "inconclusive" and reason.startswith("trimmed log")


# --- 3. a degenerate scoring is no evidence ------------------------------------------------------------------------


def test_a_scoring_that_scores_everything_zero_cannot_make_a_gain_fragile():
    b, t = gain_0300_0380()
    zeros = np.zeros(1000)
    out = verify(claim(scorings=("exact", "broken")),
                 records=records(block("baseline", b), block("treatment", t),
                                 block("baseline", zeros, scoring="broken"), block("treatment", zeros, scoring="broken")))
    assert out.report.verdict == "supported", out.report.verdict_reason
    (f,) = by(out, "scoring", "degenerate")
    assert f.severity == "major" and f.impact == "none" and "'broken'" in f.title
    assert not [pt for pt in out.findings if pt.statistic.get("scoring") == "broken" and "family_size" in pt.statistic]
    assert "scoring (every other scoring is degenerate)" in out.report.verdict_reason
    assert not [g for g in out.findings if g.severity == "critical"]


def test_a_degenerate_claimed_scoring_is_inconclusive_not_refuted():
    zeros = np.zeros(300)
    out = verify(claim(reported={"delta": 0.1}), records=records(block("baseline", zeros), block("treatment", zeros)))
    assert out.report.verdict == "inconclusive"
    assert by(out, "significance", "degenerate_scoring")


# --- 5. "smaller than reported" allows the rounding of the reported number ------------------------------------------


def test_a_rounded_report_is_not_refuted_by_a_precise_measurement(tmp_path):
    """n = 50,000, measured +0.096 [+0.093, +0.099], reported +0.10 (two decimals: ±0.005) → was not_reproduced.
    The claim file says "0.10": its precision comes from the text (YAML alone reads 0.1, ±0.05)."""
    b, t = paired(b=5150, c=350, both=15000, neither=29500)
    (tmp_path / "mem").write_text("")  # the logs are given in memory; the claim only has to name a file
    path = tmp_path / "claim.yaml"
    path.write_text("claim:\n  title: rounded\n  reported: {delta: 0.10}\n  settings: {max_tokens: 512, scoring: exact}\n"
                    "samples: {format: jsonl, baseline: {512: mem}, treatment: {512: mem}}\n"
                    "options: {resamples: 1000}\n")
    from audit.claim import load_claim

    out = verify(load_claim(path), records=records(block("baseline", b), block("treatment", t)))
    (cell,) = out.report.cells
    assert cell.delta == pytest.approx(0.096) and cell.ci_high < 0.10
    assert out.report.verdict == "supported", out.report.verdict_reason
    (f,) = by(out, "significance", "reproduced")
    assert f.statistic["reported_tolerance"] == pytest.approx(0.005)
    assert f.statistic["p_below_reported"] > 0.025


def test_a_shortfall_beyond_the_rounding_is_still_refuted():
    """The same data against a reported +0.110: beyond +0.105, refuted."""
    b, t = paired(b=5150, c=350, both=15000, neither=29500)
    out = verify(claim(reported={"delta": 0.110}), records=records(block("baseline", b), block("treatment", t)))
    assert out.report.verdict == "not_reproduced"


def test_options_margin_widens_the_tolerance():
    b, t = paired(b=5150, c=350, both=15000, neither=29500)
    out = verify(claim(reported={"delta": 0.110}, options={"margin": 0.02}),
                 records=records(block("baseline", b), block("treatment", t)))
    assert out.report.verdict == "supported", out.report.verdict_reason


# --- 6. an understated reported delta does not set the margin -------------------------------------------------------


def test_a_gain_understated_in_the_paper_is_not_fragile_when_it_stays_above_the_claim():
    """+0.10 at 512, +0.075 at 1024 (outputs re-drawn), reported +0.03, n = 2,000."""
    rng = np.random.default_rng(11)
    n = 2000
    b512 = (rng.random(n) < 0.4).astype(float)
    t512 = b512.copy()
    t512[rng.choice(np.flatnonzero(b512 == 0), 200, replace=False)] = 1      # +0.10
    b1024 = (rng.random(n) < 0.4).astype(float)
    t1024 = b1024.copy()
    t1024[rng.choice(np.flatnonzero(b1024 == 0), 150, replace=False)] = 1    # +0.075
    out = verify(claim(budgets=(512, 1024), reported={"delta": 0.03}),
                 records=records(block("baseline", b512), block("treatment", t512),
                                 block("baseline", b1024, budget=1024), block("treatment", t1024, budget=1024)))
    assert out.report.verdict == "supported", out.report.verdict_reason
    assert out.report.options.margin == pytest.approx(0.05)
    assert "larger of the reported and measured" in out.report.options.margin_source
    (f,) = [f for f in out.findings if f.check == "truncation" and f.statistic.get("budget") == 1024
            and "above_claim" in f.statistic]
    assert f.statistic["above_claim"] and f.code == "above_claim"


# --- 7. reported information used, contradictions refused -----------------------------------------------------------


def test_a_reported_ci_alone_is_used_as_the_reported_delta():
    """Reported CI [0.08, 0.16] and nothing else; measured +0.020 [+0.013, +0.027] at n = 5,000: was supported."""
    b, t = paired(b=300, c=200, both=1500, neither=3000)
    out = verify(claim(reported={"ci": [0.08, 0.16]}), records=records(block("baseline", b), block("treatment", t)))
    assert out.report.verdict == "not_reproduced"
    (f,) = by(out, "significance", "smaller_than_reported")
    assert f.statistic["reported_delta"] == pytest.approx(0.12)


@pytest.mark.parametrize("reported,direction", [({"delta": 0.30}, "less"), ({"delta": -0.3}, "greater"),
                                                ({"baseline": 0.8, "treatment": 0.7}, "greater"),
                                                ({"ci": [-0.2, -0.1]}, "greater")])
def test_a_reported_sign_against_the_direction_is_refused(reported, direction):
    b, t = gain_0300_0380()
    with pytest.raises(InputError) as exc:
        verify(claim(reported=reported, direction=direction), records=records(block("baseline", b),
                                                                               block("treatment", t)))
    (p,) = exc.value.problems
    assert "claim.direction" in p.message and "set claim.direction" in p.fix


# --- 8. say what supported rests on ---------------------------------------------------------------------------------


def test_supported_with_nothing_perturbed_says_so():
    b, t = gain_0300_0380()
    out = verify(claim(), records=records(block("baseline", b), block("treatment", t)))
    assert out.report.verdict == "supported"
    assert "no perturbation removes it" not in out.report.verdict_reason
    assert ("supported at the claimed setting only; not tested: budget (one budget in the logs), scoring (one "
            "scoring), OOD (none declared)") in out.report.verdict_reason
    assert out.report.perturbations_tested == []
    from audit.reports import render_summary
    from audit.reports.junit import render_junit

    assert "not tested: budget (one budget in the logs)" in render_summary(out.report)
    assert "not tested: budget (one budget in the logs)" in render_junit(out.report)


def test_supported_after_every_perturbation_names_them():
    b, t = gain_0300_0380()
    out = verify(claim(budgets=(512, 1024), scorings=("exact", "other"), variants=("para",)),
                 records=records(*[block(arm, x, budget=bu, scoring=sc, variant=v)
                                   for arm, x in (("baseline", b), ("treatment", t)) for bu in (512, 1024)
                                   for sc in ("exact", "other") for v in ("default", "para")]))
    assert out.report.verdict == "supported"
    assert out.report.verdict_reason.endswith("no perturbation removes it (tested: budget, scoring, OOD)")
    assert out.report.perturbations_not_tested == []


def test_validate_warns_of_a_degenerate_scoring(tmp_path):
    """A GSM8K-style target (a whole worked solution) that no output can equal: `audit validate` says so."""
    import json

    from click.testing import CliRunner

    from audit.cli import main
    from conftest import write_jsonl

    worked = "Natalia sold 48/2 = 24 clips in May.\nNatalia sold 48+24 = 72 clips.\n#### 72"
    for arm in ("b", "t"):
        write_jsonl(tmp_path / f"{arm}.jsonl", [{"id": f"q{i}", "output": "The answer is 72", "target": worked}
                                                for i in range(30)])
    (tmp_path / "c.yaml").write_text(json.dumps({
        "claim": {"title": "t", "settings": {"max_tokens": 16, "scoring": "exact"}},
        "samples": {"format": "jsonl", "baseline": {16: "b.jsonl"}, "treatment": {16: "t.jsonl"}}}))
    res = CliRunner().invoke(main, ["validate", str(tmp_path / "c.yaml")])
    assert res.exit_code == 0, res.output
    assert "warning: scoring 'exact' gives every item of both arms the score 0 (60 records)" in res.output
