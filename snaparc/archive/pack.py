"""Write a `.dlmsnap` archive from a directory tree.

Two passes over the inputs, because the tar header that names a blob by its
sha256 comes before the blob's bytes and the manifest (with every digest)
comes first of all:

1. scan and hash: every file's sha256 and blake3 in parallel; identical
   contents become one blob;
2. write: the manifest member, then each blob member, cut into frames of
   FRAME_SIZE bytes that worker threads read (pread) and compress
   independently; frames are written in order, then the end-of-archive
   frame and the seek table.

A file that changes between the passes is detected (size, mtime, ctime,
inode) and the pack fails rather than write an archive that lies.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import zstandard

from snaparc.archive.hashing import ChunkObserver, FileDigests, FrameHasher, hash_files
from snaparc.archive.source_tree import SourceFile, SourceTree, scan_tree
from snaparc.archive.threads import worker_count
from snaparc.errors import SafetensorsError, SourceError, UsageError
from snaparc.format.codec import FrameCodec, blob_codecs
from snaparc.format.constants import CODECS, FRAME_SIZE, TAR_BLOCK, TAR_EOF
from snaparc.format.layout import Layout, MemberPlan, plan_layout
from snaparc.format.manifest import (
    BlobEntry,
    Digests,
    FileEntry,
    Manifest,
    MetadataValue,
    archive_id,
    build_manifest,
    encode_manifest,
    wants_frame_digests,
)
from snaparc.format.safetensors import (
    HeadCollector,
    SafetensorsHeader,
    is_safetensors_path,
    profile_applies,
)
from snaparc.format.seektable import SeekEntry, encode_seek_table
from snaparc.format.tarheader import build_header
from snaparc.progress import Progress
from snaparc.version import __version__

CREATED_BY = f"snaparc {__version__}"
MIN_LEVEL, MAX_LEVEL = 1, 19
DEFAULT_LEVEL = 3
# The default level with `--codec bytegroup`: the byte planes compress better
# at level 1 than at 3 (level 3's match finder spends bits on the exponent
# plane's short repeats) and about twice as fast (benchmarks/RESULTS.md).
CODED_DEFAULT_LEVEL = 1


def default_level(codec: str | None) -> int:
    """The zstd level `pack` uses when none is given."""
    return DEFAULT_LEVEL if codec is None else CODED_DEFAULT_LEVEL


@dataclass(frozen=True, slots=True)
class WrittenArchive:
    archive_id: str
    manifest: Manifest
    compressed_bytes: int
    frames: int


@dataclass(frozen=True, slots=True)
class PackPlan:
    """What pass 1 found: the manifest and where each stored blob's bytes are."""

    manifest: Manifest
    manifest_bytes: bytes
    layout: Layout
    sources: dict[str, SourceFile]  # blob sha256 -> a file holding its bytes
    tree: SourceTree
    # blob sha256 -> its safetensors header, for the blobs the profile binds
    tensors: dict[str, SafetensorsHeader] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TreeHashes:
    """What the hashing pass saw: every file's digests, in the tree's order, and
    the header bytes of every `*.safetensors` file (collected as it was hashed)."""

    digests: list[FileDigests]
    heads: dict[str, HeadCollector]  # tree path -> header bytes


def hash_tree(tree: SourceTree, *, threads: int | None = None) -> TreeHashes:
    """sha256, blake3 and size of every file of `tree`, and safetensors headers;
    the frame digests of every `*.safetensors` file of more than one frame
    (kept for the blobs that get a tensor index entry)."""
    heads = {f.rel: HeadCollector() for f in tree.files if is_safetensors_path(f.rel)}
    observers: list[ChunkObserver | None] = [heads.get(f.rel) for f in tree.files]
    digests = hash_files(
        ((f.abs, f.size) for f in tree.files),
        threads=worker_count(threads),
        observers=observers,
        frames=[f.rel in heads for f in tree.files],
    )
    return TreeHashes(digests, heads)


def check_tensors(
    tree: SourceTree, hashes: TreeHashes, metadata: dict[str, MetadataValue]
) -> dict[str, SafetensorsHeader]:
    """Judge every safetensors file the profile binds (exit 7, path and rule named).

    Returns each bound file's header (tree path -> header)."""
    if not profile_applies(metadata):
        return {}
    out: dict[str, SafetensorsHeader] = {}
    for f, d in zip(tree.files, hashes.digests, strict=True):
        head = hashes.heads.get(f.rel)
        if head is None:
            continue
        try:
            out[f.rel] = head.check(d.size)
        except SafetensorsError as exc:
            raise SourceError(
                f"cannot pack {f.rel}: {exc}; only files the safetensors library writes are packed",
                path=str(f.abs),
            ) from None
    return out


def plan_pack(
    src: Path,
    *,
    threads: int | None = None,
    metadata: dict[str, MetadataValue] | None = None,
    tree: SourceTree | None = None,
    hashes: TreeHashes | None = None,
    tensors: dict[str, SafetensorsHeader] | None = None,
    base_blobs: frozenset[str] = frozenset(),
    base_id: str | None = None,
    codec: str | None = None,
) -> PackPlan:
    """Pass 1: scan, hash (unless `hashes` are given), dedupe, judge the
    safetensors files (unless their `tensors` are given, by tree path); the
    manifest and layout of the archive.

    With `codec` (`bytegroup`), every stored blob that has a tensor index
    entry is stored with that codec; every other blob as it is.
    """
    if codec is not None and codec not in CODECS:
        raise UsageError(f"--codec must be one of none, {', '.join(CODECS)}; got {codec!r}")
    tree = tree or scan_tree(src)
    if hashes is None:
        hashes = hash_tree(tree, threads=threads)
    digests = hashes.digests
    if tensors is None:
        tensors = check_tensors(tree, hashes, metadata or {})
    by_path = {f.rel: d.sha256 for f, d in zip(tree.files, digests, strict=True)}
    blob_tensors = {by_path[rel]: h for rel, h in tensors.items()}
    blobs: dict[str, BlobEntry] = {}
    sources: dict[str, SourceFile] = {}
    files: list[FileEntry] = []
    for f, d in zip(tree.files, digests, strict=True):
        if d.size != f.size or f.changed():
            raise SourceError(f"{f.abs} changed while it was being packed", path=str(f.abs))
        if d.sha256 not in blobs:
            external = d.sha256 in base_blobs
            coded = codec is not None and not external and d.sha256 in blob_tensors
            blob = BlobEntry(
                digests=Digests(blake3=d.blake3, sha256=d.sha256),
                size=d.size,
                external=external,
                codec=codec if coded else None,
            )
            if wants_frame_digests(blob, blob_tensors):
                frames = d.frames or frame_digests_of(f)
                blob = dataclasses.replace(blob, frame_blake3=frames)
            blobs[d.sha256] = blob
            sources[d.sha256] = f
        files.append(FileEntry(path=f.rel, size=f.size, executable=f.executable, blob=d.sha256))
    has_external = any(b.external for b in blobs.values())
    manifest = build_manifest(
        files=files,
        dirs=tree.empty_dirs,
        blobs=list(blobs.values()),
        created_by=CREATED_BY,
        metadata=metadata,
        base=base_id if has_external else None,
        tensors={blob: header.tensors for blob, header in blob_tensors.items()},
    )
    data = encode_manifest(manifest)
    return PackPlan(manifest, data, plan_layout(manifest, len(data)), sources, tree, blob_tensors)


def frame_digests_of(src: SourceFile) -> tuple[str, ...]:
    """The frame digests of one file, read again (when the hashing pass was
    given without them)."""
    hasher = FrameHasher()
    try:
        with open(src.abs, "rb") as f:
            while chunk := f.read(FRAME_SIZE):
                hasher.update(chunk)
    except OSError as exc:
        raise SourceError(f"cannot read {src.abs}: {exc.strerror}", path=str(src.abs)) from None
    return hasher.digests()


@dataclass(frozen=True, slots=True)
class _FrameJob:
    member: MemberPlan
    index: int  # frame number within the member
    length: int  # decompressed bytes in this frame


def _frame_jobs(layout: Layout) -> Iterator[_FrameJob]:
    for m in layout.members:
        first = m.first_frame
        for j in range(m.num_frames):
            yield _FrameJob(m, j, layout.frame_sizes[first + j])


class _FrameBuilder:
    """Builds and compresses one frame; one compressor per worker thread."""

    def __init__(self, plan: PackPlan, level: int) -> None:
        self._plan = plan
        self._level = level
        self._local = threading.local()
        self._codecs: dict[str, FrameCodec] = blob_codecs(plan.manifest)

    def _cctx(self) -> zstandard.ZstdCompressor:
        cctx: zstandard.ZstdCompressor | None = getattr(self._local, "cctx", None)
        if cctx is None:
            cctx = zstandard.ZstdCompressor(
                level=self._level, write_checksum=True, write_content_size=True, threads=0
            )
            self._local.cctx = cctx
        return cctx

    def _buffer(self) -> bytearray:
        """This thread's frame buffer, reused for every frame it builds."""
        buf: bytearray | None = getattr(self._local, "buf", None)
        if buf is None:
            buf = bytearray(FRAME_SIZE)
            self._local.buf = buf
        return buf

    def raw(self, job: _FrameJob) -> memoryview:
        """The frame's decompressed bytes: header, data and padding, in full."""
        member = job.member
        view = memoryview(self._buffer())[: job.length]
        start = job.index * FRAME_SIZE  # member offset of this frame
        if job.index == 0:
            view[0:TAR_BLOCK] = build_header(member.name, member.size)
        lo = max(start, TAR_BLOCK)
        hi = min(start + job.length, TAR_BLOCK + member.size)
        if hi > lo:
            if member.blob is None:
                data = self._plan.manifest_bytes
                view[lo - start : hi - start] = data[lo - TAR_BLOCK : hi - TAR_BLOCK]
            else:
                src = self._plan.sources[member.blob.sha256]
                self._read_into(src, view[lo - start : hi - start], lo - TAR_BLOCK)
                codec = self._codecs.get(member.blob.sha256)
                if codec is not None:  # on this worker, beside the compression
                    codec.encode(job.index, view)
        pad = max(hi, lo) - start  # padding after the data, up to the frame's end
        if pad < job.length:
            view[pad:] = bytes(job.length - pad)
        return view

    @staticmethod
    def _read_into(src: SourceFile, view: memoryview, offset: int) -> None:
        try:
            fd = os.open(src.abs, os.O_RDONLY)
        except OSError as exc:
            raise SourceError(f"cannot read {src.abs}: {exc.strerror}", path=str(src.abs)) from None
        try:
            done = 0
            while done < len(view):
                n = os.preadv(fd, [view[done:]], offset + done)
                if n == 0:
                    raise SourceError(f"{src.abs} shrank while being packed", path=str(src.abs))
                done += n
        finally:
            os.close(fd)

    def compress(self, job: _FrameJob) -> tuple[bytes, int]:
        raw = self.raw(job)
        return self._cctx().compress(raw), len(raw)


def write_archive(
    plan: PackPlan,
    out: BinaryIO,
    *,
    level: int = 3,
    threads: int | None = None,
    progress: Progress | None = None,
) -> WrittenArchive:
    """Pass 2: compress frames in parallel and write them in order to `out`."""
    if not MIN_LEVEL <= level <= MAX_LEVEL:
        raise UsageError(f"--level must be between {MIN_LEVEL} and {MAX_LEVEL}")
    workers = worker_count(threads)
    builder = _FrameBuilder(plan, level)
    entries: list[SeekEntry] = []
    written = 0
    window = max(2, workers * 2)
    write: Callable[[bytes], object] = out.write

    def emit(data: bytes, raw_len: int) -> None:
        nonlocal written
        write(data)
        written += len(data)
        entries.append(SeekEntry(len(data), raw_len))
        if progress is not None:
            progress.advance(raw_len)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="snaparc-pack") as pool:
        pending: deque[Future[tuple[bytes, int]]] = deque()
        try:
            for job in _frame_jobs(plan.layout):
                if len(pending) >= window:
                    emit(*pending.popleft().result())
                pending.append(pool.submit(builder.compress, job))
            while pending:
                emit(*pending.popleft().result())
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise
    eof = zstandard.ZstdCompressor(
        level=level, write_checksum=True, write_content_size=True
    ).compress(TAR_EOF)
    emit(eof, len(TAR_EOF))
    table = encode_seek_table(entries)
    write(table)
    written += len(table)
    for f in plan.sources.values():
        if f.changed():
            raise SourceError(f"{f.abs} changed while it was being packed", path=str(f.abs))
    return WrittenArchive(archive_id(plan.manifest_bytes), plan.manifest, written, len(entries))
