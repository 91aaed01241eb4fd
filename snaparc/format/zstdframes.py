"""zstd frame structure (RFC 8878): find frame boundaries without decompressing.

`FrameSplitter` walks frame headers and block headers of a byte stream and
returns each frame's exact bytes, so that frames can be handed to several
threads for decompression and their compressed sizes compared with the seek
table, from a pipe as well as from a file. It never decompresses and never
trusts a size it has not bounded first.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from snaparc.errors import (
    CorruptArchiveError,
    LimitExceededError,
    NonCanonicalError,
    TruncatedArchiveError,
    UnexpectedFrameError,
)
from snaparc.format.constants import (
    MAX_WINDOW_SIZE,
    SKIPPABLE_MAGIC_MAX,
    SKIPPABLE_MAGIC_MIN,
    ZSTD_MAGIC,
)

_BLOCK_MAX = 128 * 1024


@dataclass(frozen=True, slots=True)
class FrameHeader:
    header_size: int
    content_size: int | None
    window_size: int
    has_checksum: bool
    dict_id: int
    single_segment: bool


@dataclass(frozen=True, slots=True)
class RawFrame:
    """One frame's exact bytes and where it started in the stream."""

    offset: int
    data: memoryview  # valid until recycled (see FrameSplitter.recycle)
    skippable_magic: int | None  # set for skippable frames
    header: FrameHeader | None  # set for zstd data frames


def parse_frame_header(buf: bytes, *, offset: int) -> FrameHeader:
    """Parse the header of a data frame starting at buf[0] (magic included)."""
    if len(buf) < 6:
        raise TruncatedArchiveError(f"zstd frame at offset {offset}: truncated header")
    fhd = buf[4]
    fcs_flag = fhd >> 6
    single_segment = bool(fhd & 0x20)
    if fhd & 0x08:
        raise CorruptArchiveError(f"zstd frame at offset {offset}: reserved header bit set")
    has_checksum = bool(fhd & 0x04)
    did_flag = fhd & 0x03
    pos = 5
    window_size = 0
    if not single_segment:
        wd = buf[pos]
        pos += 1
        exponent, mantissa = wd >> 3, wd & 7
        window_log = 10 + exponent
        base = 1 << window_log
        window_size = base + (base // 8) * mantissa
    did_len = (0, 1, 2, 4)[did_flag]
    fcs_len = (1 if single_segment else 0, 2, 4, 8)[fcs_flag]
    need = pos + did_len + fcs_len
    if len(buf) < need:
        raise TruncatedArchiveError(f"zstd frame at offset {offset}: truncated header")
    dict_id = int.from_bytes(buf[pos : pos + did_len], "little") if did_len else 0
    pos += did_len
    content_size: int | None = None
    if fcs_len:
        content_size = int.from_bytes(buf[pos : pos + fcs_len], "little")
        if fcs_len == 2:
            content_size += 256
    pos += fcs_len
    if single_segment:
        assert content_size is not None
        window_size = content_size
    return FrameHeader(pos, content_size, window_size, has_checksum, dict_id, single_segment)


def check_frame_header(header: FrameHeader, *, offset: int, max_content: int) -> None:
    """The spec's frame profile: content size present and bounded, checksum on,
    no dictionary, window no larger than a frame."""
    if header.dict_id:
        raise UnexpectedFrameError(f"zstd frame at offset {offset} needs a dictionary")
    if header.content_size is None:
        raise NonCanonicalError(f"zstd frame at offset {offset} does not declare its size")
    if not header.has_checksum:
        raise NonCanonicalError(f"zstd frame at offset {offset} has no content checksum")
    if header.content_size > max_content:
        raise LimitExceededError(
            f"zstd frame at offset {offset} declares {header.content_size} bytes; "
            f"frames hold at most {max_content}",
            limit="frame_size",
            value=header.content_size,
            maximum=max_content,
        )
    if header.window_size > MAX_WINDOW_SIZE:
        raise LimitExceededError(
            f"zstd frame at offset {offset} asks for a {header.window_size}-byte window; "
            f"the spec allows at most {MAX_WINDOW_SIZE}",
            limit="window_size",
            value=header.window_size,
            maximum=MAX_WINDOW_SIZE,
        )


class FrameSplitter:
    """Cut a zstd stream into frames by walking headers; bounded memory.

    `read_into(view)` must fill up to len(view) bytes and return the count,
    0 only at end of stream. Each frame is read straight into its own
    buffer (no copy but the kernel's); bytes read past a frame's end are
    carried into the next frame's buffer.
    """

    def __init__(
        self,
        read_into: Callable[[memoryview], int],
        *,
        max_frame_bytes: int,
        chunk: int = 1 << 20,
    ) -> None:
        self._read_into = read_into
        self.max_frame_bytes = max_frame_bytes
        self._chunk = chunk
        self._cap = max_frame_bytes + chunk
        self._buf = bytearray(self._cap)
        self._free: list[bytearray] = []  # recycled frame buffers
        self._len = 0  # valid bytes in self._buf
        self._pos = 0  # stream offset of self._buf[0]
        self._eof = False

    @property
    def offset(self) -> int:
        return self._pos

    def _fill(self, n: int) -> bool:
        """Ensure at least n buffered bytes; False if the stream ends first."""
        while self._len < n and not self._eof:
            want = min(max(n - self._len, self._chunk), self._cap - self._len)
            got = self._read_into(memoryview(self._buf)[self._len : self._len + want])
            if not got:
                self._eof = True
                break
            self._len += got
        return self._len >= n

    def at_end(self) -> bool:
        return not self._fill(1)

    def _take(self, n: int) -> memoryview:
        """Hand out the first n buffered bytes; keep the rest for the next frame."""
        out = self._buf
        rest = self._len - n
        self._buf = self._free.pop() if self._free else bytearray(self._cap)
        if rest:
            self._buf[:rest] = memoryview(out)[n : self._len]
        self._len = rest
        self._pos += n
        return memoryview(out)[:n]

    def recycle(self, frame: RawFrame) -> None:
        """Give a frame's buffer back once nothing reads `frame.data` any more.

        Optional: without it every frame gets a fresh buffer. Recycling
        avoids zeroing and faulting in a new buffer per frame.
        """
        buf = frame.data.obj
        frame.data.release()
        # Only this splitter's own buffers have this exact size.
        if len(memoryview(buf)) == self._cap and len(self._free) < 16:
            self._free.append(buf)  # type: ignore[arg-type]

    def next_frame(self) -> RawFrame | None:
        """The next frame, or None at a clean end of stream."""
        if not self._fill(1):
            return None
        start = self._pos
        if not self._fill(4):
            raise TruncatedArchiveError(f"stream ends inside a frame magic at offset {start}")
        (magic,) = struct.unpack_from("<I", self._buf, 0)
        if SKIPPABLE_MAGIC_MIN <= magic <= SKIPPABLE_MAGIC_MAX:
            if not self._fill(8):
                raise TruncatedArchiveError(f"skippable frame at offset {start} is truncated")
            (size,) = struct.unpack_from("<I", self._buf, 4)
            total = 8 + size
            if total > self.max_frame_bytes:
                raise LimitExceededError(
                    f"skippable frame at offset {start} is {total} bytes",
                    limit="frame_bytes",
                    value=total,
                    maximum=self.max_frame_bytes,
                )
            if not self._fill(total):
                raise TruncatedArchiveError(f"skippable frame at offset {start} is truncated")
            return RawFrame(start, self._take(total), magic, None)
        if magic != ZSTD_MAGIC:
            raise CorruptArchiveError(
                f"offset {start}: not a zstd frame (magic {magic:#010x}); "
                "the file is not a .dlmsnap archive or is damaged"
            )
        self._fill(18)
        header = parse_frame_header(bytes(self._buf[: min(18, self._len)]), offset=start)
        pos = header.header_size
        block_max = min(header.window_size, _BLOCK_MAX) if header.window_size else _BLOCK_MAX
        while True:
            if not self._fill(pos + 3):
                raise TruncatedArchiveError(
                    f"zstd frame at offset {start} is truncated (stream ends in a block header)"
                )
            bh = self._buf[pos] | (self._buf[pos + 1] << 8) | (self._buf[pos + 2] << 16)
            last = bh & 1
            btype = (bh >> 1) & 3
            bsize = bh >> 3
            if btype == 3:
                raise CorruptArchiveError(
                    f"zstd frame at offset {start}: reserved block type at offset {self._pos + pos}"
                )
            if bsize > block_max:
                raise CorruptArchiveError(
                    f"zstd frame at offset {start}: block of {bsize} bytes exceeds "
                    f"the maximum {block_max}"
                )
            pos += 3 + (1 if btype == 1 else bsize)
            if pos > self.max_frame_bytes:
                raise LimitExceededError(
                    f"zstd frame at offset {start} exceeds {self.max_frame_bytes} bytes",
                    limit="frame_bytes",
                    value=pos,
                    maximum=self.max_frame_bytes,
                )
            if last:
                break
        if header.has_checksum:
            pos += 4
        if not self._fill(pos):
            raise TruncatedArchiveError(f"zstd frame at offset {start} is truncated")
        return RawFrame(start, self._take(pos), None, header)

    def read_rest(self, limit: int) -> bytes:
        """Up to `limit` bytes that follow the last frame (for trailing-data checks)."""
        self._fill(limit)
        return bytes(self._buf[: min(limit, self._len)])
