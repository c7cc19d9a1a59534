"""The embedded llama.cpp build runs on any x86-64 CPU with AVX2, and a native crash is exit 3, not a verdict."""
from __future__ import annotations

import platform
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from audit.cli import main
from conftest import FIXTURES, require_live

pytestmark = pytest.mark.live


def _libs() -> list[Path]:
    import llama_cpp

    return sorted((Path(llama_cpp.__file__).parent / "lib").glob("*.so"))


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86-64 instruction sets only")
@pytest.mark.skipif(shutil.which("objdump") is None, reason="needs objdump (binutils)")
def test_installed_llama_cpp_has_no_amx_or_avx512_instructions():
    """tools/llama_wheel.sh builds without -march=native: no AMX tile instruction and no 512-bit register anywhere
    in the libraries, so the build cannot die with SIGILL on a machine that does not enable them."""
    require_live()
    libs = _libs()
    assert libs, "no llama.cpp shared libraries found in the llama_cpp package"
    found = {}
    for lib in libs:
        asm = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(lib)], capture_output=True, text=True,
                             check=True).stdout
        hits = [w for w in ("tilezero", "ldtilecfg", "tdpbssd", "tdpbf16ps", "%zmm") if w in asm]
        if hits:
            found[lib.name] = hits
    assert not found, f"non-portable instructions in {found}: rebuild with tools/llama_wheel.sh"
    # ...and it does use AVX2 (the build is portable, not a slow generic one).
    assert any("%ymm" in subprocess.run(["objdump", "-d", str(lib)], capture_output=True, text=True).stdout
               for lib in libs if "ggml-cpu" in lib.name)


def _claim(tmp_path) -> Path:
    c = {
        "claim": {"title": "crash", "settings": {"max_tokens": 4, "scoring": "first-number"}},
        "arms": {"baseline": {"endpoint": "embedded"},
                 "treatment": {"endpoint": "embedded", "prompt": "Q: {{ question }}?\nA:"}},
        "task": {"dataset": str(FIXTURES / "data/add_small.jsonl"), "prompt": "Q: What is {{ question }}?\nA:",
                 "target": "{{ answer }}", "stop": ["\n"], "limit": 3},
    }
    p = tmp_path / "claim.yaml"
    p.write_text(yaml.safe_dump(c))
    return p


def test_sigill_in_llama_cpp_is_exit_3_with_cause_and_fix(tmp_path, monkeypatch):
    """A child that dies with SIGILL stands in for a -march=native build on a CPU that does not enable AMX."""
    require_live()
    import audit.generation.embedded as emb

    monkeypatch.setenv("AUDIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(emb, "_PROBE_CODE", "import os, signal; os.kill(os.getpid(), signal.SIGILL)")
    monkeypatch.setattr(emb, "_probed", set())
    monkeypatch.setattr(emb, "_models", {})
    res = CliRunner().invoke(main, ["verify", str(_claim(tmp_path)), "--out", str(tmp_path / "out"), "--no-cache"])
    assert res.exit_code == 3, res.output
    assert "crashed with SIGILL" in res.output
    assert "does not enable" in res.output and "tools/llama_wheel.sh" in res.output


def test_probe_passes_once_and_is_remembered(tmp_path, monkeypatch):
    require_live()
    import audit.generation.embedded as emb
    from audit.generation.model_file import resolve_model_path

    monkeypatch.setenv("AUDIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(emb, "_probed", set())
    path = resolve_model_path(None)
    emb.preflight(path, 2)
    (marker,) = (tmp_path / "cache" / "probes").glob("llama-*.ok")
    # Remembered: a probe that would now crash is not run again for the same build, model and threads.
    monkeypatch.setattr(emb, "_probed", set())
    monkeypatch.setattr(emb, "_PROBE_CODE", "import os, signal; os.kill(os.getpid(), signal.SIGILL)")
    emb.preflight(path, 2)
    assert marker.exists()
