"""checks/extraction.py: outputs with no extractable answer, their asymmetry, the delta on answered items."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from audit import stats
from audit.checks import REGISTRY
from audit.claim import load_claim
from audit.importers import load_records
from audit.verify import verify

ROOT = Path(__file__).resolve().parents[1]


def _write(tmp_path: Path, n: int, base_answers, treat_answers, reported: float = 0.3) -> Path:
    """Generic JSONL logs scored by a claim-defined regex scorer; ``*_answers`` per item: a letter or None."""
    for arm, answers in (("b", base_answers), ("t", treat_answers)):
        with open(tmp_path / f"{arm}.jsonl", "w") as fh:
            for i, a in enumerate(answers):
                out = f"so the answer is ({a})" if a else "let me think step by step and"
                fh.write(json.dumps({"id": i, "output": out, "target": "A"}) + "\n")
    p = tmp_path / "claim.yaml"
    p.write_text(f"""claim:
  title: t
  reported: {{delta: {reported}, n: {n}}}
  settings: {{max_tokens: 256, scoring: answer-is}}
samples:
  format: jsonl
  baseline: {{256: b.jsonl}}
  treatment: {{256: t.jsonl}}
scorers:
  answer-is: {{regex: 'answer is \\(([A-J])\\)'}}
""")
    return p


def _findings(path: Path):
    out = verify(load_claim(path), resamples=1000)
    return out, [f for f in out.findings if f.check == "extraction"]


def test_registered():
    assert "extraction" in REGISTRY


def test_gain_from_baseline_failing_to_answer_is_flagged(tmp_path):
    n = 200
    # Treatment always answers A (correct). Baseline answers A when it answers, but half the time states nothing.
    base = ["A" if i % 2 else None for i in range(n)]
    treat = ["A"] * n
    out, fs = _findings(_write(tmp_path, n, base, treat, reported=0.5))
    codes = {f.code: f for f in fs}
    assert "from_no_answer" in codes
    f = codes["from_no_answer"]
    assert f.impact == "fragile" and f.severity == "critical"
    assert f.statistic["no_answer_baseline"] == 0.5 and f.statistic["no_answer_treatment"] == 0.0
    assert f.statistic["n_both_answered"] == 100 and f.statistic["delta_both_answered"] == 0.0
    # Same numbers as the stats module gives on the flags directly.
    nb = np.array([a is None for a in base], dtype=float)
    asym = stats.paired_inference(nb, np.zeros(n))
    assert f.statistic["asymmetry_p"] == asym.test.p_value
    rates = codes["rates"].rows
    iv = stats.wilson(100, 200)
    row = next(r for r in rates if r["arm"] == "baseline")
    assert (row["no_answer"], row["known"], row["ci_low"], row["ci_high"]) == (100, 200, iv.low, iv.high)
    assert out.report.verdict != "supported"


def test_real_gain_with_symmetric_failures_is_not_flagged(tmp_path):
    n = 200
    base = ["B" if i % 2 else ("A" if i % 4 == 0 else None) for i in range(n)]
    treat = ["A" if i % 2 else ("A" if i % 4 == 0 else None) for i in range(n)]
    _, fs = _findings(_write(tmp_path, n, base, treat, reported=0.5))
    codes = {f.code for f in fs}
    assert "from_no_answer" not in codes and "asymmetric_no_answer" not in codes
    assert {"rates", "high_rate"} <= codes


def test_swapping_arms_swaps_rates(tmp_path):
    n = 60
    base = ["A" if i % 3 else None for i in range(n)]
    treat = ["A"] * n
    rec = load_records(load_claim(_write(tmp_path, n, base, treat)))
    from audit.checks.extraction import no_answer_rates

    r = {x["arm"]: x["rate"] for x in no_answer_rates(rec)}
    assert r == {"baseline": 20 / 60, "treatment": 0.0}
    rec2 = load_records(load_claim(_write(tmp_path, n, treat, base)))
    r2 = {x["arm"]: x["rate"] for x in no_answer_rates(rec2)}
    assert r2 == {"baseline": 0.0, "treatment": 20 / 60}


def test_lmeval_invalid_filtered_responses_count_as_no_answer():
    rec = load_records(load_claim(ROOT / "fixtures" / "claims" / "truncation.yaml"))
    from audit.checks.extraction import no_answer_rates

    rows = no_answer_rates(rec)
    assert {r["scoring"] for r in rows} == {"strict-match", "flexible-extract"}
    # Independent count: the sample lines' filtered_resps straight from the files.
    for row in rows:
        src = rec.table[(rec.table["arm"] == row["arm"]) & (rec.table["budget"] == row["budget"])
                        & (rec.table["scoring"] == row["scoring"])]["source"].iloc[0]
        k = 0
        for line in open(src):
            d = json.loads(line)
            if d["filter"] == row["scoring"]:
                fr = d["filtered_resps"][0]
                k += fr in ("[invalid]", "")
        assert row["no_answer"] == k


def test_logged_extraction_key_counts(tmp_path):
    for arm in ("b", "t"):
        with open(tmp_path / f"{arm}.jsonl", "w") as fh:
            for i in range(10):
                ext = None if (arm == "b" and i < 4) else "A"
                fh.write(json.dumps({"id": i, "output": "x", "scores": {"acc": float(ext == "A")},
                                     "extracted": ext}) + "\n")
    p = tmp_path / "claim.yaml"
    p.write_text("claim:\n  title: t\n  settings: {max_tokens: 256}\nsamples:\n  format: jsonl\n"
                 "  baseline: {256: b.jsonl}\n  treatment: {256: t.jsonl}\n")
    from audit.checks.extraction import no_answer_rates

    r = {x["arm"]: (x["no_answer"], x["known"]) for x in no_answer_rates(load_records(load_claim(p)))}
    assert r == {"baseline": (4, 10), "treatment": (0, 10)}


def test_report_shows_no_answer_rates_next_to_truncation_rates(tmp_path):
    """report.html carries the extraction check's rows in their own table, after the truncation rates."""
    import html5lib

    from audit.verify import write_outputs

    out = verify(load_claim(ROOT / "fixtures" / "claims" / "truncation.yaml"))
    paths = write_outputs(out, tmp_path)
    doc = html5lib.parse(paths["html"].read_text(), namespaceHTMLElements=False)
    tables = [e.get("id") for e in doc.iter("table")]
    assert tables.index("truncation-rates") < tables.index("no-answer-rates")
    table = next(e for e in doc.iter("table") if e.get("id") == "no-answer-rates")
    shown = {tuple("".join(td.itertext()) for td in tr.findall("td"))[:4] for tr in table.iter("tr") if tr.findall("td")}
    (rates,) = [f for f in out.findings if f.check == "extraction" and f.code == "rates"]
    assert shown == {(r["scoring"], r["arm"], str(r["budget"]), str(r["no_answer"])) for r in rates.rows}
