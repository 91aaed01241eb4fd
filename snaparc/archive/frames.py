"""The checks every frame and blob of an archive gets, however it is read.

The streaming reader (`reader`) and random access (`index`) both decode
frames and judge them here, so a hostile archive meets the same rules, in
the same order, whichever way it is read:

- `read_manifest_head`: the manifest member from the first frames, the
  identity the user pinned (checked on the manifest's bytes, before they are
  even parsed), then the manifest's own checks;
- `frame_content_size`: a data frame's header against the frame profile;
- `decompress_into`: one frame into a reused buffer;
- `decompress_member_frame`: the same for a blob member's frame, then the
  blob's codec undone (format 1.2), so every reader hashes content, and the
  blake3 of the frame's content bytes when the blob has frame digests;
- `blob_chunk`: one decompressed frame of a blob member: its tar header
  (first frame), its size against the layout, its zero padding; returns the
  blob bytes it holds;
- `check_frame_digest`: that frame blake3 against the manifest's (1.2);
- `check_digests`: a whole blob against both digests of the manifest.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import BinaryIO

import blake3
import zstandard

from snaparc.archive import zstd_native
from snaparc.archive.hashing import FileDigests
from snaparc.archive.input import check_identity
from snaparc.errors import (
    CorruptArchiveError,
    DigestMismatchError,
    FrameDigestMismatchError,
    LimitExceededError,
    ManifestError,
    NonCanonicalError,
    TruncatedArchiveError,
    UnexpectedFrameError,
    UnlistedMemberError,
)
from snaparc.format.codec import FrameCodec
from snaparc.format.constants import (
    CODED_MEMBER_ROOT,
    FRAME_SIZE,
    MANIFEST_MEMBER,
    MAX_WINDOW_SIZE,
    TAR_BLOCK,
)
from snaparc.format.layout import MemberPlan, frame_sizes
from snaparc.format.limits import Limits
from snaparc.format.manifest import BlobEntry, Manifest, archive_id, parse_manifest
from snaparc.format.tarheader import build_header, member_len, read_header
from snaparc.format.zstdframes import FrameSplitter, RawFrame, check_frame_header

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
    loads (`snaparc.archive.zstd_native`), python-zstandard otherwise.
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


def decompress_member_frame(
    frame: RawFrame,
    size: int,
    out: bytearray | memoryview,
    codec: FrameCodec | None,
    j: int,
    member: MemberPlan | None = None,
) -> tuple[memoryview, str | None]:
    """`decompress_into`, then undo the blob's codec on frame `j` of its member;
    with the `member` of a blob that has frame digests (format 1.2), also the
    blake3 of the content bytes the frame carries (else None).

    The one place where a reader turns a coded member's bytes into content
    (streaming and random access alike); it runs on the decompressing thread,
    so frame digests cost no time on the thread that checks the stream. The
    codec touches only content bytes, so the header and padding checks of
    `blob_chunk` see the member as stored. The digest is compared by
    `check_frame_digest`, after `blob_chunk` judged the frame (so a frame of
    the wrong size is reported as that, not as a digest mismatch).
    """
    data = decompress_into(frame, size, out)
    if codec is not None:
        codec.decode(j, data)
    if member is None or member.blob is None or not member.blob.frame_blake3:
        return data, None
    start = j * FRAME_SIZE
    lo = max(start, TAR_BLOCK) - start
    hi = min(start + len(data), TAR_BLOCK + member.size) - start
    return data, str(blake3.blake3(data[lo:hi] if hi > lo else b"").hexdigest())


def check_frame_digest(member: MemberPlan, j: int, got: str | None) -> None:
    """Frame `j`'s content against the manifest's frame digest, if it has one."""
    blob = member.blob
    if blob is None or not blob.frame_blake3:
        return
    expected = blob.frame_blake3[j]
    if got != expected:
        raise FrameDigestMismatchError(
            f"blob {blob.sha256}: frame {j} blake3 mismatch (manifest {expected[:16]}…, "
            f"data {(got or '')[:16]}…)",
            blob=blob.sha256,
            algorithm="blake3",
            expected=expected,
            actual=got or "",
            frame=j,
        )


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
        if name.startswith(CODED_MEMBER_ROOT):
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
    next_frame: Callable[[str], RawFrame],
    limits: Limits,
    *,
    expected_id: str | None = None,
    name: str = "the archive",
) -> tuple[Manifest, bytes, list[tuple[int, int]]]:
    """Read and check the manifest member from the first frames.

    Returns the manifest, its bytes, and (compressed, decompressed) sizes of
    the frames consumed. With `expected_id`, an archive whose id (the sha256
    of these bytes) differs is refused before the manifest is even parsed.
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
    check_identity(expected_id, archive_id(body), name)
    manifest = parse_manifest(body, limits=limits)
    return manifest, body, consumed


def frame_content_size(frame: RawFrame) -> int:
    """A data frame's declared content size, after its header passed the profile."""
    assert frame.header is not None
    check_frame_header(frame.header, offset=frame.offset, max_content=FRAME_SIZE)
    return frame.header.content_size or 0


def blob_chunk(member: MemberPlan, j: int, data: memoryview, want: int, offset: int) -> memoryview:
    """Check decompressed frame `j` of blob member `member`; return the blob bytes in it.

    `want` is the frame size the layout implies, `offset` the frame's offset
    in the file (for messages). The tar header is judged before the size, so
    an unlisted member is reported as such (exit 3) whatever its frame holds.
    """
    start = j * FRAME_SIZE
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
    lo = max(start, TAR_BLOCK)
    hi = min(start + len(data), TAR_BLOCK + member.size)
    pad_from = max(TAR_BLOCK + member.size, start) - start
    if pad_from < len(data) and any(data[pad_from:]):
        assert member.blob is not None
        raise NonCanonicalError(f"non-zero padding after blob {member.blob.sha256}")
    return data[lo - start : hi - start] if hi > lo else data[:0]


def read_into_of(stream: BinaryIO) -> Callable[[memoryview], int]:
    readinto = getattr(stream, "readinto", None)
    if readinto is not None:
        return lambda view: int(readinto(view) or 0)

    def fallback(view: memoryview) -> int:
        data = stream.read(len(view))
        view[: len(data)] = data
        return len(data)

    return fallback


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
