"""report.html: structure for each kind of verdict, a golden snapshot, escaping of untrusted outputs, secrets, size.

Golden files live in tests/data/golden/; regenerate them with ``AUDIT_UPDATE_GOLDEN=1 pytest tests/test_reports.py``.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import html5lib
import numpy as np
import pandas as pd
import pytest
import yaml

from audit.claim import Claim, load_claim
from audit.findings import Report
from audit.records import LogSource, build_records
from audit.reports import redact, render_html, render_summary
from audit.reports.items import script_json
from audit.verify import verify
from conftest import arm_rows, write_jsonl

GOLDEN = Path(__file__).parent / "data" / "golden"
UPDATE = os.environ.get("AUDIT_UPDATE_GOLDEN") == "1"

XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = '"><img src=x onerror=alert(1)>'


# ---------------------------------------------------------------------------------------------------------------
# Synthetic claims (shared with tests/test_gate.py, tests/test_compare.py and tests/test_browser.py)


def write_claim(root: Path, claim: dict, logs: dict[str, list[dict]] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for rel, rows in (logs or {}).items():
        write_jsonl(root / rel, rows)
    p = root / "claim.yaml"
    p.write_text(yaml.safe_dump(claim, sort_keys=False), encoding="utf-8")
    return p


def _samples(budgets: list[int]) -> dict:
    return {"format": "jsonl", "baseline": {b: f"logs/base_{b}.jsonl" for b in budgets},
            "treatment": {b: f"logs/treat_{b}.jsonl" for b in budgets}}


def supported_claim(root: Path) -> Path:
    """Treatment 70% vs baseline 30% at both budgets, nothing truncated: supported."""
    n = 80
    base = [1 if i % 10 < 3 else 0 for i in range(n)]
    treat = [1 if i % 10 < 7 else 0 for i in range(n)]
    stop = ["stop"] * n
    logs = {}
    for b in (16, 64):
        logs[f"logs/base_{b}.jsonl"] = arm_rows(base, finish=stop)
        logs[f"logs/treat_{b}.jsonl"] = arm_rows(treat, finish=stop)
    claim = {"claim": {"title": "supported gain", "metric": "exact_match",
                       "reported": {"baseline": {"passes": 24, "n": 80}, "treatment": {"passes": 56, "n": 80}},
                       "settings": {"max_tokens": 16}},
             "samples": _samples([16, 64]), "perturbations": {"scorings": ["exact", "last-number"]},
             "options": {"resamples": 1000}}
    return write_claim(root, claim, logs)


def fragile_claim(root: Path, n: int = 60) -> Path:
    """The baseline's reasoning is cut at 16 tokens and wins at 64: a truncation artifact (fragile)."""
    base64_ = [1 if (i * 7) % 12 < 7 else 0 for i in range(n)]
    treat = [1 if (i * 7) % 30 < 13 else 0 for i in range(n)]
    logs = {
        "logs/base_16.jsonl": arm_rows([0] * n, texts=["Let me think step by"] * n),
        "logs/base_64.jsonl": arm_rows(base64_, texts=[f"Let me think step by step. {c}" for c in base64_]),
        "logs/treat_16.jsonl": arm_rows(treat),
        "logs/treat_64.jsonl": arm_rows(treat),
    }
    claim = {"claim": {"title": "synthetic truncation artifact", "metric": "exact_match",
                       "reported": {"baseline": 0.0, "treatment": round(sum(treat) / n, 2), "n": n, "p_value": 0.001,
                                    "test": "mcnemar"},
                       "settings": {"max_tokens": 16}},
             "samples": _samples([16, 64]), "perturbations": {"scorings": ["last-number", "exact"]},
             "options": {"resamples": 1000}}
    return write_claim(root, claim, logs)


def not_reproduced_claim(root: Path) -> Path:
    """Arms tie on 200 items; the claim reports +0.20 — the design could have seen it: not reproduced."""
    n = 200
    base = [i % 2 for i in range(n)]
    treat = list(base)
    for i in range(0, 20, 2):
        treat[i] = 1  # 10 treatment-only wins
    for i in range(1, 21, 2):
        treat[i] = 0  # 10 baseline-only wins
    logs = {"logs/base_16.jsonl": arm_rows(base, finish=["stop"] * n),
            "logs/treat_16.jsonl": arm_rows(treat, finish=["stop"] * n)}
    claim = {"claim": {"title": "claimed +20 points", "metric": "exact_match",
                       "reported": {"baseline": {"passes": 100, "n": 200}, "treatment": {"passes": 140, "n": 200}},
                       "settings": {"max_tokens": 16}},
             "samples": _samples([16]), "perturbations": {"scorings": ["exact"]}, "options": {"resamples": 1000}}
    return write_claim(root, claim, logs)


def counts_only_claim(root: Path) -> Path:
    """4/89 vs 6/89 and no samples: underpowered, inconclusive."""
    claim = {"claim": {"title": "counts only", "metric": "exact_match",
                       "reported": {"baseline": {"passes": 4, "n": 89}, "treatment": {"passes": 6, "n": 89},
                                    "p_value": 0.03, "test": "fisher"}},
             "options": {"resamples": 1000}}
    return write_claim(root, claim)


def xss_claim(root: Path) -> Path:
    """Model outputs, an item id and the claim title carry HTML/JS payloads; the baseline is cut at 16 tokens, so
    the payloads also reach the evidence of the truncation findings and the ✂ markers of the item browser."""
    n = 24
    payload = [XSS_SCRIPT if i % 2 else XSS_IMG for i in range(n)]
    base64_ = [1 if i % 3 else 0 for i in range(n)]
    treat = [1 if i % 2 else 0 for i in range(n)]
    texts_t = [f"{XSS_IMG} </script><script>alert(2)</script> {c}" for c in treat]
    logs = {"logs/base_16.jsonl": arm_rows([0] * n, texts=payload, scores={"judge": [0] * n}),
            "logs/base_64.jsonl": arm_rows(base64_, texts=[f"{p} and then {c}" for p, c in zip(payload, base64_)],
                                           scores={"judge": base64_}),
            "logs/treat_16.jsonl": arm_rows(treat, texts=texts_t, scores={"judge": treat}),
            "logs/treat_64.jsonl": arm_rows(treat, texts=texts_t, scores={"judge": treat})}
    for rows in logs.values():
        rows[0]["id"] = 'q"><img src=x onerror=alert(3)>'
    claim = {"claim": {"title": "XSS <script>alert('title')</script>", "metric": "exact_match",
                       "reported": {"delta": 0.5}, "settings": {"max_tokens": 16}},
             "samples": _samples([16, 64]), "perturbations": {"scorings": ["judge"]}, "options": {"resamples": 1000}}
    return write_claim(root, claim, logs)


CLAIMS = {"supported": supported_claim, "fragile": fragile_claim, "not_reproduced": not_reproduced_claim,
          "inconclusive": counts_only_claim}


def audit(path: Path):
    return verify(load_claim(path), command=f"audit verify {path.name}")


# ---------------------------------------------------------------------------------------------------------------
# Helpers


def parse(html: str) -> ET.Element:
    return html5lib.parse(html, namespaceHTMLElements=False)


def by_id(doc: ET.Element, ident: str) -> ET.Element | None:
    for el in doc.iter():
        if el.get("id") == ident:
            return el
    return None


def text(el: ET.Element) -> str:
    return "".join(el.itertext())


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = {}
    for name, make in CLAIMS.items():
        outcome = audit(make(tmp_path_factory.mktemp(name)))
        out[name] = (outcome, render_html(outcome.report, outcome.records))
    return out


# ---------------------------------------------------------------------------------------------------------------
# Structure


@pytest.mark.parametrize("verdict", list(CLAIMS))
def test_structure(rendered, verdict):
    outcome, html = rendered[verdict]
    report = outcome.report
    assert report.verdict == verdict
    doc = parse(html)

    banner = by_id(doc, "verdict")
    assert banner is not None and banner.get("data-verdict") == verdict
    assert verdict.replace("_", " ") in text(banner)
    assert text(by_id(doc, "verdict-reason")).strip() == report.verdict_reason

    cards = [el for el in doc.iter("article") if "finding" in (el.get("class") or "").split()]
    assert len(cards) == len(report.findings)
    assert [c.get("data-check") for c in cards].count("significance") == \
        sum(f.check == "significance" for f in report.findings)
    for card in cards:  # severity and provenance on every card
        assert "severity: " in text(card)
        assert any(d.tag == "details" and "provenance" in (d.get("class") or "") for d in card.iter())

    forest = [el for el in doc.iter() if local(el.tag) == "svg" and el.get("id") == "forest-plot"]
    assert len(forest) == 1
    assert by_id(doc, "forest").find(".//*") is not None

    ci_pattern = re.compile(r"[+-]\d\.\d{3} … [+-]\d\.\d{3}")
    delta_row = by_id(doc, "cvm-delta")
    assert len(ci_pattern.findall(text(delta_row))) == 2, text(delta_row)  # reported and measured CI

    if verdict == "inconclusive":  # counts only: no cells table, no item browser
        assert by_id(doc, "cells-table") is None and by_id(doc, "items") is None
        assert "recomputed from the reported counts" in html
    else:
        rows = by_id(doc, "cells-table").findall(".//tbody/tr")
        assert len(rows) == len(report.cells)
        assert all(ci_pattern.search(text(r)) or "n/a" in text(r) for r in rows)
        assert by_id(doc, "items") is not None and by_id(doc, "items-data") is not None
        assert by_id(doc, "truncation-rates") is not None
        assert any(local(el.tag) == "svg" and el.get("id") == "lengths-plot" for el in doc.iter())

    methods = text(by_id(doc, "methods"))
    for needle in ("The decision rule", "Tango", "inverts", "Holm", "TOST", "paired bootstrap",
                   f"{report.options.resamples} resamples", "McNemar", "Wilson", "Miettinen", "Newcombe", "Power",
                   "Truncation", f"--seed {report.options.seed}"):
        assert needle in methods, needle


def test_self_contained_and_csp(rendered):
    _, html = rendered["fragile"]
    doc = parse(html)
    for el in doc.iter():
        for attr in ("src", "href"):
            v = el.get(attr)
            assert v is None or v.startswith("#"), (el.tag, attr, v)
    assert "<link" not in html and "@import" not in html
    csp = next(el.get("content") for el in doc.iter("meta") if el.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in csp
    scripts = [s for s in doc.iter("script") if s.get("type") != "application/json"]
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].text.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in csp  # the one inline script is allowed by hash; nothing else may run
    assert not re.search(r"\.(innerHTML|outerHTML)\b|insertAdjacentHTML|document\.write|eval\(", scripts[0].text)


def test_fragile_browser_data_marks_truncation(rendered):
    outcome, html = rendered["fragile"]
    doc = parse(html)
    blob = json.loads(by_id(doc, "items-data").text)
    assert blob["total"] == blob["shown"] == 60
    assert blob["budgets"] == ["16", "64"] and blob["claimed_scoring"] == "last-number"
    item = blob["items"][0]
    base16, base64_ = item["outputs"]["16"]["baseline"], item["outputs"]["64"]["baseline"]
    assert base16["truncated"] == 1 and item["outputs"]["16"]["treatment"]["truncated"] == 0
    assert base64_["cuts"] == [{"budget": 16, "at": len("Let me think step by")}]
    assert "truncated" in item["why"]
    # Truncation rates come from the truncation check: 100% of baseline outputs at 16.
    rates = text(by_id(doc, "truncation-rates"))
    assert "100.0%" in rates
    # No token counts in these logs: lengths are whitespace words and the page says so.
    assert "whitespace-separated words" in html
    assert "60 of 60 items are embedded" in text(by_id(doc, "items-count"))


def test_lengths_use_completion_tokens_when_present(tmp_path):
    n = 30
    logs = {}
    for b in (16, 64):
        for arm, c in (("base", [0] * 10 + [1] * 20), ("treat", [1] * 25 + [0] * 5)):
            rows = arm_rows(c, finish=["stop"] * n)
            for i, r in enumerate(rows):
                r["completion_tokens"] = 16 if (arm == "base" and b == 16 and i < 10) else 3 + i % 5
                if r["completion_tokens"] == 16:
                    r["finish_reason"] = "length"
            logs[f"logs/{arm}_{b}.jsonl"] = rows
    claim = {"claim": {"title": "tokens", "settings": {"max_tokens": 16}}, "samples": _samples([16, 64]),
             "options": {"resamples": 1000}}
    outcome = audit(write_claim(tmp_path, claim, logs))
    html = render_html(outcome.report, outcome.records)
    assert "completion tokens (from the logs)" in html
    row = [r for r in parse(html).iter("tr") if "baseline" in text(r) and ">" not in text(r)]
    assert any("33.3%" in text(r) for r in row)  # 10 of 30 baseline outputs at the 16-token cap


# ---------------------------------------------------------------------------------------------------------------
# Golden snapshot


def _normalise(html: str, root: Path) -> str:
    html = html.replace(str(root), "<tmp>")
    # Plots are checked structurally above; their bytes depend on the matplotlib version.
    return re.sub(r"<svg id=\"([\w-]+)\".*?</svg>", r'<svg id="\1"><!-- plot --></svg>', html, flags=re.S)


def _assert_golden(prefix: str, outcome, root: Path, command: str | None = None) -> None:
    """Compare report.html and summary.md (timestamps, versions and ``root`` normalised) with tests/data/golden."""
    update = {"created": "2000-01-01T00:00:00+00:00", "audit_version": "0.0.0", "environment": {"python": "3.x"},
              "findings": [f.model_copy(update={"provenance": {**f.provenance, "audit_version": "0.0.0"}})
                           for f in outcome.report.findings]}
    if command is not None:
        update["command"] = command
    report = outcome.report.model_copy(update=update)
    got = {"report.html": _normalise(render_html(report, outcome.records), root),
           "summary.md": render_summary(report).replace(str(root), "<tmp>")}
    for name, content in got.items():
        path = GOLDEN / f"{prefix}_{name}"
        if UPDATE or not path.exists():
            if not UPDATE and os.environ.get("CI"):
                pytest.fail(f"golden file {path} is missing; run AUDIT_UPDATE_GOLDEN=1 pytest {__file__}")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
        expected = path.read_text(encoding="utf-8")
        assert content == expected, (f"{name} differs from {path}; if the change is intended, regenerate with "
                                     "AUDIT_UPDATE_GOLDEN=1 pytest tests/test_reports.py")


def test_golden_snapshot(tmp_path):
    # 20 items: the smallest size at which this artifact is shown (at 12 the reversal at 64 tokens is not
    # significant after Holm, and the verdict is supported with a major truncation flag).
    _assert_golden("fragile", audit(fragile_claim(tmp_path, n=20)), tmp_path, "audit verify claim.yaml --out out")


# ---------------------------------------------------------------------------------------------------------------
# Escaping


def test_untrusted_outputs_are_text(tmp_path):
    outcome = audit(xss_claim(tmp_path))
    html = render_html(outcome.report, outcome.records)
    doc = parse(html)
    assert not list(doc.iter("img"))
    scripts = list(doc.iter("script"))
    assert len(scripts) == 2 and scripts[0].get("type") == "application/json"
    assert all(not k.startswith("on") for el in doc.iter() for k in el.attrib)
    assert "<script>alert" not in html and "<img src=x" not in html
    # The payloads are there, as text: in the title, the evidence cards and the embedded JSON.
    assert "alert('title')" in text(by_id(doc, "verdict"))
    evidence = " ".join(text(p) for p in doc.iter("pre"))
    assert XSS_SCRIPT in evidence and XSS_IMG in evidence
    blob = json.loads(by_id(doc, "items-data").text)
    texts = {o["text"] for it in blob["items"] for arms in it["outputs"].values() for o in arms.values()}
    assert XSS_SCRIPT in texts and XSS_IMG in texts
    assert any(it["id"] == 'q"><img src=x onerror=alert(3)>' for it in blob["items"])
    raw_blob = re.search(r'<script type="application/json" id="items-data">(.*?)</script>', html, re.S).group(1)
    assert "<" not in raw_blob and ">" not in raw_blob and "&" not in raw_blob


def test_script_json_escaping():
    s = script_json({"x": "</script><!-- & \u2028"})
    assert "<" not in s and ">" not in s and "&" not in s and "\u2028" not in s
    assert json.loads(s) == {"x": "</script><!-- & \u2028"}


# ---------------------------------------------------------------------------------------------------------------
# Secrets


def test_no_secret_reaches_the_page(rendered, monkeypatch):
    outcome, _ = rendered["supported"]
    monkeypatch.setenv("AUDIT_TEST_API_KEY", "sk-live-0123456789abcdef")
    from audit.claim import Arm

    # A claim as a user might write it: the key's variable NAME, and a key pasted inline into a model string.
    arm = Arm(model="base_url=http://x,api_key=sk-inline-secret", endpoint="http://127.0.0.1:9/v1",
              api_key_env="AUDIT_TEST_API_KEY")
    claim = outcome.report.claim.model_copy(update={"arms": {"baseline": arm, "treatment": arm}})
    arms = {"baseline": {"16": {"model_args": "pretrained=m,token=hf_secret_token"}}}
    first = outcome.report.findings[0]
    leaked = first.model_copy(update={"detail": "the model said sk-live-0123456789abcdef"})
    report = outcome.report.model_copy(update={"claim": claim, "arms": arms,
                                               "findings": [leaked, *outcome.report.findings[1:]]})
    html = render_html(report, outcome.records)
    summary = render_summary(report)
    assert "AUDIT_TEST_API_KEY" in html  # the variable's NAME is fine
    for secret in ("sk-live-0123456789abcdef", "sk-inline-secret", "hf_secret_token"):
        assert secret not in html and secret not in summary, secret
    assert redact({"api_key_env": "X", "password": "p", "nested": [{"secret": "s"}]}) == \
        {"api_key_env": "X", "password": "[redacted]", "nested": [{"secret": "[redacted]"}]}


def test_echoed_forms_of_the_claims_key_are_scrubbed_from_page_junit_and_summary(rendered, monkeypatch):
    """Issue 19: the page and the JUnit file are scrubbed as the summary is — a key echoed upper-cased, cut short or
    after "Bearer" is removed too, not only its exact value (the claim's key need not be registered: a report may
    be rendered outside ``audit verify``)."""
    from audit.claim import Arm
    from audit.reports import render_junit

    key = "sk-live-Zq8Wm3Rt5Yp1Xn7Kd2"
    monkeypatch.setenv("AUDIT_TEST_API_KEY", key)
    outcome, _ = rendered["supported"]
    arm = Arm(model="m", endpoint="http://127.0.0.1:9/v1", api_key_env="AUDIT_TEST_API_KEY")
    claim = outcome.report.claim.model_copy(update={"arms": {"baseline": arm, "treatment": arm}})
    echo = f"HTTP 401: invalid key {key.upper()}; retried with {key[:-4]}; Authorization: Bearer {key[3:]}"
    first = outcome.report.findings[0]
    leaked = first.model_copy(update={"title": echo, "detail": echo, "outcome": "flag", "severity": "major"})
    report = outcome.report.model_copy(update={"claim": claim, "findings": [leaked, *outcome.report.findings[1:]]})
    for text in (render_html(report, outcome.records), render_junit(report), render_summary(report)):
        low = text.lower()
        assert "invalid key" in low  # the message is still there, the key is not
        assert key[3:15].lower() not in low and key[-12:].lower() not in low, text[:200]


# ---------------------------------------------------------------------------------------------------------------
# Scale


def many_items(n: int):
    """An audit of n items at budgets 16 and 64 (every 9th baseline output cut at 16), built without log files."""
    rng = np.random.default_rng(0)
    frames = []
    for arm, p in (("baseline", 0.5), ("treatment", 0.53)):
        correct = (rng.random(n) < p).astype(float)
        for b in (16, 64):
            long = (np.arange(n) % 9 == 0) if arm == "baseline" else np.zeros(n, dtype=bool)
            cut = long & (b == 16)
            reasoning = "Let me think about this step by step, carefully checking each part. " * 3
            out = np.where(long, reasoning, "") + np.where(cut, "", np.where(correct == 1, "answer 1", "answer 0"))
            frames.append(pd.DataFrame({
                "arm": arm, "item_id": [f"q{i:06d}" for i in range(n)], "variant": "default", "budget": b,
                "scoring": "exact", "score": np.where(cut, 0.0, correct), "text": out, "target": "1",
                "finish_reason": np.where(cut, "length", "stop"), "completion_tokens": None, "prompt_hash": None,
                "doc_hash": None, "source": f"{arm}_{b}.jsonl", "line": np.arange(n) + 1, "extracted": None}))
    records = build_records(frames, [LogSource(a, b, f"{a}_{b}.jsonl", "0" * 64, n)
                                     for a in ("baseline", "treatment") for b in (16, 64)])
    claim = Claim.model_validate({"claim": {"title": "100k", "settings": {"max_tokens": 16}},
                                  "perturbations": {"scorings": ["exact"]}})
    return verify(claim, records=records, resamples=1000)


def test_100k_items_stay_under_20mb():
    n = 100_000
    outcome = many_items(n)
    html = render_html(outcome.report, outcome.records)
    size = len(html.encode("utf-8"))
    assert size < 20_000_000, size
    doc = parse(html)
    blob = json.loads(by_id(doc, "items-data").text)
    assert blob["total"] == n and blob["shown"] == 2000 == len(blob["items"])
    assert "2,000 of 100,000 items are embedded" in text(by_id(doc, "items-count"))
    # Every statistic is on all items: the cells say n = 100000.
    assert all(c.n == n for c in outcome.report.cells)
    # Prioritised: every embedded item changed correctness or was truncated (there are far more than 2000 such).
    assert all(set(it["why"]) & {"changed", "truncated", "evidence"} for it in blob["items"])


def test_embedded_items_are_capped_by_bytes(rendered):
    from audit.reports.items import item_data

    outcome, _ = rendered["fragile"]
    data = item_data(outcome.report, outcome.records, max_items=2000, max_bytes=5_000)
    assert 0 < data.shown < data.total == 60
    assert len(json.dumps(data.blob["items"])) < 5_000 + 2_000


def test_findings_cards_show_labelled_rows_and_fold_passing_ones(rendered):
    """Statistic keys become rows of name, value and meaning (unknown keys as they are); passing and info findings
    are folded into a <details>; flags and inconclusive findings stay open."""
    outcome, html = rendered["fragile"]
    doc = parse(html)
    cards = {el.get("id"): el for el in doc.iter("article") if "finding" in (el.get("class") or "").split()}
    for i, f in enumerate(outcome.report.findings):
        card = cards[f"finding-{i}"]
        fold = next((d for d in card.iter("details") if "fold" in (d.get("class") or "").split()), None)
        assert (fold is not None) == (f.outcome in ("pass", "info")), (f.check, f.code)
        assert fold is None or fold.get("open") is None
    sig = next(i for i, f in enumerate(outcome.report.findings) if f.check == "significance" and "b" in f.statistic)
    rows = {tr.get("data-key"): [text(c).strip() for c in tr] for tr in cards[f"finding-{sig}"].iter("tr")
            if tr.get("data-key")}
    stat = outcome.report.findings[sig].statistic
    assert rows["b"] == ["treatment-only passes (b)", str(stat["b"]),
                         "items the treatment passes and the baseline fails: McNemar's b"]
    assert rows["c"][0] == "baseline-only passes (c)"
    assert rows["clt_se"][0] == "CLT standard error" and "Miller 2024" in rows["clt_se"][2]
    assert rows["p_below_reported"][0] == "p, smaller than reported"
    assert rows["boot_ci"][0] == "bootstrap interval" and " … " in rows["boot_ci"][1]  # the pair is one row
    assert "boot_ci_low" not in rows and "ci_low" not in rows
    assert rows["ci"][0] == "interval"
    # The raw key stays findable (a tooltip and data-key) but is not the row's name.
    names = [r[0] for r in rows.values()]
    assert "clt_se" not in names and "p_below_reported" not in names


def test_unknown_statistic_keys_are_shown_as_they_are():
    from audit.reports import value
    from audit.reports.glossary import GLOSSARY, statistic_rows

    rows = statistic_rows({"n": 5, "zzz_new": 0.25, "foo_ci_low": -0.1, "foo_ci_high": 0.2, "p_break": 0.0001},
                          value, lambda lo, hi, key: f"{lo} … {hi}")
    assert [(r.key, r.name, r.value, r.meaning) for r in rows] == [
        ("n", "items", "5", GLOSSARY["n"][1]), ("zzz_new", "zzz_new", "0.25", ""),
        ("foo_ci", "foo_ci", "-0.1 … 0.2", ""), ("p_break", "p, break", "1.00e-04", GLOSSARY["p_break"][1])]


def test_plot_labels_are_literal_text():
    from audit.reports.plots import forest_svg

    svg = forest_svg([{"label": "<b>x</b> & $\\frac{a$", "delta": 0.1, "ci_low": 0.0, "ci_high": 0.2,
                       "claimed": True}], reported=0.1, level=0.95)
    assert "<b>" not in svg and "&lt;b&gt;x&lt;/b&gt; &amp; $\\frac{a$" in svg  # escaped, and no mathtext
    narrow = forest_svg([{"label": "<b>x</b> & $\\frac{a$", "delta": 0.1, "ci_low": 0.0, "ci_high": 0.2,
                          "claimed": True}], reported=0.1, level=0.95, narrow=True)
    assert narrow.startswith('<svg id="forest-plot-narrow" ') and "&lt;b&gt;x&lt;/b&gt; &amp; $\\frac{a$" in narrow


def test_renders_from_report_json_alone(rendered):
    outcome, _ = rendered["fragile"]
    report = Report.model_validate_json(outcome.report.model_dump_json())
    doc = parse(render_html(report))  # no Records: no item browser or length plot, everything else
    assert by_id(doc, "items") is None and by_id(doc, "lengths") is None
    assert by_id(doc, "forest") is not None and by_id(doc, "truncation-rates") is not None


def test_golden_snapshot_of_the_truncation_fixture():
    """The committed truncation fixture claim (real lm-eval logs), rendered: report.html and summary.md."""
    from audit.claim import load_claim
    from audit.verify import verify
    from conftest import REPO

    outcome = verify(load_claim(REPO / "fixtures/claims/truncation.yaml"), command="audit verify truncation.yaml")
    _assert_golden("truncation", outcome, REPO)
