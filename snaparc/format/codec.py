"""Blob codecs (format 1.2): how a coded blob's member bytes relate to its content.

A codec is size-preserving and works frame by frame, so the tar layout,
every member and frame size and the seek table are those of the uncoded
archive; only the content bytes inside each frame differ. `bytegroup`, the
one codec, takes every tensor of dtype BF16, F16 (width 2) or F32 (width 4)
of a safetensors blob, as listed by the manifest's tensor index, and within
each frame stores the whole elements of that tensor the frame holds (counted
from the tensor's first byte) as `width` byte planes: plane k holds bytes
k, k + width, k + 2·width … of the run. The sign and exponent bytes of
floating-point weights are far more alike than their mantissa bytes, so
zstd compresses the planes better than the interleaved bytes (the idea of
ZipNN and of Xet's byte grouping). The safetensors header, tensors of other
dtypes, the bytes of an element cut by a frame boundary and runs of fewer
than two elements stay as they are.

Within a frame, the runs of one width are regrouped together: their bytes,
concatenated in index order, become `width` planes, written back into the
runs' positions in the same order. So an adapter of many small tensors
still gives zstd one long exponent plane per frame, not one per tensor.

`FrameCodec.encode` (the writer) and `FrameCodec.decode` (every reader)
transform one decompressed frame of the member in place, knowing only the
frame's number in the member: any frame decodes on its own. Digests are of
the content (the decoded bytes), never of the member's bytes.

Speed (pure Python, no numpy): `bytearray` extended slicing (`src[k::w]`)
and extended slice assignment (`out[k::w] = plane`) are C loops, about 5 ms
per 8 MiB frame each way here; strided `memoryview` slicing goes element by
element through the buffer protocol and is 5-10 times slower. So the runs are
copied to a per-thread scratch buffer, regrouped into a second one and copied
back; both buffers are reused, since a fresh 8 MiB allocation per frame
(page faults) costs as much as the regrouping itself.
"""

from __future__ import annotations

import threading
from bisect import bisect_right

from snaparc.errors import ManifestError, UnsupportedVersionError
from snaparc.format.constants import (
    BYTEGROUP_WIDTHS,
    CODEC_BYTEGROUP,
    CODECS,
    FRAME_SIZE,
    TAR_BLOCK,
)
from snaparc.format.manifest import BlobEntry, Manifest
from snaparc.format.safetensors import TensorInfo


def check_codec(name: str, *, where: str = "codec") -> str:
    """A codec this reader knows; an unknown one needs a newer snaparc (exit 4)."""
    if name not in CODECS:
        raise UnsupportedVersionError(
            f"{where}: blob codec {name!r} is unknown to this snaparc (it knows "
            f"{', '.join(CODECS)}); upgrade snaparc"
        )
    return name


class FrameCodec:
    """The `bytegroup` transform of one blob, frame by frame."""

    __slots__ = ("_begins", "_ends", "_size", "_spans")

    def __init__(self, tensors: tuple[TensorInfo, ...], size: int) -> None:
        spans = [
            (t.begin, t.end, w)
            for t in tensors
            if (w := BYTEGROUP_WIDTHS.get(t.dtype)) is not None and t.end - t.begin >= 2 * w
        ]
        self._spans = spans
        self._begins = [b for b, _, _ in spans]
        self._ends = [e for _, e, _ in spans]
        self._size = size

    def runs(self, j: int, frame_len: int) -> dict[int, list[tuple[int, int]]]:
        """Width -> the (start, end) in frame `j`'s bytes of every run of whole
        elements of that width, in index order.

        `frame_len` is the frame's actual length (also a wrong one: a reader
        decodes before it judges the frame's size); runs never leave it.
        """
        start = j * FRAME_SIZE - TAR_BLOCK  # blob offset of the frame's first byte
        lo = max(0, start)
        hi = min(self._size, start + frame_len)
        out: dict[int, list[tuple[int, int]]] = {}
        i = bisect_right(self._ends, lo)  # the first span that ends after lo
        spans = self._spans
        while i < len(spans) and spans[i][0] < hi:
            b, e, w = spans[i]
            s = b + -(-(max(b, lo) - b) // w) * w
            t = b + (min(e, hi) - b) // w * w
            if t - s >= 2 * w:
                out.setdefault(w, []).append((s - start, t - start))
            i += 1
        return out

    def encode(self, j: int, frame: memoryview) -> None:
        """Regroup frame `j` of the member in place (the writer)."""
        for w, runs in self.runs(j, len(frame)).items():
            src = _scratch("src")
            size = _gather(frame, runs, src)
            n = size // w
            out = memoryview(_scratch("out"))
            for k in range(w):
                out[k * n : (k + 1) * n] = src[k:size:w]  # a C loop, into a buffer
            _scatter(frame, runs, out)

    def decode(self, j: int, frame: memoryview) -> None:
        """Undo `encode` on frame `j` of the member in place (every reader)."""
        for w, runs in self.runs(j, len(frame)).items():
            src = _scratch("src")
            size = _gather(frame, runs, src)
            n = size // w
            planes = memoryview(src)
            out = _scratch("out")
            for k in range(w):
                out[k:size:w] = planes[k * n : (k + 1) * n]  # a C loop, no allocation
            _scatter(frame, runs, memoryview(out))


_local = threading.local()


def _scratch(name: str) -> bytearray:
    """This thread's reused FRAME_SIZE buffer `name` (no allocation, no page
    faults per frame: a fresh 8 MiB buffer costs as much as the regrouping)."""
    buf: bytearray | None = getattr(_local, name, None)
    if buf is None:
        buf = bytearray(FRAME_SIZE)
        setattr(_local, name, buf)
    return buf


def _gather(frame: memoryview, runs: list[tuple[int, int]], into: bytearray) -> int:
    """Copy the runs' bytes, in order, to the start of `into`; their total size."""
    at = 0
    for s, t in runs:
        into[at : at + t - s] = frame[s:t]
        at += t - s
    return at


def _scatter(frame: memoryview, runs: list[tuple[int, int]], data: memoryview) -> None:
    """Write `data` back into the runs' positions, in order."""
    at = 0
    for s, t in runs:
        frame[s:t] = data[at : at + t - s]
        at += t - s


def blob_codec(manifest: Manifest, blob: BlobEntry) -> FrameCodec | None:
    """The transform of a stored blob's member, or None for an uncoded blob."""
    if blob.codec is None:
        return None
    if blob.codec != CODEC_BYTEGROUP:  # parse_manifest refused it already
        check_codec(blob.codec)
    tensors = manifest.tensors.get(blob.sha256)
    if tensors is None:  # parse_manifest refused it already
        raise ManifestError(f"manifest: coded blob {blob.sha256} has no tensor index")
    return FrameCodec(tensors, blob.size)


def blob_codecs(manifest: Manifest) -> dict[str, FrameCodec]:
    """Every coded stored blob's transform, by sha256."""
    out: dict[str, FrameCodec] = {}
    for blob in manifest.stored_blobs:
        codec = blob_codec(manifest, blob)
        if codec is not None:
            out[blob.sha256] = codec
    return out
