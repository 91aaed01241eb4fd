"""sha256 + blake3 of files and byte streams, at hardware speed.

hashlib's sha256 (OpenSSL, SHA-NI) and the `blake3` package both release the
GIL on large buffers, so the two digests of one big file run on two threads
over the same mmap. Digests never depend on read sizes or thread counts.

A big file can also get its frame digests (format 1.2): the blake3 of the
bytes each frame of its archive member carries (`FrameHasher`), on a third
thread beside the other two, from the same read.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import blake3

from snaparc.format.constants import FRAME_SIZE, TAR_BLOCK

CHUNK = 8 * 1024 * 1024
_SMALL = 4 * 1024 * 1024


class ChunkObserver(Protocol):
    """Sees a file's bytes in order while they are hashed (no second read)."""

    def feed(self, data: memoryview, /) -> None: ...


@dataclass(frozen=True, slots=True)
class FileDigests:
    sha256: str
    blake3: str
    size: int
    # blake3 of the bytes in each frame of the file's member, when asked for
    frames: tuple[str, ...] = ()


class FrameHasher:
    """blake3 of a blob's bytes frame by frame, as its member is cut: the first
    frame carries FRAME_SIZE - 512 bytes (after the tar header), every other
    FRAME_SIZE (`snaparc.format.manifest.frame_content_ranges`)."""

    __slots__ = ("_done", "_h", "_left")

    def __init__(self) -> None:
        self._h = blake3.blake3()
        self._left = FRAME_SIZE - TAR_BLOCK
        self._done: list[str] = []

    def update(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        while len(view):
            take = min(self._left, len(view))
            self._h.update(view[:take])
            view = view[take:]
            self._left -= take
            if not self._left:
                self._done.append(str(self._h.hexdigest()))
                self._h = blake3.blake3()
                self._left = FRAME_SIZE

    def digests(self) -> tuple[str, ...]:
        """One digest per frame; the last frame's once it holds any byte."""
        started = self._left != (FRAME_SIZE if self._done else FRAME_SIZE - TAR_BLOCK)
        return (*self._done, str(self._h.hexdigest())) if started else tuple(self._done)


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


def _both_small(path: Path, observer: ChunkObserver | None) -> FileDigests:
    with open(path, "rb") as f:
        data = f.read()
    if observer is not None:
        observer.feed(memoryview(data))
    return digest_bytes(data)


def _hash_big(
    path: Path,
    sha_pool: ThreadPoolExecutor,
    b3_pool: ThreadPoolExecutor,
    observer: ChunkObserver | None,
    frame_pool: ThreadPoolExecutor | None = None,
) -> FileDigests:
    """sha256 and blake3 of one big file on two threads, reading it once (and,
    with `frame_pool`, its frame digests on a third).

    Plain reads into three rotating buffers (no mmap: mapped pages would
    count as resident memory, growing with the file); at most two chunks
    are being hashed while the third is read.
    """
    sha = hashlib.sha256()
    b3 = blake3.blake3()
    frames = FrameHasher() if frame_pool is not None else None
    bufs = [bytearray(CHUNK) for _ in range(3)]
    pending: deque[list[Future[object]]] = deque()
    size = 0
    with open(path, "rb", buffering=0) as f:
        for i in itertools.count():
            while len(pending) > 1:
                for fut in pending.popleft():
                    fut.result()
            buf = bufs[i % 3]
            n = f.readinto(buf)
            if not n:
                break
            view = memoryview(buf)[:n]
            if observer is not None:
                observer.feed(view)  # before the buffer can be reused
            work: list[Future[object]] = [
                sha_pool.submit(sha.update, view),
                b3_pool.submit(b3.update, view),
            ]
            if frame_pool is not None and frames is not None:
                work.append(frame_pool.submit(frames.update, view))
            pending.append(work)
            size += n
    for futs in pending:
        for fut in futs:
            fut.result()
    return FileDigests(
        sha.hexdigest(), str(b3.hexdigest()), size, frames.digests() if frames else ()
    )


def hash_files(
    paths: Iterable[tuple[Path, int]],
    *,
    threads: int,
    observers: Sequence[ChunkObserver | None] | None = None,
    frames: Sequence[bool] | None = None,
) -> list[FileDigests]:
    """Digests of (path, expected size) pairs, in input order.

    `observers[i]`, if given and not None, is fed file i's bytes in order as
    they are read for hashing. With `frames[i]` true, a file of more than one
    frame gets its frame digests too (a smaller file has none).

    Small files are read once and hashed on a pool of `threads`; each big
    file gets its sha256 and blake3 computed on two threads side by side.
    The returned size is what was read; a caller compares it with the
    expected size to detect a file that changed.
    """
    items = list(paths)
    small = [(i, p) for i, (p, size) in enumerate(items) if size < _SMALL]
    big = [(i, p) for i, (p, size) in enumerate(items) if size >= _SMALL]
    out: list[FileDigests | None] = [None] * len(items)
    watch = list(observers) if observers is not None else [None] * len(items)
    framed = list(frames) if frames is not None else [False] * len(items)
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        futures = {i: pool.submit(_both_small, p, watch[i]) for i, p in small}
        with (
            ThreadPoolExecutor(1, thread_name_prefix="snaparc-sha256") as sha_pool,
            ThreadPoolExecutor(1, thread_name_prefix="snaparc-blake3") as b3_pool,
            ThreadPoolExecutor(1, thread_name_prefix="snaparc-frames") as frame_pool,
        ):
            for i, p in big:
                digests = _hash_big(
                    p, sha_pool, b3_pool, watch[i], frame_pool if framed[i] else None
                )
                # a file of one frame has no frame digests
                out[i] = digests if len(digests.frames) > 1 else replace(digests, frames=())
        for i, fut in futures.items():
            out[i] = fut.result()
    return [d for d in out if d is not None]
