"""The one verified streaming reader of `.dlmsnap` archives.

`read_archive` reads an archive once, front to back, from a file or a pipe,
and checks everything the spec promises: the frame profile, the manifest
(canonical, safe, within limits), every tar header byte for byte, every
blob's sha256 and blake3, the end-of-archive blocks, the seek table's
agreement with the stream, and that nothing trails it. Verify, unpack, cat
from a pipe, materialize and pull all go through it, so there is one place
where hostile input is judged and no window between checking and using.

Frames are split without decompressing (zstd block headers), decompressed
on a pool of threads, and consumed in order; each blob's two digests run on
two more threads beside the decompression. zstandard, hashlib and blake3
release the GIL, so this uses every core. Memory is bounded by a small
window of frames in flight (each at most FRAME_SIZE bytes).

The sink contract is in `snaparc.archive.sink`; the per-frame and per-blob
checks, shared with random access, in `snaparc.archive.frames`.
"""

from __future__ import annotations

import hashlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import BinaryIO

import blake3

from snaparc.archive.frames import (
    blob_chunk,
    check_digests,
    check_frame_digest,
    decompress_member_frame,
    frame_content_size,
    next_data_frame,
    read_into_of,
    read_manifest_head,
)
from snaparc.archive.hashing import FileDigests
from snaparc.archive.input import ArchiveInput, as_input
from snaparc.archive.sink import BlobSink, BlobWriter
from snaparc.archive.tensors import TensorProfiles
from snaparc.archive.threads import worker_count
from snaparc.errors import (
    CorruptArchiveError,
    SnaparcError,
    TrailingDataError,
    TruncatedArchiveError,
    UnexpectedFrameError,
    UnlistedMemberError,
)
from snaparc.format.codec import FrameCodec, blob_codecs
from snaparc.format.constants import SEEKTABLE_SKIPPABLE_MAGIC, TAR_BLOCK, TAR_EOF
from snaparc.format.layout import Layout, MemberPlan, plan_layout
from snaparc.format.limits import DEFAULT_LIMITS, Limits
from snaparc.format.manifest import BlobEntry, Manifest, archive_id
from snaparc.format.safetensors import HeadCollector
from snaparc.format.seektable import SeekEntry, decode_seek_table
from snaparc.format.tarheader import read_header
from snaparc.format.zstdframes import FrameSplitter, RawFrame
from snaparc.progress import Progress
from snaparc.publish import directio


@dataclass(slots=True)
class ReadReport:
    archive_id: str
    manifest: Manifest
    manifest_bytes: bytes
    compressed_bytes: int = 0
    tar_bytes: int = 0
    frames: int = 0
    blobs_verified: int = 0
    bytes_verified: int = 0
    seek_table: list[SeekEntry] = field(default_factory=list)


class _BlobState:
    __slots__ = ("blob", "hasher_b3", "hasher_sha", "head", "writer")

    def __init__(
        self, blob: BlobEntry, writer: BlobWriter | None, head: HeadCollector | None
    ) -> None:
        self.blob = blob
        self.hasher_sha = hashlib.sha256()
        self.hasher_b3 = blake3.blake3()
        self.writer = writer
        self.head = head  # the safetensors header, when the profile binds this blob


def read_archive(
    source: ArchiveInput | BinaryIO,
    sink: BlobSink | None = None,
    *,
    threads: int | None = None,
    limits: Limits = DEFAULT_LIMITS,
    progress: Progress | None = None,
    read_size: int = 1 << 20,
) -> ReadReport:
    """Read, check and (with a sink) deliver every blob of one archive.

    An `ArchiveInput` with an `expected_id` yields nothing unless the archive
    is that one (checked before the sink hears of it).
    """
    archive = as_input(source)
    workers = worker_count(threads)
    splitter = FrameSplitter(
        read_into_of(archive.stream), max_frame_bytes=limits.max_frame_bytes, chunk=read_size
    )

    def next_frame(what: str) -> RawFrame:
        return next_data_frame(splitter, what)

    manifest, manifest_bytes, head = read_manifest_head(
        next_frame, limits, expected_id=archive.expected_id, name=archive.name
    )
    aid = archive_id(manifest_bytes)
    layout = plan_layout(manifest, len(manifest_bytes))
    report = ReadReport(aid, manifest, manifest_bytes)
    observed: list[SeekEntry] = [SeekEntry(c, d) for c, d in head]
    if sink is not None:
        sink.begin(manifest, aid)
    if progress is not None:
        progress.advance(sum(c for c, _ in head))

    profiles = TensorProfiles(manifest)
    codecs = blob_codecs(manifest)
    _stream_blobs(splitter, layout, sink, observed, report, workers, progress, profiles, codecs)

    # The end-of-archive frame was consumed by _stream_blobs; now the seek table.
    table_frame = splitter.next_frame()
    if table_frame is None:
        raise TruncatedArchiveError("archive ends before its seek table")
    if table_frame.skippable_magic is None:
        raise TrailingDataError(
            f"a zstd frame at offset {table_frame.offset} follows the end of the archive"
        )
    if table_frame.skippable_magic != SEEKTABLE_SKIPPABLE_MAGIC:
        raise UnexpectedFrameError(
            f"skippable frame with magic {table_frame.skippable_magic:#010x} at offset "
            f"{table_frame.offset}; only the seek table is allowed"
        )
    table = decode_seek_table(bytes(table_frame.data), max_frames=limits.max_frames)
    if table != observed:
        idx = next(
            (i for i, (a, b) in enumerate(zip(table, observed, strict=False)) if a != b),
            min(len(table), len(observed)),
        )
        raise CorruptArchiveError(
            f"seek table disagrees with the stream at frame {idx} "
            f"({len(table)} entries, {len(observed)} frames)"
        )
    rest = splitter.read_rest(64)
    if rest:
        raise TrailingDataError(
            f"{'at least ' if len(rest) == 64 else ''}{len(rest)} bytes trail the archive "
            f"after the seek table (offset {splitter.offset})"
        )
    report.seek_table = table
    report.frames = len(observed)
    report.compressed_bytes = splitter.offset
    report.tar_bytes = layout.tar_size
    if progress is not None:
        progress.advance(len(table_frame.data))
    return report


# Frames whose hashing and writing may still run while later frames decode.
SIDE_FRAMES = 4


def _stream_blobs(
    splitter: FrameSplitter,
    layout: Layout,
    sink: BlobSink | None,
    observed: list[SeekEntry],
    report: ReadReport,
    workers: int,
    progress: Progress | None,
    profiles: TensorProfiles,
    codecs: dict[str, FrameCodec],
) -> None:
    members = layout.members[1:]
    # (member, index within member) for every frame after the manifest, then EOF.
    jobs: list[tuple[MemberPlan | None, int]] = [
        (m, j) for m in members for j in range(m.num_frames)
    ]
    jobs.append((None, 0))
    first_blob_frame = layout.members[0].num_frames

    sha_pool = ThreadPoolExecutor(1, thread_name_prefix="snaparc-sha256")
    b3_pool = ThreadPoolExecutor(1, thread_name_prefix="snaparc-blake3")
    io_pool = ThreadPoolExecutor(1, thread_name_prefix="snaparc-write")
    dec_pool = ThreadPoolExecutor(workers, thread_name_prefix="snaparc-zstd")
    # Frames are read ahead of the one being checked; an error found while
    # reading ahead is queued in stream order, so the first problem in the
    # stream is the one reported, whatever the thread count.
    pending: deque[
        tuple[int, RawFrame | None, memoryview | None, Future[tuple[memoryview, str | None]]]
    ] = deque()
    # Side work (hashing, writing) in stream order, one entry per frame: its
    # futures and its output buffer, which is reused once they are all done.
    side: deque[tuple[list[Future[object]], memoryview | None]] = deque()
    free: list[memoryview] = []
    window = workers + 2
    state: _BlobState | None = None
    next_job = 0
    failed = False

    def submit_next() -> None:
        nonlocal next_job, failed
        index = next_job
        member, j = jobs[index]
        next_job += 1
        what = "the end of the archive" if member is None else f"blob {member.name}"
        try:
            frame = next_data_frame(splitter, what)
            declared = frame_content_size(frame)
        except SnaparcError as exc:
            failed = True
            err: Future[tuple[memoryview, str | None]] = Future()
            err.set_exception(exc)
            pending.append((index, None, None, err))
            return
        observed.append(SeekEntry(len(frame.data), declared))
        # Aligned so that unpack can write blobs around the page cache (directio).
        buf = free.pop() if free else directio.frame_buffer()
        codec = None if member is None or member.blob is None else codecs.get(member.blob.sha256)
        fut = dec_pool.submit(decompress_member_frame, frame, declared, buf, codec, j, member)
        pending.append((index, frame, buf, fut))

    def drain_side(limit: int) -> None:
        while len(side) > limit:
            futures, done_buf = side.popleft()
            for fut in futures:
                fut.result()
            if done_buf is not None:
                free.append(done_buf)

    try:
        while next_job < len(jobs) or pending:
            while next_job < len(jobs) and len(pending) < window and not failed:
                submit_next()
            index, frame, buf, fut = pending.popleft()
            member, j = jobs[index]
            data, frame_digest = fut.result()
            assert frame is not None
            offset = frame.offset
            compressed = len(frame.data)
            splitter.recycle(frame)
            if progress is not None:
                progress.advance(compressed)
            want = layout.frame_sizes[first_blob_frame + index]
            if member is None:
                if data != TAR_EOF:
                    _diagnose_extra(bytes(data), offset)
                continue
            blob = member.blob
            assert blob is not None
            chunk = blob_chunk(member, j, data, want, offset)
            check_frame_digest(member, j, frame_digest)
            if j == 0:
                writer = sink.open_blob(blob) if sink is not None else None
                state = _BlobState(blob, writer, profiles.collector(blob))
            assert state is not None
            if chunk:
                if state.head is not None:
                    state.head.feed(chunk)  # copies only the header's bytes
                futures: list[Future[object]] = [
                    sha_pool.submit(state.hasher_sha.update, chunk),
                    b3_pool.submit(state.hasher_b3.update, chunk),
                ]
                if state.writer is not None:
                    futures.append(io_pool.submit(state.writer.write, chunk))
                side.append((futures, buf))
            elif buf is not None:
                free.append(buf)
            drain_side(SIDE_FRAMES)
            if j == member.num_frames - 1:
                drain_side(0)
                _finish_blob(state, sink, profiles)
                report.blobs_verified += 1
                report.bytes_verified += blob.size
                state = None
    finally:
        for _, _, _, f in pending:
            f.cancel()
        for pool in (dec_pool, sha_pool, b3_pool, io_pool):
            pool.shutdown(wait=True, cancel_futures=True)


def _diagnose_extra(data: bytes, offset: int) -> None:
    """Explain a final data frame that is not the end-of-archive blocks."""
    if len(data) >= TAR_BLOCK and any(data[:TAR_BLOCK]):
        name, _ = read_header(data[:TAR_BLOCK], offset=offset)  # raises for bad headers
        raise UnlistedMemberError(
            f"unlisted member {name!r} after the last listed blob (offset {offset})", path=name
        )
    raise CorruptArchiveError(f"end-of-archive frame at offset {offset} is not two zero blocks")


def _finish_blob(state: _BlobState, sink: BlobSink | None, profiles: TensorProfiles) -> None:
    blob = state.blob
    digests = FileDigests(state.hasher_sha.hexdigest(), str(state.hasher_b3.hexdigest()), blob.size)
    check_digests(blob, digests)
    if state.head is not None:
        profiles.check(blob, state.head)
    if state.writer is not None:
        state.writer.close()
    if sink is not None:
        sink.blob_done(blob)
