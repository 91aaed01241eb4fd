"""sha256 + blake3 of files and byte streams, at hardware speed.

hashlib's sha256 (OpenSSL, SHA-NI) and the `blake3` package both release the
GIL on large buffers, so the two digests of one big file run on two threads
over the same mmap. Digests never depend on read sizes or thread counts.
"""

from __future__ import annotations

import hashlib
import mmap
import os
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import blake3

CHUNK = 8 * 1024 * 1024
_SMALL = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class FileDigests:
    sha256: str
    blake3: str
    size: int


class DualHasher:
    """Incremental sha256 + blake3 of one byte stream."""

    __slots__ = ("_b3", "_sha", "size")

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self._b3 = blake3.blake3()
        self.size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._sha.update(data)
        self._b3.update(data)
        self.size += len(data)

    def digests(self) -> FileDigests:
        return FileDigests(self._sha.hexdigest(), self._b3.hexdigest(), self.size)


def digest_bytes(data: bytes) -> FileDigests:
    h = DualHasher()
    h.update(data)
    return h.digests()


def _sha256_of(path: Path, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f, mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ) as mm:
        view = memoryview(mm)
        try:
            for off in range(0, size, CHUNK):
                h.update(view[off : off + CHUNK])
        finally:
            view.release()
    return h.hexdigest()


def _blake3_of(path: Path) -> str:
    h = blake3.blake3()
    h.update_mmap(os.fspath(path))
    return str(h.hexdigest())


def _both_small(path: Path) -> tuple[str, str, int]:
    with open(path, "rb") as f:
        data = f.read()
    d = digest_bytes(data)
    return d.sha256, d.blake3, d.size


def hash_files(paths: Iterable[tuple[Path, int]], *, threads: int) -> list[FileDigests]:
    """Digests of (path, expected size) pairs, in input order.

    Small files are read once and hashed on one thread; big files get their
    sha256 and blake3 computed on two threads over an mmap. A size that
    differs from the expected one means the file changed under us.
    """
    items = list(paths)
    out: list[FileDigests] = []
    with ThreadPoolExecutor(max_workers=max(2, threads)) as pool:
        jobs: list[
            tuple[
                Path,
                int,
                Future[tuple[str, str, int]] | None,
                Future[str] | None,
                Future[str] | None,
            ]
        ] = []
        for path, size in items:
            if size < _SMALL:
                jobs.append((path, size, pool.submit(_both_small, path), None, None))
            else:
                jobs.append(
                    (
                        path,
                        size,
                        None,
                        pool.submit(_sha256_of, path, size),
                        pool.submit(_blake3_of, path),
                    )
                )
        for path, _size, small, sha_f, b3_f in jobs:
            if small is not None:
                sha, b3, actual = small.result()
                out.append(FileDigests(sha, b3, actual))
            else:
                assert sha_f is not None and b3_f is not None
                out.append(FileDigests(sha_f.result(), b3_f.result(), os.stat(path).st_size))
    return out
