"""report.json has a published contract: `audit schema --report` prints its JSON Schema, and every report.json
`audit verify` writes validates against it, round-trips through the typed Report and carries its views."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from audit.cli import main
from audit.findings import ForestEstimate, EstimateKind, Finding, Report, Subject, TableKind

REPO = Path(__file__).resolve().parents[1]
CLAIMS = ["mmlu_pro_mistral.yaml", "truncation.yaml", "underpowered_counts.yaml", "probes_fires.yaml", "ood_fires.yaml"]


@pytest.fixture(scope="module")
def schema() -> dict:
    res = CliRunner().invoke(main, ["schema", "--report"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    jsonschema.Draft202012Validator.check_schema(out)
    return out


@pytest.mark.parametrize("name", CLAIMS)
def test_report_json_validates_against_the_published_schema(schema, name, tmp_path):
    res = CliRunner().invoke(main, ["verify", str(REPO / "fixtures" / "claims" / name), "--out", str(tmp_path),
                                    "--resamples", "1000", "--fail-on", "none"])
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    jsonschema.validate(data, schema)
    report = Report.model_validate(data)
    assert json.loads(report.dump_json()) == data  # typed, and nothing lost on the way back
    assert report.gate.fail_on == "none" and report.gate.passed and report.exit_code == 0
    # Every finding names its subject; the forest holds every cell, then the estimates the checks asked to draw.
    assert all(f.subject.check == f.check and f.subject.code == f.code for f in report.findings)
    assert [e.kind for e in report.forest[:len(report.cells)]] == [EstimateKind.cell] * len(report.cells)
    cvm = report.claim_vs_measured
    assert [r.what for r in cvm.rows] == ["baseline", "treatment", "delta"] and cvm.delta is cvm.rows[-1]


def test_a_broken_report_fails_the_schema(schema, tmp_path):
    res = CliRunner().invoke(main, ["verify", str(REPO / "fixtures" / "claims" / "mmlu_pro_mistral.yaml"), "--json",
                                    "--resamples", "1000"])
    data = json.loads(res.stdout)
    data["findings"][0]["severity"] = "catastrophic"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema)
    del data["findings"][0]["subject"]
    data["findings"][0]["severity"] = "major"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema)


def test_subject_is_read_from_the_statistic_once():
    import numpy as np

    f = Finding("truncation", "vanishes", "flag", "t", statistic={"budget": 64, "scoring": "strict", "variant": "default",
                                                                  "delta": 0.1})
    assert f.subject == Subject(check="truncation", code="vanishes", budget=64, scoring="strict", variant="default")
    assert f.subject.key() == "truncation.vanishes [variant=default budget=64 scoring=strict]"
    h = Finding("s", "c", "info", "t", statistic={"ci_low": -0.1, "ci_high": np.float64(0.3)},
                provenance={"test": "mcnemar"}, rows=[{"test": "other"}])
    assert (h.interval.low, h.interval.high, h.test) == (-0.1, 0.3, "mcnemar")  # the headline, typed
    assert Finding("s", "c", "info", "t", rows=[{"test": "t-test"}]).test == "t-test"
    assert Finding("s", "c", "info", "t").interval is None
    given = Finding("x", "y", "info", "t", subject=Subject(check="x", code="y", arm="baseline"))
    assert given.subject.arm == "baseline"
    # numpy scalars and NaN are cleaned on construction: the finding is JSON-safe as built.
    g = Finding("x", "y", "info", "t", statistic={"p": np.float64("nan"), "n": np.int64(3)},
                estimates=[ForestEstimate(kind=EstimateKind.untruncated, label="l", delta=np.float64(0.5))])
    assert g.statistic == {"p": None, "n": 3} and type(g.statistic["n"]) is int
    assert g.estimates[0].delta == 0.5 and TableKind("truncation") is TableKind.truncation
