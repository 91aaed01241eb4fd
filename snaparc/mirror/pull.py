"""Read archives back from a mirror.

- `resolve_archive_id` turns `URL:REF` / `URL@ID` into an archive id.
- `load_record` fetches and checks an archive record.
- `MirrorArchiveStream` yields the rebuilt `.dlmsnap` bytes in order,
  fetching part objects lazily with at most `jobs` parts read ahead (memory
  about jobs x 36 MiB). Every part is checked against the sha256 its key
  names before a byte of it is handed out; at the end the whole stream is
  checked against the record's file size and sha256. A bad part raises
  `MirrorDigestError` (exit 1) naming the blob and the object.
- `open_mirror_input(target)` opens such a stream as an `ArchiveInput`
  that carries the archive id the target names, for any reader (every
  reader checks that id against the manifest it rebuilds).
- `pull_archive` streams the rebuilt bytes through `read_archive` (the one
  verified reader: both digests of every blob, frames, seek table) into a
  temp file and publishes it by rename only when everything checked out.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import BinaryIO, cast

from snaparc.archive.input import ArchiveInput
from snaparc.errors import (
    DigestMismatchError,
    IntegrityError,
    MissingBlobError,
    RemoteNotFoundError,
    UsageError,
)
from snaparc.format.limits import DEFAULT_LIMITS, Limits
from snaparc.mirror.layout import (
    ArchiveRecord,
    MemberRecord,
    Part,
    decode_record,
    decode_ref,
    record_key,
    ref_key,
)
from snaparc.mirror.store import ObjectNotFoundError, RetryingStore, Store, open_store
from snaparc.mirror.url import ARCHIVE_ID, REF_NAME, MirrorTarget, S3Settings, parse_target
from snaparc.mirror.workers import DaemonPool, wait
from snaparc.progress import Progress


class RefNotFoundError(RemoteNotFoundError):
    """The named ref is not in the mirror."""


class ArchiveNotFoundError(RemoteNotFoundError):
    """No archive record for this id in the mirror."""


class MirrorDigestError(DigestMismatchError):
    """A part object in the mirror does not hold the bytes its key names."""


class MirrorPartMissingError(MissingBlobError):
    """The archive record names a part object the mirror does not have."""


def resolve_archive_id(store: Store, target: MirrorTarget) -> str:
    if target.archive_id is not None:
        return target.archive_id
    if target.ref is None:
        raise UsageError(
            f"{target.url}: name a ref (URL:REF) or an archive id (URL@ID); "
            "`snaparc mirror ls URL` lists them"
        )
    key = ref_key(target.ref)
    try:
        data = store.get(key)
    except ObjectNotFoundError:
        raise RefNotFoundError(
            f"ref {target.ref!r} not found in mirror {target.url} ({store.describe(key)})"
        ) from None
    return decode_ref(data, name=target.ref)


def load_record(store: Store, archive_id: str) -> ArchiveRecord:
    key = record_key(archive_id)
    try:
        data = store.get(key)
    except ObjectNotFoundError:
        raise ArchiveNotFoundError(
            f"archive {archive_id} not found in the mirror ({store.describe(key)})"
        ) from None
    return decode_record(data, archive_id=archive_id)


def _what(member: MemberRecord, archive_id: str) -> str:
    return f"blob {member.blob}" if member.blob else f"the manifest of archive {archive_id}"


def _fetch_part(store: Store, key: str, member: MemberRecord, part: Part, aid: str) -> bytes:
    try:
        data = store.get(key)
    except ObjectNotFoundError:
        raise MirrorPartMissingError(
            f"mirror is missing {store.describe(key)}, a part of {_what(member, aid)}"
        ) from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != part.sha256 or len(data) != part.size:
        raise MirrorDigestError(
            f"{_what(member, aid)}: mirror object {store.describe(key)} is damaged or tampered "
            f"with (sha256 {actual}, {len(data)} bytes; expected {part.sha256}, {part.size})",
            blob=member.blob or aid,
            algorithm="sha256",
            expected=part.sha256,
            actual=actual,
        )
    return data


class MirrorArchiveStream(io.RawIOBase):
    """A read-only, non-seekable stream of an archive rebuilt from a mirror."""

    def __init__(self, store: Store, record: ArchiveRecord, *, jobs: int = 4) -> None:
        super().__init__()
        self.store = store
        self.record = record
        self._jobs = max(1, jobs)
        # Daemon workers, waited for in slices: a stalled fetch never blocks a
        # signal nor the exit (snaparc.mirror.workers).
        self._pool = DaemonPool(self._jobs, name="snaparc-pull")
        self._todo: Iterator[tuple[str, MemberRecord, Part]] = (
            (m.key(record.archive_id, p), m, p) for m in record.members for p in m.parts
        )
        self._ahead: deque[Future[bytes]] = deque()
        self._tail: deque[bytes] = deque([record.end_frame, record.seek_table()])
        self._buf = memoryview(b"")
        self._hash = hashlib.sha256()
        self._count = 0
        self._done = False
        self._fill()

    def readable(self) -> bool:
        return True

    def _fill(self) -> None:
        while len(self._ahead) < self._jobs:
            item = next(self._todo, None)
            if item is None:
                return
            key, member, part = item
            aid = self.record.archive_id
            self._ahead.append(
                self._pool.submit(partial(_fetch_part, self.store, key, member, part, aid))
            )

    def _next_chunk(self) -> bytes | None:
        if self._ahead:
            data = wait(self._ahead.popleft())
            self._fill()
        elif self._tail:
            data = self._tail.popleft()
        else:
            return None
        self._hash.update(data)
        self._count += len(data)
        return data

    def _finish(self) -> None:
        if self._done:
            return
        self._done = True
        rec = self.record
        if self._count != rec.file_size or self._hash.hexdigest() != rec.file_sha256:
            raise IntegrityError(
                f"archive {rec.archive_id} rebuilt from the mirror does not match its record "
                f"({self._count} bytes, sha256 {self._hash.hexdigest()})"
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
            for fut in self._ahead:
                fut.cancel()
            self._pool.shutdown()
            self._ahead.clear()
        super().close()


@contextmanager
def open_mirror_input(
    target: MirrorTarget,
    *,
    store: Store | None = None,
    settings: S3Settings | None = None,
    jobs: int = 4,
) -> Iterator[ArchiveInput]:
    """The archive `target` names (`URL:REF` or `URL@ID`), rebuilt from the mirror.

    Parts are fetched lazily, checked against their sha256 and read ahead at
    most `jobs` at a time. The input carries the archive id the target names
    (`expected_id`), which every reader checks against the manifest it
    rebuilds; the stream alone does not check blob digests: read it with the
    verified reader. `settings` defaults to the AWS environment.
    """
    store = store or open_store(target.url, settings=settings)
    aid = resolve_archive_id(store, target)
    record = load_record(store, aid)
    stream = io.BufferedReader(MirrorArchiveStream(store, record, jobs=jobs), buffer_size=1 << 20)
    with stream:
        yield ArchiveInput(
            cast(BinaryIO, stream), str(target), record.file_size, False, expected_id=aid
        )


@dataclass(frozen=True, slots=True)
class PullReport:
    archive_id: str
    output: Path
    bytes_received: int  # the archive's size
    blobs_verified: int
    bytes_fetched: int = 0  # payload bytes the store returned, retried requests included
    retries: int = 0


class _Tee:
    """Reads from `src`, copying every byte read to `dst`."""

    def __init__(self, src: BinaryIO, dst: BinaryIO) -> None:
        self.src, self.dst = src, dst
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self.src.read(n)
        self.dst.write(data)
        self.count += len(data)
        return data


def pull_archive(
    target: str | MirrorTarget,
    output: Path,
    *,
    store: Store | None = None,
    settings: S3Settings | None = None,
    jobs: int = 4,
    threads: int | None = None,
    limits: Limits = DEFAULT_LIMITS,
    force: bool = False,
    progress: Progress | None = None,
) -> PullReport:
    """Rebuild the archive at `output`, byte-identical to the one pushed.

    Nothing carries the name `output` unless every check passed, the
    archive's identity included.
    """
    from snaparc.archive.reader import read_archive
    from snaparc.publish import AtomicFile

    if isinstance(target, str):
        target = parse_target(target)
    store = store or open_store(target.url, settings=settings)
    with (
        open_mirror_input(target, store=store, jobs=jobs) as source,
        AtomicFile(Path(output), force=force) as out,
    ):
        tee = _Tee(source.stream, out.file)
        teed = dataclasses.replace(source, stream=cast(BinaryIO, tee))
        report = read_archive(teed, None, threads=threads, limits=limits, progress=progress)
        while tee.read(1 << 20):
            pass
    stats = store.stats if isinstance(store, RetryingStore) else None
    return PullReport(
        report.archive_id,
        Path(output),
        tee.count,
        report.blobs_verified,
        bytes_fetched=stats.bytes_received if stats else tee.count,
        retries=stats.retries if stats else 0,
    )


@dataclass(slots=True)
class MirrorListing:
    refs: dict[str, str] = field(default_factory=dict)  # name -> archive id
    archives: dict[str, int] = field(default_factory=dict)  # archive id -> record size
    bad_refs: list[str] = field(default_factory=list)


def list_mirror(store: Store) -> MirrorListing:
    """Refs and archive ids; a ref whose content is not an id is listed as bad."""
    out = MirrorListing()
    for info in store.list("archives"):
        name = info.key.removeprefix("archives/")
        if name.endswith(".json") and ARCHIVE_ID.match(name[:-5]):
            out.archives[name[:-5]] = info.size
    for info in sorted(store.list("refs"), key=lambda i: i.key):
        name = info.key.removeprefix("refs/")
        if not REF_NAME.match(name):
            continue
        try:
            out.refs[name] = decode_ref(store.get(info.key), name=name)
        except (IntegrityError, ObjectNotFoundError):
            out.bad_refs.append(name)
    return out
