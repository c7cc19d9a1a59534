"""The committed fixture claims, audited end to end through the CLI as a user would."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from audit.cli import main
from conftest import FIXTURES


def run(claim: str, tmp_path):
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["verify", str(FIXTURES / "claims" / claim), "--out", str(out)])
    return res, json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else None


def test_truncation_claim_exits_1_with_per_budget_deltas(tmp_path):
    res, report = run("truncation.yaml", tmp_path)
    assert res.exit_code == 1, res.output
    by_code = {f["code"]: f for f in report["findings"] if f["check"] == "truncation"}
    # At 64 tokens the delta, -0.18, is not itself significant (McNemar with continuity correction), but the change of
    # the gain, -0.30, is shown far beyond the margin: the gain vanishes (critical).
    assert {"rates", "per_budget", "vanishes", "asymmetric_truncation"} <= set(by_code)
    per_budget = {r["budget"]: r for r in by_code["per_budget"]["rows"]}
    # From the committed lm-eval logs (n = 50, strict-match): verify 5/50 vs direct 11/50 at 32 tokens,
    # verify 20/50 vs direct 11/50 at 64 tokens.
    assert per_budget[32]["delta"] == pytest.approx(0.12) and per_budget[64]["delta"] == pytest.approx(-0.18)
    for r in per_budget.values():
        assert r["ci_low"] < r["delta"] < r["ci_high"]
        assert r["n"] == 50
    rates = {(r["arm"], r["budget"]): r for r in by_code["rates"]["rows"]}
    assert rates[("baseline", 32)]["truncated"] == 37 and rates[("treatment", 32)]["truncated"] == 0
    assert rates[("baseline", 64)]["rate"] is None  # largest budget: unknown, not 0
    assert by_code["vanishes"]["severity"] == "critical"
    # 74% vs 0% of outputs hit the cap (asymmetry p ~ 1e-9), but on the 13 items neither arm truncated the gain,
    # -0.31 [-0.60, +0.07], is not shown below the margin (one-sided p = 0.028 > 0.025): reported, no verdict effect.
    assert by_code["asymmetric_truncation"]["rows"][0]["n"] == 13
    assert by_code["asymmetric_truncation"]["impact"] == "none"
    assert by_code["vanishes"]["impact"] == "fragile"
    assert by_code["vanishes"]["statistic"]["change_ci_high"] < -by_code["vanishes"]["statistic"]["margin"]


def test_counts_only_claim(tmp_path):
    res, report = run("underpowered_counts.yaml", tmp_path)
    assert res.exit_code == 1
    assert report["verdict"] == "inconclusive"
    codes = {f["code"] for f in report["findings"]}
    assert {"underpowered", "p_value_irreproducible"} <= codes
    assert report["cells"] == []


def test_inconsistent_numbers_claim(tmp_path):
    res, report = run("inconsistent_numbers.yaml", tmp_path)
    assert res.exit_code == 1
    assert report["verdict"] == "inconclusive"
    assert {"impossible_rate", "delta_arithmetic"} <= {f["code"] for f in report["findings"]}


@pytest.mark.parametrize("claim", sorted(p.name for p in (FIXTURES / "claims").glob("*.yaml")))
def test_every_fixture_claim_validates(claim):
    res = CliRunner().invoke(main, ["validate", str(FIXTURES / "claims" / claim)])
    assert res.exit_code == 0, res.output


def _replayable(path) -> bool:
    from audit.claim import load_claim

    return not load_claim(path, check_files=False).live


REPLAY_CLAIMS = sorted(p.name for p in (FIXTURES / "claims").glob("*.yaml") if _replayable(p))


@pytest.mark.parametrize("claim", REPLAY_CLAIMS)
def test_every_fixture_report_renders(claim, tmp_path):
    """report.html of every replayable fixture claim: the verdict banner, one card per finding, CIs shown."""
    import html5lib

    res, report = run(claim, tmp_path)
    assert res.exit_code in (0, 1), res.output
    doc = html5lib.parse((tmp_path / "out/report.html").read_text(), namespaceHTMLElements=False)
    banner = doc.find(".//*[@id='verdict']")
    assert banner is not None and banner.get("data-verdict") == report["verdict"]
    cards = [e for e in doc.iter() if "finding" in (e.get("class") or "").split() and e.get("data-check")]
    assert len(cards) == len(report["findings"])
    text = "".join(doc.find(".//body").itertext())
    for cell in report["cells"]:
        if cell["ci_low"] is not None:
            assert f"{cell['ci_low']:+.3f}" in text


@pytest.mark.parametrize("claim,verdict,code", [
    ("scoring_fires.yaml", "fragile", "sign_change"),
    ("scoring_passes.yaml", "supported", "holds"),
    ("truncation_passes.yaml", "supported", "holds_at_budget"),
    ("reported_passes.yaml", "supported", "reproduced"),
])
def test_fires_and_passes(claim, verdict, code, tmp_path):
    res, report = run(claim, tmp_path)
    assert report["verdict"] == verdict, report["verdict_reason"]
    assert res.exit_code == (0 if verdict == "supported" else 1)
    assert code in {f["code"] for f in report["findings"]}
