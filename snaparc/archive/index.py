"""Random access to a seekable archive through its seek table.

`open_index` reads the seek table from the end of the file and the manifest
from the first frames, and checks that the seek table, the file size and
the layout the manifest implies all agree. It reads a few KiB to a few MiB,
never the blobs: `ls` and `cat` of one small file from a multi-GB archive
stay cheap. Blob bytes read through `read_blob` are checked against both
digests before they are handed out.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

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
from snaparc.archive.hashing import DualHasher
from snaparc.archive.input import ArchiveInput, as_input
from snaparc.archive.tensors import TensorProfiles
from snaparc.errors import (
    CorruptArchiveError,
    LimitExceededError,
    TruncatedArchiveError,
)
from snaparc.format.codec import blob_codec
from snaparc.format.layout import Layout, MemberPlan, plan_layout
from snaparc.format.limits import DEFAULT_LIMITS, Limits
from snaparc.format.manifest import BlobEntry, Manifest, archive_id, frame_content_ranges
from snaparc.format.seektable import (
    FOOTER_SIZE,
    SeekEntry,
    decode_footer,
    decode_seek_table,
    seek_table_size,
)
from snaparc.format.zstdframes import FrameSplitter, RawFrame
from snaparc.publish import directio


def _pread(f: BinaryIO, offset: int, size: int) -> bytes:
    f.seek(offset)
    out = f.read(size)
    if len(out) != size:
        raise TruncatedArchiveError(
            f"archive ends at {offset + len(out)}, expected {offset + size}"
        )
    return out


@dataclass(frozen=True, slots=True)
class ArchiveIndex:
    manifest: Manifest
    manifest_bytes: bytes
    archive_id: str
    layout: Layout
    seek_table: list[SeekEntry]
    frame_offsets: list[int]  # compressed offset of every data frame, plus the table's
    seek_table_offset: int
    file_size: int

    def member_range(self, member: MemberPlan) -> tuple[int, int]:
        """Compressed byte range [start, end) of the frames of one member."""
        start = self.frame_offsets[member.first_frame]
        end = self.frame_offsets[member.first_frame + member.num_frames]
        return start, end

    def eof_range(self) -> tuple[int, int]:
        return self.frame_offsets[-2], self.frame_offsets[-1]

    def head_range(self) -> tuple[int, int]:
        return self.member_range(self.layout.members[0])


def open_index(source: ArchiveInput | BinaryIO, *, limits: Limits = DEFAULT_LIMITS) -> ArchiveIndex:
    """Check the seek table, file size and manifest of a seekable archive.

    An `ArchiveInput` with an `expected_id` is refused unless it is that archive.
    """
    archive = as_input(source)
    f = archive.stream
    f.seek(0, os.SEEK_END)
    file_size = f.tell()
    if file_size < FOOTER_SIZE + 8:
        raise TruncatedArchiveError(f"file is {file_size} bytes: too short for a .dlmsnap archive")
    n = decode_footer(_pread(f, file_size - FOOTER_SIZE, FOOTER_SIZE))
    table_size = seek_table_size(n)
    if n > limits.max_frames:
        raise LimitExceededError(
            f"seek table lists {n} frames (limit {limits.max_frames})",
            limit="frames",
            value=n,
            maximum=limits.max_frames,
        )
    if table_size > file_size:
        raise CorruptArchiveError(f"seek table claims {n} frames; the file cannot hold them")
    table_offset = file_size - table_size
    table = decode_seek_table(_pread(f, table_offset, table_size), max_frames=limits.max_frames)
    offsets = [0]
    for e in table:
        offsets.append(offsets[-1] + e.compressed_size)
    if offsets[-1] != table_offset:
        raise CorruptArchiveError(
            f"seek table frames add up to {offsets[-1]} bytes, but the table starts at "
            f"{table_offset}"
        )
    f.seek(0)
    splitter = FrameSplitter(
        read_into_of(f), max_frame_bytes=limits.max_frame_bytes, chunk=64 * 1024
    )
    manifest, body, head = read_manifest_head(
        lambda what: next_data_frame(splitter, what),
        limits,
        expected_id=archive.expected_id,
        name=archive.name,
    )
    layout = plan_layout(manifest, len(body))
    expected = [e.decompressed_size for e in table]
    if expected != layout.frame_sizes:
        raise CorruptArchiveError("seek table disagrees with the layout the manifest implies")
    for i, (c, _) in enumerate(head):
        if table[i].compressed_size != c:
            raise CorruptArchiveError(f"seek table disagrees with the stream at frame {i}")
    return ArchiveIndex(
        manifest, body, archive_id(body), layout, table, offsets, table_offset, file_size
    )


def iter_member_frames(
    f: BinaryIO, index: ArchiveIndex, member: MemberPlan, first: int = 0, stop: int | None = None
) -> Iterator[RawFrame]:
    """The exact compressed frames `first` to `stop` (default: all) of one
    member, one at a time (bounded memory); only their bytes are read.

    Each frame's `data` is valid until the next frame is requested.
    """
    stop = member.num_frames if stop is None else stop
    start = index.frame_offsets[member.first_frame + first]
    end = index.frame_offsets[member.first_frame + stop]
    f.seek(start)
    remaining = end - start

    def read_into(view: memoryview) -> int:
        nonlocal remaining
        n = f.readinto(view[: min(len(view), remaining)]) if remaining else 0  # type: ignore[attr-defined]
        remaining -= n or 0
        return int(n or 0)

    splitter = FrameSplitter(
        read_into, max_frame_bytes=DEFAULT_LIMITS.max_frame_bytes, chunk=64 * 1024
    )
    for j in range(first, stop):
        frame = next_data_frame(splitter, f"frame {j} of {member.name}")
        yield RawFrame(start + frame.offset, frame.data, None, frame.header)
        splitter.recycle(frame)
    if not splitter.at_end():
        raise CorruptArchiveError(f"seek table range of {member.name} holds extra bytes")


def frames_for(size: int, spans: list[tuple[int, int]]) -> list[int]:
    """The frames of a blob's member (of `size` bytes) that carry any byte of the
    blob ranges `spans` ([begin, end), offsets in the blob), in order."""
    ranges = frame_content_ranges(size)
    return [
        j for j, (lo, hi) in enumerate(ranges) if any(b < hi and lo < e for b, e in spans if e > b)
    ]


def read_blob_part(
    f: BinaryIO, index: ArchiveIndex, blob: BlobEntry, begin: int, end: int, out: BinaryIO
) -> None:
    """Write bytes [begin, end) of one stored blob with frame digests (format
    1.2) to `out`, reading only the frames that hold them and the frames that
    hold its safetensors header; every frame read is checked as `read_blob`
    checks it (profile, tar header, size, padding) and against its frame
    digest, before its bytes are written; the header against the tensor
    index at the end. Like `read_blob`, the caller must not publish `out` if
    this raises (spool it).
    """
    member = index.layout.blob_member(blob.sha256)
    if not blob.frame_blake3:
        raise CorruptArchiveError(f"blob {blob.sha256} has no frame digests")
    profiles = TensorProfiles(index.manifest)
    head = profiles.collector(blob)
    infos = index.manifest.tensors.get(blob.sha256, ())
    header_end = infos[0].begin if infos else blob.size
    needed = frames_for(blob.size, [(0, header_end), (begin, end)])
    ranges = frame_content_ranges(blob.size)
    codec = blob_codec(index.manifest, blob)
    buf = directio.frame_buffer()
    # runs of consecutive frames, each read with one seek
    runs: list[list[int]] = []
    for j in needed:
        if runs and runs[-1][-1] == j - 1:
            runs[-1].append(j)
        else:
            runs.append([j])
    for run in runs:
        frames = iter_member_frames(f, index, member, run[0], run[-1] + 1)
        for j, frame in zip(run, frames, strict=True):
            want = index.layout.frame_sizes[member.first_frame + j]
            data, digest = decompress_member_frame(
                frame, frame_content_size(frame), buf, codec, j, member
            )
            chunk = blob_chunk(member, j, data, want, frame.offset)
            check_frame_digest(member, j, digest)
            lo, hi = ranges[j]
            if head is not None and lo < header_end:
                head.feed(chunk)  # the header frames come first, in order, from 0
            a, b = max(begin, lo), min(end, hi)
            if b > a:
                out.write(chunk[a - lo : b - lo])
    if head is not None:
        profiles.check(blob, head)


def read_blob(f: BinaryIO, index: ArchiveIndex, blob: BlobEntry, out: BinaryIO) -> None:
    """Write one stored blob's bytes to `out`, after checking both digests.

    The caller must not publish `out` if this raises; `out` receives the
    bytes as they are decoded (spool it when the destination is a pipe).
    """
    member = index.layout.blob_member(blob.sha256)
    hasher = DualHasher()
    profiles = TensorProfiles(index.manifest)
    head = profiles.collector(blob)
    codec = blob_codec(index.manifest, blob)
    buf = directio.frame_buffer()  # one decode buffer, reused for every frame
    for j, frame in enumerate(iter_member_frames(f, index, member)):
        want = index.layout.frame_sizes[member.first_frame + j]
        data, digest = decompress_member_frame(
            frame, frame_content_size(frame), buf, codec, j, member
        )
        chunk = blob_chunk(member, j, data, want, frame.offset)
        check_frame_digest(member, j, digest)
        hasher.update(chunk)
        if head is not None:
            head.feed(chunk)
        out.write(chunk)
    check_digests(blob, hasher.digests())
    if head is not None:
        profiles.check(blob, head)


def verified_index(
    source: ArchiveInput, *, threads: int | None = None, limits: Limits = DEFAULT_LIMITS
) -> ArchiveIndex:
    """Verify a seekable archive whole (every byte, both digests), then index
    it for random access; the index must describe the archive just verified
    (what a push uploads from)."""
    from snaparc.archive.reader import read_archive
    from snaparc.errors import IOFailure

    verified = read_archive(source, None, threads=threads, limits=limits)
    source.stream.seek(0)
    index = open_index(source, limits=limits)
    if index.archive_id != verified.archive_id or index.frame_offsets[0] != 0:
        raise IOFailure(f"{source.name} changed while it was read")
    return index
