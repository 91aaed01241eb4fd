"""Writers of new files, around the page cache where the filesystem allows.

- `AppendFile`: a file written front to back through an 8 MiB aligned
  block (pack's archive, a pulled archive, split volumes).
- `NewFileWriter`: a file written from the reader's aligned frame buffers
  with no copy (unpack, materialize).

Both share one core, `_DirectWrites` (open, `O_DIRECT` appends, the
fallback to buffered writes, writeback); `snaparc.publish.directio` says how
the alignment works.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import io
import mmap
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from snaparc.publish import directio
from snaparc.publish.fs import os_error

_SYNC_FILE_RANGE_WRITE = 2
_WRITEBACK_STEP = 32 * 1024 * 1024


def _load_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        func = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    func.restype = ctypes.c_int
    result: Callable[[int, int, int, int], int] = func
    return result


_sync_file_range = _load_sync_file_range()


def kick_writeback(fd: int, kicked: int, written: int) -> int:
    """Start writing back [kicked, written) once it is at least 32 MiB; return
    the new `kicked` offset. Non-blocking; a no-op where unsupported."""
    if _sync_file_range is None or written - kicked < _WRITEBACK_STEP:
        return kicked
    _sync_file_range(fd, kicked, written - kicked, _SYNC_FILE_RANGE_WRITE)
    return written


class _DirectWrites:
    """A new file written front to back, with `O_DIRECT` where the filesystem
    takes it (`snaparc.publish.directio`); shared by `AppendFile` and `NewFileWriter`.

    Bytes not yet on the device wait in the page-aligned `_block[:_fill]`;
    `_written` counts the bytes in the file. `_block` is None once the file
    writes through the page cache (no O_DIRECT, or `_leave_direct`), where
    writeback starts every 32 MiB (`kick_writeback`).
    """

    _fd: int
    _block: memoryview | None
    _fill: int
    _written: int
    _kicked: int

    def _open(self, path: Path, block_size: int) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        direct = directio.enter_direct(self._fd)
        self._block = memoryview(mmap.mmap(-1, block_size)) if direct else None
        self._fill = 0
        self._written = 0
        self._kicked = 0

    def _buffered(self, view: memoryview) -> None:
        while view:
            k = os.write(self._fd, view)
            view = view[k:]
            self._written += k
        self._kicked = kick_writeback(self._fd, self._kicked, self._written)

    def _pwrite(self, view: memoryview) -> bool:
        """Append aligned `view` with O_DIRECT. False if the device refuses our
        alignment at the file's first write: the file is then buffered, the
        block's bytes are written, and `view` (if not the block's) is the caller's."""
        try:
            directio.pwrite_all(self._fd, view, self._written)
        except OSError as exc:
            if exc.errno != errno.EINVAL or self._written:
                raise
            self._leave_direct()
            return False
        self._written += len(view)
        return True

    def _leave_direct(self) -> None:
        """Buffered from here on; what the block still holds is written first."""
        block, fill = self._block, self._fill
        assert block is not None
        directio.leave_direct(self._fd)
        self._block = None
        self._fill = 0
        os.lseek(self._fd, self._written, os.SEEK_SET)
        self._buffered(block[:fill])


class AppendFile(_DirectWrites, io.RawIOBase):
    """A new file written front to back (pack's archive, a pulled archive,
    split volumes).

    Where the filesystem takes `O_DIRECT`, bytes gather in a page-aligned
    8 MiB block that goes to the device whole: one user-space copy instead of
    the kernel's page-cache copy plus writeback, which is what an fsynced
    multi-GB archive otherwise waits for. `flush()` writes the last partial
    block through the page cache (O_DIRECT cannot write it) and leaves direct
    mode.
    """

    BLOCK = 8 * 1024 * 1024

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._open(path, self.BLOCK)

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def write(self, b: Any, /) -> int:
        view = memoryview(b).cast("B")
        n = len(view)
        while view:
            block = self._block
            if block is None:
                self._buffered(view)
                break
            take = min(len(block) - self._fill, len(view))
            block[self._fill : self._fill + take] = view[:take]
            self._fill += take
            view = view[take:]
            if self._fill == len(block):
                self._write_block(len(block))
        return n

    def _write_block(self, size: int) -> None:
        assert self._block is not None
        if self._pwrite(self._block[:size]):
            self._block[: self._fill - size] = self._block[size : self._fill]
            self._fill -= size

    def flush(self) -> None:
        if self._block is not None and self._fill:
            whole = self._fill - self._fill % directio.ALIGN
            if whole:
                self._write_block(whole)
            if self._block is not None:
                self._leave_direct()

    def close(self) -> None:
        if self.closed:
            return
        try:
            self.flush()
        finally:
            self.discard()

    def discard(self) -> None:
        """Close without writing what the block still holds (the file is being removed)."""
        if self.closed:
            return
        self._block = None
        self._fill = 0
        os.close(self._fd)
        super().close()


class NewFileWriter(_DirectWrites):
    """Writes bytes to a file it creates (O_EXCL, no symlink following);
    fsyncs and closes on close(). OS errors become snaparc errors.

    Writes go around the page cache with no copy while the chunks arrive
    aligned, as the reader's frame buffers make them: a chunk's aligned middle
    goes straight to the device, its unaligned ends through a one-block
    bounce buffer. A chunk that is not aligned, and the file's last partial
    block, turn the file to buffered writes.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._open(path, directio.ALIGN)  # the block is the bounce buffer
        except OSError as exc:
            raise os_error(exc, f"creating {path}") from None

    def write(self, data: memoryview) -> None:
        try:
            if self._block is None:
                self._buffered(data)
            else:
                self._write_direct(data, self._block)
        except OSError as exc:
            raise os_error(exc, f"writing {self.path}") from None

    def _write_direct(self, data: memoryview, bounce: memoryview) -> None:
        align = directio.ALIGN
        view = data
        if self._fill:
            take = min(align - self._fill, len(view))
            bounce[self._fill : self._fill + take] = view[:take]
            self._fill += take
            view = view[take:]
            if self._fill < align:
                return
            if not self._pwrite(bounce):
                self._buffered(view)
                return
            self._fill = 0
        if not view:
            return
        address = directio.address_of(view)
        if address is None or address % align:
            self._leave_direct()
            self._buffered(view)
            return
        whole = len(view) - len(view) % align
        if whole and not self._pwrite(view[:whole]):
            self._buffered(view)
            return
        rest = view[whole:]
        bounce[: len(rest)] = rest
        self._fill = len(rest)

    def close(self) -> None:
        try:
            if self._block is not None and self._fill:
                self._leave_direct()
            os.fsync(self._fd)
        except OSError as exc:
            raise os_error(exc, f"writing {self.path}") from None
        finally:
            os.close(self._fd)
