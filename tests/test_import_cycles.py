"""The layout's promise: no audit module imports another that imports it back (directly or through others)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _tool():
    spec = importlib.util.spec_from_file_location("import_cycles", REPO / "tools" / "import_cycles.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_no_import_cycle():
    tool = _tool()
    mods = tool.modules()
    # The tool sees the mapped packages too (checks/ and reports/ install as audit.checks / audit.reports).
    assert {"audit.checks.truncation", "audit.reports.junit", "audit.generation.http", "audit.scoring.resolve"} <= set(mods)
    assert tool.cycles() == []


def test_the_tool_finds_a_cycle(tmp_path, monkeypatch):
    # A check that cannot fail is no check: two modules importing each other (one lazily) are reported.
    pkg = tmp_path / "cyc"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from cyc.b import f\n")
    (pkg / "b.py").write_text("def f():\n    from cyc import a\n    return a\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from cyc import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    tool = _tool()
    monkeypatch.setattr(tool, "ROOT", "cyc")
    assert tool.cycles("cyc") == [["cyc.a", "cyc.b"]]
