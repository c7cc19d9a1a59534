"""The real-claims benchmark harness (make realclaims) stays runnable: every case names a fixture claim, and one
small case runs end to end and meets its expectation. The full benchmark is not part of the default test run."""
from __future__ import annotations

import importlib.util
import sys

import pytest

from conftest import REPO

DATA = REPO.parent / "shared" / "data"


def _bench():
    spec = importlib.util.spec_from_file_location("realclaims", REPO / "benchmarks" / "realclaims.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["realclaims"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_every_case_names_a_fixture_claim_and_a_verdict():
    bench = _bench()
    assert len(bench.CASES) >= 5
    for case in bench.CASES:
        assert (REPO / "fixtures" / "claims" / case.claim).is_file(), case.claim
        assert case.expected in ("supported", "fragile", "not_reproduced", "inconclusive")
        assert case.why and (case.expected_before is None or case.revised)


@pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data is not beside the repository")
def test_the_reflexion_case_meets_its_expectation(tmp_path):
    bench = _bench()
    assert bench.main(["--only", "reflexion_mbpp.yaml", "--out", str(tmp_path)]) == 0
