"""`audit validate` reads the claim's probe files, so a broken one is reported before `audit verify` runs."""
from __future__ import annotations

import yaml
from click.testing import CliRunner

from audit.cli import main


def _claim(tmp_path, id_rows: str) -> str:
    (tmp_path / "probe_id.csv").write_text(id_rows)
    (tmp_path / "probe_ood.csv").write_text("id,score,label\na,0.4,1\nb,0.3,0\n")
    p = tmp_path / "claim.yaml"
    p.write_text(yaml.safe_dump({"claim": {"title": "probe"},
                                 "probes": {"in_distribution": "probe_id.csv", "ood": {"rw": "probe_ood.csv"}}}))
    return str(p)


def test_validate_reports_a_broken_probe_file_with_exit_2(tmp_path):
    res = CliRunner().invoke(main, ["validate", _claim(tmp_path, "id,score,label\na,0.5,1\nb,high,0\n")])
    assert res.exit_code == 2, res.output
    assert "probe_id.csv" in res.output and ":3" in res.output and "score is not a finite number" in res.output


def test_validate_reports_a_missing_probe_file(tmp_path):
    path = _claim(tmp_path, "id,score,label\na,0.5,1\nb,0.1,0\n")
    (tmp_path / "probe_ood.csv").unlink()
    res = CliRunner().invoke(main, ["validate", path])
    assert res.exit_code == 2, res.output
    assert "probe file not found" in res.output and "probe_ood.csv" in res.output


def test_validate_accepts_good_probe_files(tmp_path):
    res = CliRunner().invoke(main, ["validate", _claim(tmp_path, "id,score,label\na,0.5,1\nb,0.1,0\n")])
    assert res.exit_code == 0, res.output
    assert "valid" in res.output


def test_validate_refuses_a_fifo_or_proc_probe_file_without_hanging(tmp_path):
    """Issue 19: a probe file that is a FIFO (or a /proc entry) is named for what it is, exit 2, and never read."""
    import os
    import sys

    import pytest

    if not sys.platform.startswith("linux"):
        pytest.skip("FIFOs and /proc")
    path = _claim(tmp_path, "id,score,label\na,0.5,1\nb,0.1,0\n")
    (tmp_path / "probe_ood.csv").unlink()
    os.mkfifo(tmp_path / "probe_ood.csv")
    res = CliRunner().invoke(main, ["validate", path])
    assert res.exit_code == 2, res.output
    assert "probe_ood.csv" in res.output and "named pipe (FIFO)" in res.output
    (tmp_path / "probe_ood.csv").unlink()
    (tmp_path / "probe_ood.csv").symlink_to("/proc/self/status")
    res = CliRunner().invoke(main, ["validate", path])
    assert res.exit_code == 2, res.output
    assert "probe_ood.csv" in res.output and "/proc" in res.output and "kernel interface" in res.output
