"""OOD prompt variants: replayed variants (fixture claims), the two multiplicity questions, a live run."""
from __future__ import annotations


import pytest
import yaml

from audit.generation.cache import GenerationCache
from audit.claim import load_claim
from audit.errors import InputError
from audit.verify import verify
from conftest import FIXTURES, require_live


def codes(out):
    return {f.code for f in out.findings if f.check == "ood"}


def test_ood_fires_on_collapse():
    out = verify(load_claim(FIXTURES / "claims/ood_fires.yaml"))
    assert out.report.verdict == "fragile"
    (collapse,) = [f for f in out.findings if f.check == "ood" and f.code == "collapses"]
    assert collapse.statistic["variant"] == "new_format"
    # Evidence of change, not loss of significance: the change of the gain lies wholly below −margin.
    assert collapse.statistic["change_ci_high"] < -collapse.statistic["margin"]
    assert collapse.statistic["p_break_holm"] < 0.025 and collapse.impact == "fragile"
    # The paraphrase is weaker (+0.200 vs +0.275) but not shown to change: info, no verdict effect.
    (para,) = [f for f in out.findings if f.check == "ood" and f.statistic.get("variant") == "paraphrase"]
    assert para.code == "not_shown_to_change" and para.impact == "none"
    per = {r["variant"]: r for r in next(f for f in out.findings if f.code == "per_variant").rows}
    assert set(per) == {"default", "paraphrase", "new_format"}
    for r in per.values():
        assert r["ci_low"] <= r["delta"] <= r["ci_high"]


def test_ood_passes_when_the_gain_holds():
    out = verify(load_claim(FIXTURES / "claims/ood_passes.yaml"))
    assert out.report.verdict == "supported"
    assert codes(out) == {"per_variant", "not_shown_to_change", "shown_everywhere"}
    assert all(f.impact == "none" for f in out.findings if f.check == "ood")


def test_find_breaks_uses_holm(tmp_path):
    c = yaml.safe_load((FIXTURES / "claims/ood_fires.yaml").read_text())
    c["checks"] = {"ood": {"question": "find_breaks"}}
    for v in c["samples"]["variants"].values():
        for arm in ("baseline", "treatment"):
            v[arm] = {k: str(FIXTURES / "claims" / p) for k, p in v[arm].items()}
    for arm in ("baseline", "treatment"):
        c["samples"][arm] = {k: str(FIXTURES / "claims" / p) for k, p in c["samples"][arm].items()}
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(c))
    out = verify(load_claim(p))
    by_variant = {f.statistic["variant"]: f for f in out.findings
                  if f.check == "ood" and "p_break" in f.statistic}
    assert by_variant["new_format"].code == "collapses"
    assert by_variant["paraphrase"].code == "not_shown_to_change"
    assert not any(f.code == "shown_everywhere" or f.code == "not_shown_everywhere" for f in out.findings)
    from statsmodels.stats.multitest import multipletests

    raw = [by_variant[v].statistic["p_break"] for v in ("paraphrase", "new_format")]
    holm = multipletests(raw, method="holm")[1]
    assert [by_variant[v].statistic["p_break_holm"] for v in ("paraphrase", "new_format")] == pytest.approx(list(holm))
    assert all(f.statistic["family_size"] == 2 for f in by_variant.values())


def test_ood_needs_a_live_run_and_known_perturbations(tmp_path):
    c = yaml.safe_load((FIXTURES / "claims/ood_passes.yaml").read_text())
    c["perturbations"]["ood"] = {"builtin": ["typoes"]}
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(c))
    with pytest.raises(InputError) as exc:
        load_claim(p, check_files=False)
    msg = str(exc.value)
    assert "needs a live run" in msg and "did you mean 'typos'" in msg


@pytest.mark.live
def test_live_builtin_perturbations_end_to_end(tmp_path):
    require_live()
    claim = {
        "claim": {"title": "live OOD", "settings": {"max_tokens": 6, "scoring": "first-number"}},
        "arms": {"baseline": {"endpoint": "embedded"},
                 "treatment": {"endpoint": "embedded", "prompt": "Question: what is {{ question }}?\nAnswer:"}},
        "task": {"dataset": str(FIXTURES / "data/add_small.jsonl"), "prompt": "Q: {{ question }} = ?\nA:",
                 "stop": ["\n"], "limit": 6},
        "perturbations": {"scorings": ["first-number"],
                          "ood": {"builtin": ["field_names", "casing", "typos"], "seed": 1}},
        "options": {"resamples": 1000},
    }
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(claim))
    out = verify(load_claim(p), cache=GenerationCache(tmp_path / "cache.sqlite"))
    variants = {c.variant for c in out.report.cells}
    assert variants == {"default", "field_names", "casing", "typos"}
    per = next(f for f in out.findings if f.check == "ood" and f.code == "per_variant")
    assert {r["variant"] for r in per.rows} == variants
    for r in per.rows:
        assert r["n"] == 6 and "ci_low" in r and "ci_high" in r
    html = out.report.model_dump_json()
    assert "field_names" in html
    run = out.report.run["baseline"]
    assert set(run["variants"]) == variants and run["variants"]["typos"].startswith("built-in perturbation 'typos'")
