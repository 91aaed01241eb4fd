"""The archive an archive record describes, as a stream fetched in bounded chunks.

`MirrorArchiveStream` yields the rebuilt `.dlmsnap` bytes in order (the
manifest parts, the parts of every blob, the end frame, the rebuilt seek
table; spec/MIRROR.md, section 5):

- Parts are read in ranges of at most `CHUNK` bytes (`get_range`), at most
  `jobs` ranges in flight, so memory is about `2 x jobs x CHUNK` whatever the
  part and archive sizes, and fetching overlaps with whatever reads the
  stream (decoding, hashing, writing).
- A part is never read past its recorded size (a hostile store cannot make a
  reader buffer more): its last range asks for one byte more, to see that the
  object is not longer than the record says.
- Every part's length and sha256, and the whole stream's size and sha256, are
  checked on one hashing thread in stream order; a part that does not match
  raises `MirrorDigestError` (exit 1), naming the blob and the object, before
  its last byte is handed out. Earlier bytes of the part are handed out
  before that: the stream is read by the verified archive reader, which
  publishes nothing before every digest of every blob matched.
- Requests run on daemon workers and are waited for in slices
  (`snaparc.mirror.workers`), so a signal always gets through.
- With a `cache` (the resume file a killed run left, `snaparc.mirror.resume`:
  `--no-resume` skips it), the parts of its prefix that match their sha256
  (`cached_prefix`) are read from it instead of the store (`skipped` counts
  them); they go through the same checks as fetched bytes. With `keep`, the
  file is cut to that prefix and every range fetched is written into it at
  its offset by the worker that fetched it, so that a run killed at any
  point leaves every part it had fetched for the next one.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial

from snaparc.errors import DigestMismatchError, IntegrityError, MissingBlobError
from snaparc.mirror.layout import ArchiveRecord, MemberRecord, Part
from snaparc.mirror.resume import Kept
from snaparc.mirror.store import ObjectNotFoundError, Store
from snaparc.mirror.workers import DaemonPool, wait

MIB = 1024 * 1024
# The unit of a read: small enough that jobs x CHUNK stays well inside the
# memory bound, large enough that per-request costs do not matter.
CHUNK = 4 * MIB
# Chunks handed out but not hashed yet, at most (backpressure on the reader).
HASH_QUEUE = 2


class MirrorDigestError(DigestMismatchError):
    """A part object in the mirror does not hold the bytes its key names."""


class MirrorPartMissingError(MissingBlobError):
    """The archive record names a part object the mirror does not have."""


def _what(member: MemberRecord, archive_id: str) -> str:
    return f"blob {member.blob}" if member.blob else f"the manifest of archive {archive_id}"


@dataclass(frozen=True, slots=True)
class _Chunk:
    key: str
    member: MemberRecord
    part: Part
    start: int
    end: int
    offset: int  # of the part in the archive file

    @property
    def last(self) -> bool:
        return self.end == self.part.size


def plan_chunks(record: ArchiveRecord, chunk: int) -> Iterator[_Chunk]:
    """Every part of `record`, in stream order, cut into ranges of `chunk` bytes."""
    offset = 0
    for member in record.members:
        for part in member.parts:
            key = member.key(record.archive_id, part)
            if part.size == 0:
                yield _Chunk(key, member, part, 0, 0, offset)
            for start in range(0, part.size, chunk):
                yield _Chunk(key, member, part, start, min(part.size, start + chunk), offset)
            offset += part.size


def cached_prefix(fd: int, record: ArchiveRecord, *, parts: int | None = None) -> int:
    """How many leading bytes of the file `fd` are whole parts of `record`
    with the right sha256 (each part checked in 1 MiB reads); with `parts`,
    at most that many parts are checked."""
    size = os.fstat(fd).st_size
    offset = 0
    checked = 0
    for member in record.members:
        for part in member.parts:
            if parts is not None and checked == parts:
                return offset
            checked += 1
            if offset + part.size > size:
                return offset
            digest = hashlib.sha256()
            at = offset
            while at < offset + part.size:
                data = os.pread(fd, min(MIB, offset + part.size - at), at)
                if not data:
                    return offset
                digest.update(data)
                at += len(data)
            if digest.hexdigest() != part.sha256:
                return offset
            offset += part.size
    return offset


def _from_cache(fd: int, ch: _Chunk) -> bytes:
    data = os.pread(fd, ch.end - ch.start, ch.offset + ch.start)
    if len(data) != ch.end - ch.start:
        raise IntegrityError(f"the resume file changed while it was read (at {ch.offset})")
    return data


def _fetch(store: Store, ch: _Chunk, archive_id: str) -> bytes:
    """The bytes of one range; the last range of a part asks for one more byte."""
    stop = ch.end + 1 if ch.last and ch.part.size else ch.end
    try:
        data = store.get_range(ch.key, ch.start, stop) if stop > ch.start else b""
    except ObjectNotFoundError:
        raise MirrorPartMissingError(
            f"mirror is missing {store.describe(ch.key)}, a part of {_what(ch.member, archive_id)}"
        ) from None
    if len(data) != ch.end - ch.start:
        raise _damaged(store, ch, archive_id, None, ch.start + len(data))
    return data


def _fetch_and_keep(store: Store, ch: _Chunk, archive_id: str, kept: Kept) -> bytes:
    data = _fetch(store, ch, archive_id)
    kept.write(data, ch.offset + ch.start)
    return data


def _damaged(
    store: Store, ch: _Chunk, archive_id: str, actual: str | None, size: int
) -> MirrorDigestError:
    if actual is not None:
        shown = f"sha256 {actual}, {size} bytes"
    elif size > ch.end:
        shown = f"more than {ch.end} bytes"
    else:
        shown = f"{size} bytes"
    return MirrorDigestError(
        f"{_what(ch.member, archive_id)}: mirror object {store.describe(ch.key)} is damaged or "
        f"tampered with ({shown}; expected sha256 {ch.part.sha256}, {ch.part.size} bytes)",
        blob=ch.member.blob or archive_id,
        algorithm="sha256",
        expected=ch.part.sha256,
        actual=actual or "",
    )


class _Digests:
    """The running sha256 of the current part and of the whole stream."""

    def __init__(self) -> None:
        self.part = hashlib.sha256()
        self.file = hashlib.sha256()

    def update(self, data: bytes, *, last: bool) -> str | None:
        self.part.update(data)
        self.file.update(data)
        if not last:
            return None
        digest = self.part.hexdigest()
        self.part = hashlib.sha256()
        return digest


class MirrorArchiveStream(io.RawIOBase):
    """A read-only, non-seekable stream of an archive rebuilt from a mirror."""

    def __init__(
        self,
        store: Store,
        record: ArchiveRecord,
        *,
        jobs: int = 4,
        chunk: int | None = None,
        cache: int | None = None,
        keep: Kept | None = None,
    ) -> None:
        super().__init__()
        self.store = store
        self.record = record
        self._cache = cache
        self._cached = 0 if cache is None else cached_prefix(cache, record)
        self._keep = keep
        if keep is not None and cache is not None:
            try:
                os.ftruncate(cache, self._cached)
            except OSError:
                keep.close()
        self.skipped = 0  # bytes read from the cache instead of the store
        self.fetched = 0  # bytes asked of the store (its own stats count retries too)
        self._jobs = max(1, jobs)
        self._fetchers = DaemonPool(self._jobs, name="snaparc-fetch")
        self._hasher = DaemonPool(1, name="snaparc-part-sha256")
        self._todo = plan_chunks(record, chunk or CHUNK)
        self._ahead: deque[tuple[Future[bytes], _Chunk]] = deque()
        self._hashing: deque[Future[str | None]] = deque()
        self._digests = _Digests()
        self._tail: deque[bytes] = deque([record.end_frame, record.seek_table()])
        self._buf = memoryview(b"")
        self._count = 0
        self._done = False
        self._fill()

    def readable(self) -> bool:
        return True

    def _fill(self) -> None:
        while len(self._ahead) < self._jobs:
            ch = next(self._todo, None)
            if ch is None:
                return
            if self._cache is not None and ch.offset + ch.part.size <= self._cached:
                job = partial(_from_cache, self._cache, ch)
                self.skipped += ch.end - ch.start
            elif self._keep is not None:
                job = partial(_fetch_and_keep, self.store, ch, self.record.archive_id, self._keep)
                self.fetched += ch.end - ch.start
            else:
                job = partial(_fetch, self.store, ch, self.record.archive_id)
                self.fetched += ch.end - ch.start
            self._ahead.append((self._fetchers.submit(job), ch))

    def _hash(self, data: bytes, *, last: bool) -> Future[str | None]:
        future = self._hasher.submit(partial(self._digests.update, data, last=last))
        self._hashing.append(future)
        while len(self._hashing) > HASH_QUEUE:
            wait(self._hashing.popleft())
        return future

    def _next_chunk(self) -> bytes | None:
        if self._ahead:
            future, ch = self._ahead.popleft()
            data = wait(future)
            self._fill()
            digest = self._hash(data, last=ch.last)
            if ch.last:
                actual = wait(digest)
                if actual != ch.part.sha256:
                    raise _damaged(self.store, ch, self.record.archive_id, actual, ch.part.size)
        elif self._tail:
            data = self._tail.popleft()
            self._hash(data, last=False)
        else:
            return None
        self._count += len(data)
        return data

    def _finish(self) -> None:
        if self._done:
            return
        self._done = True
        while self._hashing:
            wait(self._hashing.popleft())
        rec = self.record
        digest = self._digests.file.hexdigest()
        if self._count != rec.file_size or digest != rec.file_sha256:
            raise IntegrityError(
                f"archive {rec.archive_id} rebuilt from the mirror does not match its record "
                f"({self._count} bytes, sha256 {digest})"
            )

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        if self.closed:
            raise ValueError("read from a closed stream")
        while not self._buf:
            chunk = self._next_chunk()
            if chunk is None:
                self._finish()
                return 0
            self._buf = memoryview(chunk)
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            for future, _ in self._ahead:
                future.cancel()
            self._ahead.clear()
            self._fetchers.shutdown()
            self._hasher.shutdown()
        super().close()
