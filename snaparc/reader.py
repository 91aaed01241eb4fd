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

Sink contract: `begin` is called once after the manifest is verified and
before any blob byte; `open_blob`'s writer receives the blob's bytes in
order (possibly before they are verified: a sink must not publish before
`read_archive` returns); `blob_done` is called after both digests of that
blob matched. If `read_archive` raises, the sink must discard everything.
"""

from __future__ import annotations

import hashlib
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

import blake3
import zstandard

from snaparc import zstd_native
from snaparc.errors import (
    CorruptArchiveError,
    DigestMismatchError,
    LimitExceededError,
    ManifestError,
    NonCanonicalError,
    SnaparcError,
    TrailingDataError,
    TruncatedArchiveError,
    UnexpectedFrameError,
    UnlistedMemberError,
)
from snaparc.format.constants import (
    BLOB_MEMBER_PREFIX,
    FRAME_SIZE,
    MANIFEST_MEMBER,
    MAX_WINDOW_SIZE,
    SEEKTABLE_SKIPPABLE_MAGIC,
    TAR_BLOCK,
    TAR_EOF,
)
from snaparc.format.layout import Layout, MemberPlan, frame_sizes, plan_layout
from snaparc.format.limits import DEFAULT_LIMITS, Limits
from snaparc.format.manifest import BlobEntry, Manifest, archive_id, parse_manifest
from snaparc.format.seektable import SeekEntry, decode_seek_table
from snaparc.format.tarheader import build_header, member_len, read_header
from snaparc.format.zstdframes import FrameSplitter, RawFrame, check_frame_header
from snaparc.hashing import FileDigests
from snaparc.progress import Progress
from snaparc.publish import directio


class BlobWriter(Protocol):
    def write(self, data: memoryview, /) -> object: ...

    def close(self) -> None: ...


class BlobSink(Protocol):
    def begin(self, manifest: Manifest, archive_id: str) -> None: ...

    def open_blob(self, blob: BlobEntry) -> BlobWriter: ...

    def blob_done(self, blob: BlobEntry) -> None: ...


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


_local = threading.local()


def decompress_frame(frame: RawFrame, size: int) -> bytearray:
    """Decompress one frame whose declared size was checked to be `size`,
    into a fresh buffer (the manifest head); see `decompress_into`."""
    out = bytearray(size)
    decompress_into(frame, size, out)
    return out  # a bytearray is a bytes-like value; no second copy


def decompress_into(frame: RawFrame, size: int, out: bytearray | memoryview) -> memoryview:
    """Decompress one frame into a reused buffer (no allocation, no page faults).

    The frame's declared size was checked to be `size` <= len(out); libzstd
    checks the content checksum when the frame ends, which the final read
    forces. The system libzstd (with its assembly decoder) is used when it
    loads (`snaparc.zstd_native`), python-zstandard otherwise.
    """
    if zstd_native.available():
        problem = zstd_native.decompress_frame_into(frame.data, out, size)
        if problem is not None:
            raise CorruptArchiveError(f"zstd frame at offset {frame.offset} is corrupt: {problem}")
        return memoryview(out)[:size]
    dctx: zstandard.ZstdDecompressor | None = getattr(_local, "dctx", None)
    if dctx is None:
        dctx = zstandard.ZstdDecompressor(max_window_size=MAX_WINDOW_SIZE)
        _local.dctx = dctx
    view = memoryview(out)[:size]
    got = 0
    try:
        reader = dctx.stream_reader(frame.data, read_size=len(frame.data))
        while got < size:
            n = reader.readinto(view[got:])
            if not n:
                break
            got += n
        extra = reader.read(1)
    except zstandard.ZstdError as exc:
        raise CorruptArchiveError(
            f"zstd frame at offset {frame.offset} is corrupt: {exc}"
        ) from None
    if got != size or extra:
        raise CorruptArchiveError(
            f"zstd frame at offset {frame.offset} does not hold the {size} bytes it declares"
        )
    return view


def next_data_frame(splitter: FrameSplitter, what: str) -> RawFrame:
    frame = splitter.next_frame()
    if frame is None:
        raise TruncatedArchiveError(f"archive ends before {what} (at offset {splitter.offset})")
    if frame.skippable_magic is not None:
        raise UnexpectedFrameError(
            f"skippable frame at offset {frame.offset} where {what} must be; "
            "the spec allows only the seek table, at the end"
        )
    return frame


def check_member_header(block: bytes, member: MemberPlan, *, offset: int) -> None:
    """The header must be exactly the one the layout predicts; explain if not."""
    if block == build_header(member.name, member.size):
        return
    name, size = read_header(block, offset=offset)  # raises for profile violations
    if name == MANIFEST_MEMBER:
        raise ManifestError(f"a second manifest member at offset {offset}")
    if name != member.name:
        if name.startswith(BLOB_MEMBER_PREFIX):
            raise UnlistedMemberError(
                f"member {name!r} at offset {offset} is not the next listed blob "
                f"({member.name!r}): unlisted, duplicated or out of order",
                path=name,
            )
        raise UnlistedMemberError(f"unlisted member {name!r} at offset {offset}", path=name)
    raise CorruptArchiveError(
        f"member {name!r}: tar header says {size} bytes, the manifest says {member.size}"
    )


def read_manifest_head(
    next_frame: Callable[[str], RawFrame], limits: Limits
) -> tuple[Manifest, bytes, list[tuple[int, int]]]:
    """Read and check the manifest member from the first frames.

    Returns the manifest, its bytes, and (compressed, decompressed) sizes of
    the frames consumed.
    """
    first = next_frame("the manifest")
    assert first.header is not None
    check_frame_header(first.header, offset=first.offset, max_content=FRAME_SIZE)
    size0 = first.header.content_size or 0
    if size0 < TAR_BLOCK:
        raise ManifestError("first frame is too small to hold the manifest member's header")
    data0 = decompress_frame(first, size0)
    name, msize = read_header(bytes(data0[:TAR_BLOCK]), offset=0)
    if name != MANIFEST_MEMBER:
        raise ManifestError(
            f"first member is {name!r}, not {MANIFEST_MEMBER!r}: not a .dlmsnap archive"
        )
    if msize > limits.max_manifest_bytes:
        raise LimitExceededError(
            f"manifest is {msize} bytes (limit {limits.max_manifest_bytes}; "
            "raise with --max-manifest-bytes)",
            limit="max_manifest_bytes",
            value=msize,
            maximum=limits.max_manifest_bytes,
        )
    sizes = frame_sizes(member_len(msize))
    if size0 != sizes[0]:
        raise CorruptArchiveError(
            f"first frame holds {size0} bytes; the manifest member needs {sizes[0]}"
        )
    consumed = [(len(first.data), size0)]
    parts = [data0]
    for want in sizes[1:]:
        frame = next_frame("the rest of the manifest")
        assert frame.header is not None
        check_frame_header(frame.header, offset=frame.offset, max_content=FRAME_SIZE)
        if frame.header.content_size != want:
            raise CorruptArchiveError(
                f"zstd frame at offset {frame.offset} declares {frame.header.content_size} "
                f"bytes; the layout needs {want}"
            )
        parts.append(decompress_frame(frame, want))
        consumed.append((len(frame.data), want))
    member = b"".join(parts)
    body = member[TAR_BLOCK : TAR_BLOCK + msize]
    if member[TAR_BLOCK + msize :].strip(b"\0"):
        raise NonCanonicalError("non-zero padding after the manifest")
    manifest = parse_manifest(body, limits=limits)
    return manifest, body, consumed


class _BlobState:
    __slots__ = ("blob", "hasher_b3", "hasher_sha", "writer")

    def __init__(self, blob: BlobEntry, writer: BlobWriter | None) -> None:
        self.blob = blob
        self.hasher_sha = hashlib.sha256()
        self.hasher_b3 = blake3.blake3()
        self.writer = writer


def read_into_of(stream: BinaryIO) -> Callable[[memoryview], int]:
    readinto = getattr(stream, "readinto", None)
    if readinto is not None:
        return lambda view: int(readinto(view) or 0)

    def fallback(view: memoryview) -> int:
        data = stream.read(len(view))
        view[: len(data)] = data
        return len(data)

    return fallback


def read_archive(
    stream: BinaryIO,
    sink: BlobSink | None = None,
    *,
    threads: int | None = None,
    limits: Limits = DEFAULT_LIMITS,
    progress: Progress | None = None,
    read_size: int = 1 << 20,
) -> ReadReport:
    """Read, check and (with a sink) deliver every blob of one archive."""
    from snaparc.pack import default_threads

    workers = threads or default_threads()
    splitter = FrameSplitter(
        read_into_of(stream), max_frame_bytes=limits.max_frame_bytes, chunk=read_size
    )

    def next_frame(what: str) -> RawFrame:
        return next_data_frame(splitter, what)

    manifest, manifest_bytes, head = read_manifest_head(next_frame, limits)
    aid = archive_id(manifest_bytes)
    layout = plan_layout(manifest, len(manifest_bytes))
    report = ReadReport(aid, manifest, manifest_bytes)
    observed: list[SeekEntry] = [SeekEntry(c, d) for c, d in head]
    if sink is not None:
        sink.begin(manifest, aid)
    if progress is not None:
        progress.advance(sum(c for c, _ in head))

    _stream_blobs(splitter, layout, sink, observed, report, workers, progress)

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
    pending: deque[tuple[int, RawFrame | None, memoryview | None, Future[memoryview]]] = deque()
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
        member, _ = jobs[index]
        next_job += 1
        what = "the end of the archive" if member is None else f"blob {member.name}"
        try:
            frame = next_data_frame(splitter, what)
            assert frame.header is not None
            check_frame_header(frame.header, offset=frame.offset, max_content=FRAME_SIZE)
        except SnaparcError as exc:
            failed = True
            err: Future[memoryview] = Future()
            err.set_exception(exc)
            pending.append((index, None, None, err))
            return
        declared = frame.header.content_size or 0
        observed.append(SeekEntry(len(frame.data), declared))
        # Aligned so that unpack can write blobs around the page cache (directio).
        buf = free.pop() if free else directio.frame_buffer()
        fut = dec_pool.submit(decompress_into, frame, declared, buf)
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
            data = fut.result()
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
            start = j * FRAME_SIZE
            view = data
            if j == 0:
                if len(data) < TAR_BLOCK:
                    raise CorruptArchiveError(
                        f"zstd frame at offset {offset} is too short for a tar header"
                    )
                check_member_header(bytes(data[:TAR_BLOCK]), member, offset=member.offset)
            if len(data) != want:
                raise CorruptArchiveError(
                    f"zstd frame at offset {offset} holds {len(data)} bytes; the layout "
                    f"needs {want} (frame {j} of {member.name})"
                )
            if j == 0:
                writer = sink.open_blob(blob) if sink is not None else None
                state = _BlobState(blob, writer)
            assert state is not None
            lo = max(start, TAR_BLOCK)
            hi = min(start + len(data), TAR_BLOCK + member.size)
            if hi > lo:
                chunk = view[lo - start : hi - start]
                futures: list[Future[object]] = [
                    sha_pool.submit(state.hasher_sha.update, chunk),
                    b3_pool.submit(state.hasher_b3.update, chunk),
                ]
                if state.writer is not None:
                    futures.append(io_pool.submit(state.writer.write, chunk))
                side.append((futures, buf))
            elif buf is not None:
                free.append(buf)
            pad_from = max(TAR_BLOCK + member.size, start) - start
            if pad_from < len(data) and any(view[pad_from:]):
                raise NonCanonicalError(f"non-zero padding after blob {blob.sha256}")
            drain_side(SIDE_FRAMES)
            if j == member.num_frames - 1:
                drain_side(0)
                _finish_blob(state, sink)
                report.blobs_verified += 1
                report.bytes_verified += blob.size
                state = None
    finally:
        for _, _, _, f in pending:
            f.cancel()
        for pool in (dec_pool, sha_pool, b3_pool, io_pool):
            pool.shutdown(wait=True, cancel_futures=True)


def check_digests(blob: BlobEntry, actual: FileDigests) -> None:
    """Both digests (and the size) must match the manifest's; name the blob if not."""
    for algo, got, expected in (
        ("sha256", actual.sha256, blob.sha256),
        ("blake3", actual.blake3, blob.blake3),
    ):
        if got != expected:
            raise DigestMismatchError(
                f"blob {blob.sha256}: {algo} mismatch (manifest {expected[:16]}…, "
                f"data {got[:16]}…)",
                blob=blob.sha256,
                algorithm=algo,
                expected=expected,
                actual=got,
            )
    if actual.size != blob.size:
        raise CorruptArchiveError(f"blob {blob.sha256}: {actual.size} bytes, not {blob.size}")


def _diagnose_extra(data: bytes, offset: int) -> None:
    """Explain a final data frame that is not the end-of-archive blocks."""
    if len(data) >= TAR_BLOCK and any(data[:TAR_BLOCK]):
        name, _ = read_header(data[:TAR_BLOCK], offset=offset)  # raises for bad headers
        raise UnlistedMemberError(
            f"unlisted member {name!r} after the last listed blob (offset {offset})", path=name
        )
    raise CorruptArchiveError(f"end-of-archive frame at offset {offset} is not two zero blocks")


def _finish_blob(state: _BlobState, sink: BlobSink | None) -> None:
    blob = state.blob
    digests = FileDigests(state.hasher_sha.hexdigest(), str(state.hasher_b3.hexdigest()), blob.size)
    check_digests(blob, digests)
    if state.writer is not None:
        state.writer.close()
    if sink is not None:
        sink.blob_done(blob)
