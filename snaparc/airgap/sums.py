"""Detached checksum files that stock tools check: `sha256sum -c` and `b3sum -c`.

For an archive ``OUT.dlmsnap`` this writes ``OUT.dlmsnap.sha256`` and
``OUT.dlmsnap.b3`` beside it, one line ``<hex>  <name>`` per file, where
``<name>`` is relative to the sums file's directory (run the checkers there).
A split archive (see `snaparc.airgap.volumes`) gets one line per volume plus
one for its index. Each file is read once; SHA-256 (hashlib) and BLAKE3 (the
`blake3` package) run in two threads over the same chunks, both releasing
the GIL, while the next chunk is read.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import blake3

from snaparc.airgap.volumes import INDEX_SUFFIX, read_index, split_index_path
from snaparc.errors import InputNotFoundError, UsageError
from snaparc.publish import os_error, write_file_atomic
from snaparc.sidefiles import open_regular_raw

SHA256_SUFFIX = ".sha256"
BLAKE3_SUFFIX = ".b3"
_CHUNK = 4 << 20


@dataclass(frozen=True)
class FileDigests:
    """Hex digests and size of one file."""

    size: int
    sha256: str
    blake3: str


def hash_file(
    path: str | os.PathLike[str], *, executor: ThreadPoolExecutor | None = None
) -> FileDigests:
    """SHA-256 and BLAKE3 of a file in one read (pipelined, two hashing threads)."""
    path = Path(path)
    sha, b3 = hashlib.sha256(), blake3.blake3()
    own = executor is None
    ex = executor or ThreadPoolExecutor(max_workers=2, thread_name_prefix="snaparc-sums")
    size = 0
    pending: tuple[Future[object], ...] = ()
    try:
        with open_regular_raw(path, what="file to checksum") as f:
            while True:
                chunk = f.read(_CHUNK)  # overlaps with hashing of the previous chunk
                for fut in pending:
                    fut.result()
                if not chunk:
                    break
                size += len(chunk)
                pending = (ex.submit(sha.update, chunk), ex.submit(b3.update, chunk))
    except FileNotFoundError:
        raise InputNotFoundError(f"file not found: {path}", path=str(path)) from None
    except OSError as exc:
        raise os_error(exc, f"reading {path}", path=path) from exc
    finally:
        for fut in pending:
            fut.cancel()
        if own:
            ex.shutdown(wait=True)
    return FileDigests(size=size, sha256=sha.hexdigest(), blake3=b3.hexdigest())


def sums_base(archive_path: str | os.PathLike[str]) -> Path:
    """The path the sums files are named after: the archive, or a split set's base name."""
    index = split_index_path(archive_path)
    if index is not None and index.is_file():
        return index.with_name(index.name[: -len(INDEX_SUFFIX)])
    return Path(archive_path)


def archive_files(archive_path: str | os.PathLike[str]) -> list[Path]:
    """The files that make up the archive: itself, or a split set's volumes + index."""
    index = split_index_path(archive_path)
    if index is not None and index.is_file():
        return [*read_index(index).paths(), index]
    path = Path(archive_path)
    if not path.is_file():
        raise InputNotFoundError(f"archive not found: {path}", path=str(path))
    return [path]


def write_sums(archive_path: str | os.PathLike[str], files: list[Path] | None = None) -> list[Path]:
    """Write ``<archive>.sha256`` and ``<archive>.b3``; return their paths.

    `files` defaults to `archive_files(archive_path)`. Existing sums files are
    replaced atomically. A name that the checkers would need escaped (newline,
    carriage return, backslash) raises UsageError.
    """
    base = sums_base(archive_path)
    targets = archive_files(archive_path) if files is None else [Path(f) for f in files]
    directory = base.parent
    names = []
    for f in targets:
        name = os.path.relpath(f, directory)
        if any(c in name for c in "\n\r\\"):
            raise UsageError(f"cannot list {name!r} in a checksum file (newline or backslash)")
        names.append(name)
    sha_lines: list[bytes] = []
    b3_lines: list[bytes] = []
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="snaparc-sums") as ex:
        for f, name in zip(targets, names, strict=True):
            d = hash_file(f, executor=ex)
            encoded = os.fsencode(name)
            sha_lines.append(d.sha256.encode() + b"  " + encoded + b"\n")
            b3_lines.append(d.blake3.encode() + b"  " + encoded + b"\n")
    sha_path = base.with_name(base.name + SHA256_SUFFIX)
    b3_path = base.with_name(base.name + BLAKE3_SUFFIX)
    write_file_atomic(sha_path, b"".join(sha_lines))
    write_file_atomic(b3_path, b"".join(b3_lines))
    return [sha_path, b3_path]
