"""Direct I/O for the files unpack and materialize write (Linux `O_DIRECT`).

Why: writing through the page cache costs a kernel copy of every byte and
leaves the final fsync to wait for writeback, which on the measured disk is
several times slower than the device itself (`benchmarks/README.md`).
`O_DIRECT` writes go from our buffer to the device, durable as they return.

How the bytes line up without copying: `O_DIRECT` needs the file offset, the
length and the memory address of a write aligned to the device's block size
(`ALIGN`, the strictest usual value). The reader decompresses every frame
into a page-aligned buffer at offset `SHIFT`, chosen so that a blob's byte at
file offset x lies at an address congruent to x modulo `ALIGN` (the frame
content starts with, or continues after, the member's 512-byte tar header,
and frames are a multiple of `ALIGN` long). The writer then sends each chunk's
aligned middle straight from that buffer and carries the few unaligned bytes
at either end in a one-block bounce buffer. Anything else (a filesystem
without `O_DIRECT`, a buffer that is not congruent, the file's last partial
block) falls back to ordinary buffered writes for the rest of that file.
"""

from __future__ import annotations

import ctypes
import mmap
import os

from snaparc.format.constants import FRAME_SIZE, TAR_BLOCK

ALIGN = 4096
# Where a frame's content starts in its buffer: the data of every blob then
# sits at addresses congruent to its file offsets (the header is TAR_BLOCK).
SHIFT = (-TAR_BLOCK) % ALIGN
O_DIRECT: int = getattr(os, "O_DIRECT", 0)

assert FRAME_SIZE % ALIGN == 0


def frame_buffer(size: int = FRAME_SIZE) -> memoryview:
    """A writable buffer of `size` bytes starting `SHIFT` bytes into a page-aligned mapping."""
    length = SHIFT + size
    mapping = mmap.mmap(-1, length + (-length) % mmap.PAGESIZE)
    return memoryview(mapping)[SHIFT : SHIFT + size]


def address_of(view: memoryview) -> int | None:
    """The memory address of a writable view's first byte; None if it is read-only."""
    if view.readonly or not view.c_contiguous or not view.nbytes:
        return None
    return ctypes.addressof((ctypes.c_char * view.nbytes).from_buffer(view))


def enter_direct(fd: int) -> bool:
    """Switch an open file to `O_DIRECT` writes; False where the filesystem has none.

    (Set after opening, with fcntl, so that the file is still created with
    O_EXCL in one step: a failed O_DIRECT open may already have created it.)
    """
    import fcntl

    if not O_DIRECT:
        return False
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags | O_DIRECT)
    except OSError:
        return False
    return True


def leave_direct(fd: int) -> None:
    """Switch an open file back to buffered writes."""
    import fcntl

    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~O_DIRECT)


def pwrite_all(fd: int, view: memoryview, offset: int) -> None:
    while view:
        n = os.pwrite(fd, view, offset)
        view = view[n:]
        offset += n
