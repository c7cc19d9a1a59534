"""Reading compressed inputs with limits: a ``.zip`` member, a ``.gz`` file, the members of an inspect ``.eval`` log.

A few MiB of compressed input can expand to gigabytes (a "decompression bomb"), so nothing is decompressed
without bounds. Every archive or compressed file ``audit`` reads is held to:

* **total uncompressed size** — at most :data:`MAX_UNCOMPRESSED` bytes for one archive, all members together, or
  for one ``.gz`` file (1 GiB; the environment variable ``AUDIT_MAX_UNCOMPRESSED_MB`` sets another limit);
* **compression ratio** — at most :data:`MAX_RATIO` (uncompressed / compressed: 200;
  ``AUDIT_MAX_COMPRESSION_RATIO``) for any member, or ``.gz`` file, that expands past :data:`RATIO_FLOOR` (16 MiB):
  real logs compress 3–50 fold, bombs about 1000 fold;
* **member count** — at most :data:`MAX_MEMBERS` members in one zip or ``.eval`` log (10,000);
* **nesting** — archives are opened one level deep (:data:`MAX_NESTING`): a member that is itself a zip or gzip is
  refused, not opened.

Sizes are checked twice: first the sizes the archive declares (a bomb that declares its real size is refused before
anything is decompressed), then while decompressing, chunk by chunk, with every decompressor asked for at most one
chunk of output at a time — so an archive that lies about its sizes is stopped at the limit, never after it.
Python's ``zipfile`` cannot be used for that: for bzip2, lzma and zstd members it decompresses a whole read at once,
and ``read()`` reads the whole member, so this module reads the members' raw bytes and decompresses them itself.
Encrypted members, compression methods it cannot read (deflate64, ...), damaged archives, CRC mismatches and cut-off
gzip streams are :class:`~audit.errors.Problem` s naming the file and the member, never crashes: exit 2.
"""

from __future__ import annotations

import bz2
import lzma
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

from audit.errors import InputError, Problem

MiB = 1 << 20
MAX_UNCOMPRESSED = 1 << 30
"""Largest total uncompressed size of one archive (all members) or one .gz file, in bytes."""
MAX_RATIO = 200.0
"""Largest uncompressed / compressed ratio of a member (or a .gz file) that expands past :data:`RATIO_FLOOR`."""
RATIO_FLOOR = 16 * MiB
"""A member smaller than this is never refused for its ratio (a small file of one repeated line compresses well)."""
MAX_MEMBERS = 10_000
"""Most members one zip (or inspect .eval log) may hold."""
MAX_NESTING = 1
"""Archives are opened one level deep: a member that is itself an archive is refused."""

_CHUNK = 1 * MiB
_RAW_CHUNK = 64 * 1024
_STORED, _DEFLATED, _BZIP2, _LZMA, _ZSTD = 0, 8, 12, 14, 93
_METHOD_NAMES = {
    0: "stored",
    8: "deflate",
    9: "deflate64",
    12: "bzip2",
    14: "lzma",
    93: "zstandard",
    95: "xz",
    96: "jpeg",
    97: "wavpack",
    98: "ppmd",
    99: "AES encryption",
}
_READABLE = (_STORED, _DEFLATED, _BZIP2, _LZMA, _ZSTD)


@dataclass(frozen=True)
class Limits:
    """The limits in force: the module's defaults, or what ``AUDIT_MAX_UNCOMPRESSED_MB`` and
    ``AUDIT_MAX_COMPRESSION_RATIO`` say."""

    max_bytes: int = MAX_UNCOMPRESSED
    max_ratio: float = MAX_RATIO
    max_members: int = MAX_MEMBERS
    ratio_floor: int = RATIO_FLOOR

    @classmethod
    def from_env(cls) -> "Limits":
        def num(name: str, default: float) -> float:
            raw = os.environ.get(name)
            if raw is None or not raw.strip():
                return default
            try:
                v = float(raw)
            except ValueError:
                v = float("nan")
            if not (0 < v < 1e9):
                raise InputError(
                    [
                        Problem(
                            f"the environment variable {name} must be a positive number",
                            field=name,
                            value=raw,
                            fix=f"unset {name} or set it to a positive number",
                        )
                    ]
                )
            return v

        return cls(
            max_bytes=int(num("AUDIT_MAX_UNCOMPRESSED_MB", MAX_UNCOMPRESSED / MiB) * MiB),
            max_ratio=num("AUDIT_MAX_COMPRESSION_RATIO", MAX_RATIO),
        )


class _Refused(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def _size(n: float) -> str:
    return f"{n / MiB:,.0f} MiB" if n >= MiB else f"{int(n):,} bytes"


_RAISE = (
    "if the file is genuine, raise the limit (AUDIT_MAX_UNCOMPRESSED_MB, AUDIT_MAX_COMPRESSION_RATIO) or "
    "decompress it yourself and point the claim at the plain file"
)


def _what(member: str | None) -> str:
    return f"member {member!r}" if member else "the decompressed data"


def _too_large(name: str, member: str | None, size: int, limits: Limits, declared: bool) -> Problem:
    how = "declares" if declared else "expands to more than"
    return Problem(
        f"{_what(member)} {how} {_size(size)} uncompressed: over the limit of {_size(limits.max_bytes)} "
        "per archive (a decompression bomb, or far larger than a log should be)",
        file=name,
        field=member,
        fix=_RAISE,
    )


def _bad_ratio(
    name: str, member: str | None, size: int, packed: int, limits: Limits, declared: bool = False
) -> Problem:
    how = "declares a" if declared else "expands"
    return Problem(
        f"{_what(member)} {how} {size / max(packed, 1):,.0f}-fold expansion ({_size(packed)} → "
        f"{_size(size)}{'' if declared else ' so far'}): over the compression-ratio limit of "
        f"{limits.max_ratio:g} (a decompression bomb)",
        file=name,
        field=member,
        fix=_RAISE,
    )


def _damaged(name: str, member: str | None, why: str) -> Problem:
    where = f"member {member!r}: " if member else ""
    return Problem(
        f"{where}cannot decompress: {why[:200]}",
        file=name,
        field=member,
        fix="the archive is damaged or cut short: copy or download it again",
    )


def _nested_kind(head: bytes) -> str | None:
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "a zip archive"
    if head[:2] == b"\x1f\x8b":
        return "gzip data"
    return None


def _nested(name: str, member: str | None, head: bytes) -> Problem | None:
    kind = _nested_kind(head)
    if kind is None:
        return None
    return Problem(
        f"{_what(member)} is itself {kind}: archives are opened one level deep (nesting limit {MAX_NESTING})",
        file=name,
        field=member,
        fix="unpack the inner archive and point the claim at the file inside it",
    )


# ---------------------------------------------------------------------------------------------------------------
# zip


def zip_members(
    path: str | Path, problems: list[Problem], limits: Limits | None = None
) -> list[zipfile.ZipInfo] | None:
    """The members of the zip at ``path`` with their count and declared sizes checked; None (and a Problem) when
    the zip cannot be read or breaks a limit."""
    from audit.jsonlines import _open_problem, regular_file_problem

    limits = limits or Limits.from_env()
    name = str(path)
    problem = regular_file_problem(name, "the archive")
    if problem is not None:
        problems.append(problem)
        return None
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except OSError as exc:
        if exc.errno is None:
            problems.append(
                Problem(
                    f"not a readable zip archive: {str(exc)[:200]}",
                    file=name,
                    fix="check the file is a complete .zip (a download cut short?)",
                )
            )
        else:
            problems.append(_open_problem(exc, name, "the archive"))
        return None
    except Exception as exc:  # BadZipFile, LargeZipFile, EOFError, struct.error, ValueError: all "not a zip"
        problems.append(
            Problem(
                f"not a readable zip archive: {str(exc)[:200] or type(exc).__name__}",
                file=name,
                fix="check the file is a complete .zip (a download cut short?)",
            )
        )
        return None
    if len(infos) > limits.max_members:
        problems.append(
            Problem(
                f"the zip holds {len(infos):,} members: over the limit of {limits.max_members:,}",
                file=name,
                fix="give an archive holding the run's log files only",
            )
        )
        return None
    total = sum(max(i.file_size, 0) for i in infos)
    if total > limits.max_bytes:
        problems.append(
            Problem(
                f"the zip's members declare {_size(total)} uncompressed in all: over the limit of "
                f"{_size(limits.max_bytes)} per archive (a decompression bomb?)",
                file=name,
                fix=_RAISE,
            )
        )
        return None
    return infos


def _member_problem(name: str, info: zipfile.ZipInfo, limits: Limits, budget: int) -> Problem | None:
    member = info.filename
    if info.flag_bits & 0x41:
        return Problem(
            f"member {member!r} is encrypted",
            file=name,
            field=member,
            fix="unzip it with its password and point the claim at the plain file",
        )
    if info.compress_type not in _READABLE:
        method = _METHOD_NAMES.get(info.compress_type, f"method {info.compress_type}")
        return Problem(
            f"member {member!r} is compressed with {method}, which audit cannot read",
            file=name,
            field=member,
            fix="re-zip it with plain deflate (zip -Z deflate), or unzip it and point the claim at the file",
        )
    if info.file_size > budget:
        return _too_large(name, member, info.file_size, limits, declared=True)
    if info.file_size > limits.ratio_floor and info.file_size / max(info.compress_size, 1) > limits.max_ratio:
        return _bad_ratio(name, member, info.file_size, info.compress_size, limits, declared=True)
    return None


def _raw(fh: BinaryIO, info: zipfile.ZipInfo, name: str) -> Iterator[bytes]:
    """The member's compressed bytes, as stored, in small pieces."""
    fh.seek(info.header_offset)
    head = fh.read(30)
    if len(head) != 30 or head[:4] != b"PK\x03\x04":
        raise _Refused(_damaged(name, info.filename, "bad local file header"))
    n, m = struct.unpack("<HH", head[26:30])
    fh.seek(info.header_offset + 30 + n + m)
    left = info.compress_size
    while left > 0:
        piece = fh.read(min(_RAW_CHUNK, left))
        if not piece:
            raise _Refused(_damaged(name, info.filename, "the archive ends inside this member"))
        left -= len(piece)
        yield piece


class _RawReader:
    """A file-like view of the raw pieces, for zstandard's stream reader."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._pieces = pieces
        self._buf = b""

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buf) < n:
            piece = next(self._pieces, None)
            if piece is None:
                break
            self._buf += piece
        if n < 0:
            out, self._buf = self._buf, b""
        else:
            out, self._buf = self._buf[:n], self._buf[n:]
        return out


def _bounded(decompress, pieces: Iterator[bytes], eof) -> Iterator[bytes]:
    """Drive a zlib/bz2/lzma-style decompressor that takes ``max_length``: never more than one chunk of output
    per call, whatever the input holds."""
    for piece in pieces:
        data = piece
        while True:
            out = decompress(data, _CHUNK)
            if out:
                yield out
            data = b""
            if eof():
                return
            if not _pending(decompress):
                break
    while not eof():  # the input is consumed; drain what the decompressor still holds, a chunk at a time
        out = decompress(b"", _CHUNK)
        if not out:
            return
        yield out


def _pending(decompress) -> bool:
    owner = getattr(decompress, "__self__", None)
    if owner is None:
        return False
    if hasattr(owner, "unconsumed_tail"):  # zlib
        return bool(owner.unconsumed_tail)
    return not getattr(owner, "needs_input", True)  # bz2, lzma: output left to give before more input


def _zlib_chunks(d, pieces: Iterator[bytes]) -> Iterator[bytes]:
    for piece in pieces:
        data = piece
        while data:
            out = d.decompress(data, _CHUNK)
            data = d.unconsumed_tail
            if out:
                yield out
            if d.eof:
                return
    while not d.eof:
        out = d.decompress(b"", _CHUNK)
        if not out:
            return
        yield out


def _decompressed(fh: BinaryIO, info: zipfile.ZipInfo, name: str) -> Iterator[bytes]:
    pieces = _raw(fh, info, name)
    method = info.compress_type
    if method == _STORED:
        yield from pieces
    elif method == _DEFLATED:
        yield from _zlib_chunks(zlib.decompressobj(-zlib.MAX_WBITS), pieces)
    elif method == _BZIP2:
        bz = bz2.BZ2Decompressor()
        yield from _bounded(bz.decompress, pieces, lambda: bz.eof)
    elif method == _LZMA:
        reader = _RawReader(pieces)
        head = reader.read(4)
        if len(head) < 4:
            raise _Refused(_damaged(name, info.filename, "lzma header cut short"))
        (psize,) = struct.unpack("<H", head[2:4])
        props = reader.read(psize)
        try:
            filt = lzma._decode_filter_properties(  # type: ignore[attr-defined]  # private, not in typeshed
                lzma.FILTER_LZMA1, props
            )  # what zipfile itself does
        except (lzma.LZMAError, ValueError) as exc:
            raise _Refused(_damaged(name, info.filename, f"lzma header: {exc}")) from None
        lz = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[filt])
        rest = reader.read()
        yield from _bounded(lz.decompress, _chain(rest, pieces), lambda: lz.eof)
    elif method == _ZSTD:
        try:
            import zstandard
        except ImportError:
            raise _Refused(
                Problem(
                    f"member {info.filename!r} is zstandard-compressed, and the zstandard package is not installed",
                    file=name,
                    field=info.filename,
                    fix="pip install zstandard, or re-zip the file with deflate",
                )
            ) from None
        zreader = zstandard.ZstdDecompressor().stream_reader(
            _RawReader(pieces),  # type: ignore[arg-type]  # zstandard reads any object with read(); stub wants IO
            read_across_frames=True,
        )
        while True:
            out = zreader.read(_CHUNK)  # at most _CHUNK bytes of output per call
            if not out:
                return
            yield out
    else:  # pragma: no cover - _member_problem refuses the others first
        raise _Refused(_damaged(name, info.filename, f"compression method {method}"))


def _read_checked(
    fh: BinaryIO, info: zipfile.ZipInfo, name: str, limits: Limits, budget: int, keep: bool
) -> tuple[int, bytes | None]:
    """(uncompressed size, bytes if ``keep``) of one member, every limit checked while it is decompressed."""
    problem = _member_problem(name, info, limits, budget)
    if problem is not None:
        raise _Refused(problem)
    chunks: list[bytes] = []
    size = 0
    crc = 0
    try:
        for chunk in _decompressed(fh, info, name):
            if size == 0:
                nested = _nested(name, info.filename, chunk)
                if nested is not None:
                    raise _Refused(nested)
            size += len(chunk)
            if size > budget:
                raise _Refused(_too_large(name, info.filename, budget, limits, declared=False))
            if size > limits.ratio_floor and size / max(info.compress_size, 1) > limits.max_ratio:
                raise _Refused(_bad_ratio(name, info.filename, size, info.compress_size, limits))
            if size > info.file_size:
                raise _Refused(
                    _damaged(
                        name, info.filename, f"it holds more than the {info.file_size:,} bytes its header declares"
                    )
                )
            crc = zlib.crc32(chunk, crc)
            if keep:
                chunks.append(chunk)
    except _Refused:
        raise
    except (zlib.error, lzma.LZMAError, EOFError, OSError, ValueError, struct.error) as exc:
        raise _Refused(_damaged(name, info.filename, str(exc) or type(exc).__name__)) from None
    except Exception as exc:  # zstandard.ZstdError and the like: a damaged stream
        raise _Refused(_damaged(name, info.filename, f"{type(exc).__name__}: {exc}")) from None
    if size != info.file_size:
        raise _Refused(
            _damaged(name, info.filename, f"it holds {size:,} bytes, its header declares {info.file_size:,}")
        )
    if crc != info.CRC:
        raise _Refused(_damaged(name, info.filename, "CRC-32 mismatch"))
    return size, (b"".join(chunks) if keep else None)


def read_member(
    path: str | Path, info: zipfile.ZipInfo, problems: list[Problem], limits: Limits | None = None
) -> bytes | None:
    """One member's bytes, decompressed under the limits; None (and a Problem naming file, member and limit)
    when it is encrypted, damaged, in a method audit cannot read, itself an archive, or too large."""
    limits = limits or Limits.from_env()
    name = str(path)
    try:
        with open(path, "rb") as fh:
            return _read_checked(fh, info, name, limits, limits.max_bytes, keep=True)[1]
    except _Refused as exc:
        problems.append(exc.problem)
    except OSError as exc:
        from audit.jsonlines import _open_problem

        problems.append(_open_problem(exc, name, "the archive"))
    return None


def check_archive(
    path: str | Path, limits: Limits | None = None, what: str = "archive", unreadable_ok: bool = False
) -> list[Problem]:
    """Every member of a zip decompressed (and dropped) under the limits — member count, total size, ratio,
    nesting, CRC — before another reader is given the file; the problems found (at most a few), or [].
    ``unreadable_ok``: a file that is not a readable zip at all is left to that reader to name (inspect_ai says
    what an .eval log cut short looks like)."""
    limits = limits or Limits.from_env()
    problems: list[Problem] = []
    infos = zip_members(path, problems, limits)
    if infos is None:
        if unreadable_ok and all(p.message.startswith("not a readable zip archive") for p in problems):
            return []
        return problems
    name = str(path)
    left = limits.max_bytes
    try:
        with open(path, "rb") as fh:
            for info in infos:
                if info.is_dir():
                    continue
                try:
                    size, _ = _read_checked(fh, info, name, limits, left, keep=False)
                except _Refused as exc:
                    problems.append(exc.problem)
                    if len(problems) >= 5:
                        break
                    continue
                left -= size
    except OSError as exc:
        from audit.jsonlines import _open_problem

        problems.append(_open_problem(exc, name, f"the {what}"))
    return problems


# ---------------------------------------------------------------------------------------------------------------
# gzip


def read_gzip(path: str | Path, problems: list[Problem], limits: Limits | None = None) -> bytes | None:
    """A .gz file decompressed chunk by chunk under the size and ratio limits; None (and a Problem) when it is
    damaged, cut short, empty, itself an archive, or too large. Concatenated gzip members read as one stream."""
    from audit.jsonlines import _open_problem, regular_file_problem

    limits = limits or Limits.from_env()
    name = str(path)
    problem = regular_file_problem(name, "the file")
    if problem is not None:
        problems.append(problem)
        return None
    try:
        with open(path, "rb") as fh:
            data = _gunzip(fh, name, limits, problems)
    except zlib.error as exc:
        problems.append(
            Problem(
                f"not valid gzip data ({exc})",
                file=name,
                fix="check the file is a complete .gz (or drop the .gz suffix if it is plain text)",
            )
        )
        return None
    except OSError as exc:
        problems.append(_open_problem(exc, name, "the file"))
        return None
    return data


def _gunzip(fh: BinaryIO, name: str, limits: Limits, problems: list[Problem]) -> bytes | None:
    """Every gzip member of ``fh`` decompressed; None (and a Problem) at the first limit broken or damage found."""
    out: list[bytes] = []
    size = packed = 0

    def pieces(fh) -> Iterator[bytes]:
        nonlocal packed
        while True:
            raw = fh.read(_RAW_CHUNK)
            if not raw:
                return
            packed += len(raw)
            yield raw

    stream = pieces(fh)
    first = True
    while True:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        for chunk in _zlib_chunks(d, stream):
            problem = _gzip_chunk_problem(name, chunk, size, packed, limits)
            if problem is not None:
                problems.append(problem)
                return None
            size += len(chunk)
            out.append(chunk)
        if not d.eof:
            if first and packed == 0:
                problems.append(
                    Problem(
                        "the .gz file is empty", file=name, fix="check the path: an empty file is not a gzip stream"
                    )
                )
            else:
                problems.append(
                    Problem(
                        "the gzip stream is cut short (no end-of-stream marker)",
                        file=name,
                        fix="the file is incomplete: copy or download it again",
                    )
                )
            return None
        first = False
        rest = d.unused_data  # another gzip member (concatenated .gz files), padding, or garbage
        if not rest.strip(b"\x00"):
            tail = next(stream, b"")
            if not tail.strip(b"\x00"):
                break
            rest = tail
        stream = _chain(rest, stream)
    return b"".join(out)


def _gzip_chunk_problem(name: str, chunk: bytes, size: int, packed: int, limits: Limits) -> Problem | None:
    """The limit that one more decompressed chunk breaks (an archive inside, total size, ratio), or None."""
    if size == 0 and _nested_kind(chunk):
        return _nested(name, None, chunk)
    size += len(chunk)
    if size > limits.max_bytes:
        return _too_large(name, None, limits.max_bytes, limits, declared=False)
    if size > limits.ratio_floor and size / max(packed, 1) > limits.max_ratio:
        return _bad_ratio(name, None, size, packed, limits)
    return None


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


__all__ = [
    "Limits",
    "MAX_UNCOMPRESSED",
    "MAX_RATIO",
    "RATIO_FLOOR",
    "MAX_MEMBERS",
    "MAX_NESTING",
    "zip_members",
    "read_member",
    "check_archive",
    "read_gzip",
]
