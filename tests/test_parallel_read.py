"""Large lm-eval replays are read by forked workers: the Records are exactly those of the in-process read, and any
worker failure falls back to it."""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas.testing as pdt
import pytest

import audit.importers as importers
from audit.claim import load_claim, resolve_paths
from audit.importers import load_records
from audit.plan import build_plan

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _logs(claim) -> dict:
    """Each planned run's lm-eval samples files, as load_records hands them to the workers."""
    return {run: [f for f in resolve_paths(claim, run.logs) if f.suffix == ".jsonl"] for run in build_plan(claim).runs}


@pytest.fixture
def claim(tmp_path):
    src = FIXTURES / "claims" / "truncation.yaml"
    shutil.copytree(FIXTURES, tmp_path / "fixtures")
    return load_claim(tmp_path / "fixtures" / "claims" / src.name)


def test_parallel_read_equals_the_in_process_read(claim, monkeypatch):
    monkeypatch.setattr(importers, "PARALLEL_MIN_BYTES", 0)
    # Other tests of the suite leave threads behind (servers, pools); the workers are forked only by a single-
    # threaded caller, so the test stands in for one.
    monkeypatch.setattr("threading.active_count", lambda: 1)
    monkeypatch.setattr(importers, "_idle_cores", lambda: 64.0)  # as on an idle machine
    jobs = importers._read_lmeval_in_parallel(claim, _logs(claim))
    assert len(jobs) >= 2  # the workers really ran
    parallel = load_records(claim)
    monkeypatch.setenv("AUDIT_READ_WORKERS", "1")
    assert importers._read_lmeval_in_parallel(claim, _logs(claim)) == {}
    serial = load_records(claim)
    pdt.assert_frame_equal(parallel.table, serial.table)
    assert parallel.sources == serial.sources and parallel.settings == serial.settings


def test_a_failing_worker_falls_back_to_the_in_process_read(claim, monkeypatch):
    monkeypatch.setattr(importers, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr("threading.active_count", lambda: 1)
    monkeypatch.setattr(importers, "_idle_cores", lambda: 64.0)

    def boom(*args, **kwargs):
        import os

        os._exit(3)  # a worker that dies

    real = importers._read_lmeval
    monkeypatch.setattr(importers, "_read_lmeval", boom)
    assert importers._read_lmeval_in_parallel(claim, _logs(claim)) == {}
    monkeypatch.setattr(importers, "_read_lmeval", real)
    monkeypatch.setattr("threading.active_count", lambda: 2)  # another thread running: no fork at all
    assert importers._read_lmeval_in_parallel(claim, _logs(claim)) == {}
    assert len(load_records(claim).table)


def test_busy_cores_read_in_process(claim, monkeypatch):
    """Fewer than two idle cores: no workers (they would share the busy cores); an explicit AUDIT_READ_WORKERS
    still caps the workers whatever the load."""
    monkeypatch.setattr(importers, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr("threading.active_count", lambda: 1)
    monkeypatch.setattr(importers, "_idle_cores", lambda: 1.2)
    assert importers._read_lmeval_in_parallel(claim, _logs(claim)) == {}
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setenv("AUDIT_READ_WORKERS", "2")
    assert len(importers._read_lmeval_in_parallel(claim, _logs(claim))) >= 2


def test_idle_cores_reads_proc_stat():
    idle = importers._idle_cores(0.02)
    if idle is None:
        pytest.skip("no /proc/stat")
    import os

    assert 0.0 <= idle <= (os.cpu_count() or 1) + 1e-9
