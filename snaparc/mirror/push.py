"""Push a `.dlmsnap` archive to a mirror.

Order (spec/MIRROR.md, "Writing"):

1. verify the whole archive with the verified reader; a bad archive is never
   pushed;
2. upload the part objects of the manifest member and of every blob member
   the mirror lacks: create-only, never overwriting; a part already present
   is skipped after its size is checked (its content is checked by every
   pull); bounded concurrency (at most `jobs` parts and `UPLOAD_BUDGET` bytes
   in flight, always at least one part: a part is one conditional PUT, at
   most PART_FRAMES frames);
3. then the archive record `archives/<ID>.json` (create-only);
4. then the signatures travelling with it, `signatures/<ID>/<KIND>`
   (overwritten: the latest signer's bundle travels);
5. then, last, the ref (overwritten: refs move).

Steps 2 to 4 run under a shared push lock (`snaparc.mirror.lock`): a garbage
collection never runs beside them, so no part this push found by `head` or
wrote can be deleted before its record names it; the lock is checked to be
still ours right before the record and the ref are written.

Every step is idempotent, so an interrupted push re-run skips the parts that
are complete and finishes. Transient store errors are retried by the store
(`RetryingStore`, which also bounds every request by the idle timeout).
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, BinaryIO

from snaparc.archive.input import ArchiveInput
from snaparc.errors import IntegrityError, IOFailure, UsageError
from snaparc.format.limits import DEFAULT_LIMITS, Limits
from snaparc.mirror.layout import (
    ArchiveRecord,
    MemberRecord,
    Part,
    blob_part_key,
    decode_record,
    encode_record,
    encode_ref,
    manifest_part_key,
    record_key,
    ref_key,
    signature_key,
    split_parts,
)
from snaparc.mirror.lock import LockTiming, MirrorLock
from snaparc.mirror.store import ObjectExistsError, RetryingStore, Store
from snaparc.mirror.url import check_ref_name
from snaparc.mirror.workers import DaemonPool, wait

if TYPE_CHECKING:
    from snaparc.archive.index import ArchiveIndex


class MirrorObjectError(IntegrityError):
    """An object already in the mirror cannot be what its key promises."""

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(message)
        self.key = key


MIB = 1024 * 1024
# Part bytes read and being uploaded at once (besides one part, always allowed).
UPLOAD_BUDGET = 72 * MIB


@dataclass(frozen=True, slots=True)
class PushReport:
    archive_id: str
    ref: str | None
    bytes_sent: int
    bytes_skipped: int
    objects_sent: int
    objects_skipped: int
    record_written: bool
    # The mirror already held this archive id encoded differently (another
    # compression level); its encoding was kept and pulls rebuild that one.
    kept_other_encoding: bool
    retries: int = 0  # store requests retried (spec/MIRROR.md, "Timeouts and retries")


@dataclass(frozen=True, slots=True)
class _Uploaded:
    sha256: str
    size: int
    sent: bool


def _upload_part(store: Store, key_for: Callable[[str], str], data: bytes) -> _Uploaded:
    """Upload one part unless present; 'present' means the right size."""
    sha = hashlib.sha256(data).hexdigest()
    key = key_for(sha)
    info = store.head(key)
    if info is None:
        try:
            store.put(key, data, mode="create")
            return _Uploaded(sha, len(data), True)
        except ObjectExistsError:  # a concurrent writer (or our own retried put) won
            info = store.head(key)
    if info is None or info.size != len(data):
        found = "nothing" if info is None else f"{info.size} bytes"
        raise MirrorObjectError(
            f"mirror object {store.describe(key)} should hold {len(data)} bytes but holds "
            f"{found}; it is damaged: remove it and push again",
            key=key,
        )
    return _Uploaded(sha, len(data), False)


def _key_maker(aid: str, blob: str | None) -> Callable[[str], str]:
    if blob is None:
        return lambda sha: manifest_part_key(aid, sha)
    return lambda sha: blob_part_key(blob, sha)


class _Tally:
    """Counts parts sent and skipped; collects parts in archive order."""

    def __init__(self, progress: Callable[[int], None] | None) -> None:
        self.sent = self.skipped = self.n_sent = self.n_skipped = 0
        self._progress = progress

    def finish(
        self, item: tuple[Future[_Uploaded], int, list[int]], parts: list[list[Part]]
    ) -> None:
        fut, member, frames = item
        up = wait(fut)
        parts[member].append(Part(up.sha256, up.size, tuple(frames)))
        if up.sent:
            self.sent += up.size
            self.n_sent += 1
        else:
            self.skipped += up.size
            self.n_skipped += 1
        if self._progress is not None:
            self._progress(up.size)


def _pread(f: BinaryIO, start: int, end: int) -> bytes:
    f.seek(start)
    data = f.read(end - start)
    if len(data) != end - start:
        raise IOFailure(f"archive changed while it was pushed (short read at {start})")
    return data


def push_archive(
    archive: ArchiveInput,
    store: Store,
    *,
    ref: str | None = None,
    jobs: int = 4,
    threads: int | None = None,
    limits: Limits = DEFAULT_LIMITS,
    progress: Callable[[int], None] | None = None,
    signatures: Mapping[str, bytes] | None = None,
    lock_timing: LockTiming | None = None,
) -> PushReport:
    """Verify `archive` (a seekable local input: a file or split volumes), then
    upload what `store` lacks, the record, the `signatures` (kind -> bytes,
    checked by the caller), the ref (steps 2 to 4 under a push lock)."""
    from snaparc.archive.index import verified_index

    if ref is not None:
        check_ref_name(ref)
    if not archive.seekable:
        raise UsageError(f"push reads a local archive file, not {archive.name}")
    jobs = max(1, jobs)
    # Fail fast (missing bucket, no permission) before the long verification.
    next(iter(store.list("refs")), None)
    index = verified_index(archive, threads=threads, limits=limits)
    with MirrorLock(store, "push", "push", timing=lock_timing) as lock:
        return _upload(
            archive,
            store,
            index,
            ref=ref,
            jobs=jobs,
            progress=progress,
            lock=lock,
            signatures=signatures or {},
        )


def _upload(
    archive: ArchiveInput,
    store: Store,
    index: ArchiveIndex,
    *,
    ref: str | None,
    jobs: int,
    progress: Callable[[int], None] | None,
    lock: MirrorLock,
    signatures: Mapping[str, bytes],
) -> PushReport:
    f = archive.stream
    aid = index.archive_id
    file_hash = hashlib.sha256()
    members: list[MemberRecord] = []
    tally = _Tally(progress)
    parts: list[list[Part]] = [[] for _ in index.layout.members]
    pending: deque[tuple[Future[_Uploaded], int, list[int]]] = deque()
    # Daemon workers, waited for in slices: a stalled upload never blocks a
    # signal nor the exit (snaparc.mirror.workers).
    with DaemonPool(jobs, name="snaparc-push") as pool:
        try:
            for i, plan in enumerate(index.layout.members):
                first = plan.first_frame
                table_part = index.seek_table[first : first + plan.num_frames]
                key_for = _key_maker(aid, plan.blob.sha256 if plan.blob else None)
                frame = first
                for run in split_parts([e.compressed_size for e in table_part]):
                    start = index.frame_offsets[frame]
                    frame += len(run)
                    size = index.frame_offsets[frame] - start
                    # Room first: at most `jobs` parts and UPLOAD_BUDGET bytes in
                    # flight (always at least one part), whatever the part size.
                    while pending and (
                        len(pending) >= jobs
                        or sum(sum(r) for _, _, r in pending) + size > UPLOAD_BUDGET
                    ):
                        tally.finish(pending.popleft(), parts)
                    data = _pread(f, start, index.frame_offsets[frame])
                    file_hash.update(data)
                    pending.append(
                        (pool.submit(partial(_upload_part, store, key_for, data)), i, run)
                    )
                    del data
            while pending:
                tally.finish(pending.popleft(), parts)
        except BaseException:
            for fut, _, _ in pending:
                fut.cancel()
            raise
    members = [
        MemberRecord(plan.blob.sha256 if plan.blob else None, plan.size, tuple(parts[i]))
        for i, plan in enumerate(index.layout.members)
    ]

    eof_start, eof_end = index.eof_range()
    end_frame = _pread(f, eof_start, eof_end)
    file_hash.update(end_frame)
    table = _pread(f, index.seek_table_offset, index.file_size)
    file_hash.update(table)

    record = ArchiveRecord(
        archive_id=aid,
        manifest=members[0],
        blobs=tuple(members[1:]),
        end_frame=end_frame,
        file_size=index.file_size,
        file_sha256=file_hash.hexdigest(),
    )
    if record.seek_table() != table:
        raise IOFailure(f"{archive.name} changed while it was pushed (seek table differs)")
    data = encode_record(record)
    decode_record(data, archive_id=aid)  # the record we write must be one we read
    lock.check(confirm=True)
    written, other = _put_record(store, aid, data)
    for kind, signature in sorted(signatures.items()):
        store.put(signature_key(aid, kind), signature, mode="overwrite")
    if ref is not None:
        lock.check()
        store.put(ref_key(ref), encode_ref(aid), mode="overwrite")
    retries = store.stats.retries if isinstance(store, RetryingStore) else 0
    return PushReport(
        aid, ref, tally.sent, tally.skipped, tally.n_sent, tally.n_skipped, written, other, retries
    )


def _put_record(store: Store, aid: str, data: bytes) -> tuple[bool, bool]:
    """(written, kept_other_encoding)."""
    key = record_key(aid)
    try:
        store.put(key, data, mode="create")
        return True, False
    except ObjectExistsError:
        existing = store.get(key)
    if existing == data:
        return False, False
    decode_record(existing, archive_id=aid)
    return False, True
