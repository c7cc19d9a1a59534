"""Generation cache: one SQLite file, one row per (model identity, sampling parameters, prompt).

Why SQLite in WAL mode with a commit after every put: a live run can be killed at any moment (SIGKILL, OOM,
a closed laptop) and everything generated before that moment must survive, so a re-run costs only the
generations that were still missing. A row is the unit of durability; there is no batching.

The key is the sha256 of canonical JSON of what decides the output (``key_for``): the endpoint's identity
(URL or embedded model file hash, model name, API flavour — never the API key, never replica order), every
sampling parameter, the prompt and the system prompt. The item id is *not* part of the key: two items with the
same prompt and parameters would get the same generation from the server anyway (exactly so when greedy).

No secret is stored: an API key the runner read is scrubbed from every generation before it is written
(``put``), should a server echo it into a completion; the key is never part of the row's key material.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from audit.errors import InputError, Problem, ServerError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from audit.generation.types import Endpoint, Generation, GenerationRequest

#: bump when the key recipe or the payload layout changes; old rows then simply stop matching
KEY_VERSION = 1
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (
    key        TEXT PRIMARY KEY,
    model      TEXT NOT NULL,
    url        TEXT NOT NULL,
    created    REAL NOT NULL,
    payload    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


def default_cache_path() -> Path:
    """``$AUDIT_CACHE_DIR/generations.sqlite``, else ``~/.cache/audit/generations.sqlite``."""
    base = os.environ.get("AUDIT_CACHE_DIR")
    root = Path(base).expanduser() if base else Path.home() / ".cache" / "audit"
    return root / "generations.sqlite"


def canonical_json(obj: Any) -> str:
    """Sorted keys, no whitespace, no NaN: the same object always gives the same bytes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def key_for(endpoint: "Endpoint", request: "GenerationRequest") -> str:
    """sha256 of canonical JSON of everything that decides a generation (see module docstring)."""
    material = {
        "v": KEY_VERSION,
        "endpoint": endpoint.identity(),
        "api": endpoint.api,
        "params": request.params(),
        "prompt": request.prompt,
        "system_prompt": request.system_prompt,
    }
    return hashlib.sha256(canonical_json(material).encode("utf-8")).hexdigest()


def _encode(gen: "Generation") -> str:
    data = asdict(gen)
    data.pop("cached", None)
    for name in ("tokens", "token_logprobs"):
        if data.get(name) is not None:
            data[name] = list(data[name])
    return json.dumps(data, ensure_ascii=False, allow_nan=True)


def _decode(payload: str) -> "Generation":
    from audit.generation.types import Generation

    data = json.loads(payload)
    known = set(Generation.__dataclass_fields__)
    data = {k: v for k, v in data.items() if k in known and k != "cached"}
    for name in ("tokens", "token_logprobs"):
        if data.get(name) is not None:
            data[name] = tuple(data[name])
    return Generation(**data, cached=True)


class GenerationCache:
    """SQLite-backed store of generations; safe for many asyncio tasks (and threads) of one process.

    One connection guarded by a lock; every ``put`` is its own committed transaction. Other processes may read
    (WAL) while a run writes; two processes writing the same file serialise on SQLite's lock (30 s busy wait).
    """

    def __init__(self, path: str | Path | None = None, *, busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path).expanduser() if path is not None else default_cache_path()
        self._lock = threading.Lock()
        self._refuse_special()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(
                [
                    Problem(
                        "cannot create the cache directory",
                        file=str(self.path.parent),
                        value=str(exc),
                        fix="set AUDIT_CACHE_DIR (or --cache) to a writable directory",
                    )
                ]
            ) from exc
        try:
            self._conn = sqlite3.connect(
                str(self.path), timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)
            self._conn.execute(
                "INSERT OR IGNORE INTO meta(name, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
            row = self._conn.execute("SELECT value FROM meta WHERE name='schema_version'").fetchone()
        except sqlite3.Error as exc:
            self._raise(exc, "open")
        if row is None or row[0] != str(SCHEMA_VERSION):
            raise InputError(
                [
                    Problem(
                        "generation cache has an unknown schema version",
                        file=str(self.path),
                        value=None if row is None else row[0],
                        fix="delete the file or point AUDIT_CACHE_DIR at another directory",
                    )
                ]
            )

    # -- errors ---------------------------------------------------------------------------------------------
    def _refuse_special(self) -> None:
        """The cache must be a regular file (or not exist yet): SQLite would block forever on a FIFO and cannot
        keep a database in a device or a /proc entry."""
        import stat

        real = os.path.realpath(self.path)
        problem = None
        if any(real == t or real.startswith(t + "/") for t in ("/proc", "/sys")) or (
            real.startswith("/dev/") and not real.startswith("/dev/shm/")
        ):
            problem = f"the generation cache path is {real}, a kernel interface or device, not a file"
        else:
            try:
                st = os.stat(self.path)
            except OSError:
                st = None
            if st is not None and stat.S_ISDIR(st.st_mode):
                problem = "the generation cache path is a folder, not a file"
            elif st is not None and not stat.S_ISREG(st.st_mode):
                problem = "the generation cache path is not a regular file (a FIFO, a device or a socket)"
        if problem:
            raise InputError(
                [
                    Problem(
                        problem,
                        file=str(self.path),
                        field="--cache",
                        fix="give --cache (or AUDIT_CACHE_DIR) a regular file path, e.g. "
                        "~/.cache/audit/generations.sqlite",
                    )
                ]
            )

    def _raise(self, exc: sqlite3.Error, doing: str) -> NoReturn:
        text = str(exc)
        low = text.lower()
        if (
            "readonly" in low
            or "read-only" in low
            or "unable to open" in low
            or "permission" in low
            or (isinstance(exc, sqlite3.OperationalError) and "disk i/o error" in low and doing == "open")
        ):
            raise InputError(
                [
                    Problem(
                        f"the generation cache cannot be {'opened' if doing == 'open' else 'written'}: the file or its "
                        f"folder is read-only or not accessible to this user ({doing}: {text})",
                        file=str(self.path),
                        fix="make the file and its folder writable (chmod u+w), point --cache or AUDIT_CACHE_DIR at a "
                        "writable place, or run with --no-cache; the cached generations themselves are fine",
                    )
                ]
            ) from exc
        if "disk is full" in low or "database or disk is full" in low:
            raise InputError(
                [
                    Problem(
                        f"the disk holding the generation cache is full ({doing}: {text})",
                        file=str(self.path),
                        fix="free space, or point --cache / AUDIT_CACHE_DIR at another disk",
                    )
                ]
            ) from exc
        if "locked" in text or "busy" in text:
            raise ServerError(
                f"generation cache {self.path} is locked by another process ({doing}: {text}); "
                "fix: wait for the other `audit` run to finish, or give this run its own AUDIT_CACHE_DIR"
            ) from exc
        raise InputError(
            [
                Problem(
                    f"the generation cache is not a usable SQLite database ({doing} failed: damaged, "
                    "or another kind of file)",
                    file=str(self.path),
                    value=text,
                    fix="if it is an old cache, delete the file (`audit cache clear` cannot read it either); otherwise "
                    "point --cache or AUDIT_CACHE_DIR at another file",
                )
            ]
        ) from exc

    # -- API ------------------------------------------------------------------------------------------------
    @staticmethod
    def key_for(endpoint: "Endpoint", request: "GenerationRequest") -> str:
        return key_for(endpoint, request)

    def get(self, key: str) -> "Generation | None":
        try:
            with self._lock:
                row = self._conn.execute("SELECT payload FROM generations WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error as exc:
            self._raise(exc, "read")
        if row is None:
            return None
        try:
            return _decode(row[0])
        except (ValueError, TypeError):
            # one unreadable row is a cache miss, not a failed audit: it is regenerated and overwritten
            return None

    def put(self, key: str, gen: "Generation", *, model: str = "", url: str = "") -> None:
        """Store and commit at once, so a kill right after ``put`` returns loses nothing.

        Every registered secret (an API key the runner read, :mod:`audit.textsafe`) is scrubbed first: the cache
        is a file on disk, and a server may echo the key into its completion."""
        from audit.generation.types import scrub_generation
        from audit.textsafe import scrub

        payload = _encode(scrub_generation(gen))
        model, url = scrub(model), scrub(url)
        try:
            with self._lock:
                self._conn.execute(
                    "INSERT OR REPLACE INTO generations(key, model, url, created, payload) VALUES (?,?,?,?,?)",
                    (key, model, url, time.time(), payload),
                )
        except sqlite3.Error as exc:
            self._raise(exc, "write")

    def __contains__(self, key: str) -> bool:
        try:
            with self._lock:
                return self._conn.execute("SELECT 1 FROM generations WHERE key = ?", (key,)).fetchone() is not None
        except sqlite3.Error as exc:
            self._raise(exc, "read")

    def __len__(self) -> int:
        try:
            with self._lock:
                return self._conn.execute("SELECT COUNT(*) FROM generations").fetchone()[0]
        except sqlite3.Error as exc:
            self._raise(exc, "read")

    def info(self) -> dict:
        """``{"path", "entries", "size_bytes", "models": {model name: entries}}``; size counts the WAL files."""
        try:
            with self._lock:
                entries = self._conn.execute("SELECT COUNT(*) FROM generations").fetchone()[0]
                models = dict(
                    self._conn.execute(
                        "SELECT model, COUNT(*) FROM generations GROUP BY model ORDER BY model"
                    ).fetchall()
                )
        except sqlite3.Error as exc:
            self._raise(exc, "read")
        size = 0
        for suffix in ("", "-wal", "-shm"):
            p = Path(str(self.path) + suffix)
            if p.exists():
                size += p.stat().st_size
        return {"path": str(self.path), "entries": entries, "size_bytes": size, "models": models}

    def clear(self) -> int:
        """Delete every generation; returns how many there were."""
        try:
            with self._lock:
                n = self._conn.execute("SELECT COUNT(*) FROM generations").fetchone()[0]
                self._conn.execute("DELETE FROM generations")
                self._conn.execute("VACUUM")
        except sqlite3.Error as exc:
            self._raise(exc, "clear")
        return n

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "GenerationCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"GenerationCache({str(self.path)!r})"
