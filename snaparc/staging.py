"""Publish outputs complete or not at all.

- `AtomicFile`: write to a process-unique temp file beside the target, fsync,
  rename over the target. No truncated file ever carries the final name.
- `StagingDir`: build a tree in `.NAME.snaparc-staging-PID-TOKEN` beside the
  target, fsync files and directories, then publish with one rename (or an
  atomic exchange with an existing target, `--force`). A SIGKILL at any
  moment leaves the old state or the complete new one; the next run removes
  staging left by dead processes.

Nothing outside the target and its staging sibling is created, changed,
chmod'ed or re-timed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import io
import mmap
import os
import secrets
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, cast

from snaparc import directio
from snaparc.errors import DestinationError, DiskFullError, IOFailure

_STAGING_TAG = ".snaparc-staging-"
_TMP_TAG = ".snaparc-tmp-"
# The old tree, moved aside while --force swaps without renameat2 (see StagingDir).
_OLD_TAG = ".snaparc-old-"
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
_UNSUPPORTED = (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP)
_AT_FDCWD = -100


def os_error(exc: OSError, what: str) -> Exception:
    """Map an OSError to the snaparc class scripts can tell apart."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(f"no space left on device while {what}")
    return IOFailure(f"{what}: {exc.strerror or exc}")


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _host_id() -> str:
    import hashlib
    import socket

    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


# Temp names carry PID@HOST: a process on another machine sharing the
# filesystem (NFS) cannot be judged dead from here, so its paths are left alone.
_HOST = _host_id()


def owner_tag() -> str:
    """`PID@HOST` for temp and staging names (see `clean_stale`)."""
    return f"{os.getpid()}@{_HOST}"


def _stale_owner(name: str, tag: str) -> int | None:
    """The PID of a temp path's owner if it ran on this host, else None."""
    rest = name.split(tag, 1)[1]
    owner = rest.split("-", 1)[0]
    pid_text, _, host = owner.partition("@")
    if host and host != _HOST:
        return None
    return int(pid_text) if pid_text.isdigit() else None


def clean_stale(parent: Path, target_name: str) -> list[Path]:
    """Remove staging/temp siblings of `target_name` left by dead processes.

    An old tree a dead process had moved aside (`_OLD_TAG`) goes back to
    `target_name` when nothing took its place (the process died between the
    two renames of a swap without renameat2), so the old state survives;
    otherwise the new tree was published and the old one is removed.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for entry in entries:
        for tag in (_STAGING_TAG, _TMP_TAG, _OLD_TAG):
            prefix = f".{target_name}{tag}"
            if not entry.name.startswith(prefix):
                continue
            pid = _stale_owner(entry.name, tag)
            if pid is None or pid == os.getpid() or _pid_alive(pid):
                continue  # another host's, ours, or a live process's
            path = Path(entry.path)
            target = parent / target_name
            if tag == _OLD_TAG and not os.path.lexists(target):
                os.rename(path, target)
                continue
            if entry.is_dir(follow_symlinks=False):
                _rmtree(path)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _rmtree(path: Path) -> None:
    """Remove a tree we created, including read-only directories in it."""
    if path.is_symlink() or not path.exists():
        path.unlink(missing_ok=True)
        return
    for root, dirs, _ in os.walk(path):
        for d in dirs:
            p = os.path.join(root, d)
            if not os.path.islink(p):
                os.chmod(p, 0o700)
    os.chmod(path, 0o700)
    shutil.rmtree(path)


def _unique(parent: Path, name: str, tag: str) -> Path:
    return parent / f".{name}{tag}{owner_tag()}-{secrets.token_hex(4)}"


# Temp files and staging directories this process has claimed and not yet
# published or removed (path -> is a directory). A signal can land anywhere,
# including between creating a path and entering the `with` block that would
# remove it, so the CLI removes whatever is still listed when Ctrl-C or
# SIGTERM ends a command (`remove_owned`). Paths are claimed before they are
# created and released only once they no longer exist under that name.
_OWNED: dict[Path, bool] = {}


def own(path: Path, *, is_dir: bool) -> None:
    """Claim a temp path this process is about to create."""
    _OWNED[path] = is_dir


def disown(path: Path) -> None:
    """Release a claimed path (published under another name, or removed)."""
    _OWNED.pop(path, None)


def remove_owned() -> list[Path]:
    """Remove every claimed temp file and staging directory; return what was removed."""
    removed: list[Path] = []
    for path, is_dir in list(_OWNED.items()):
        try:
            if is_dir:
                _rmtree(path)
            else:
                path.unlink(missing_ok=True)
        except OSError:
            continue
        _OWNED.pop(path, None)
        removed.append(path)
    return removed


_Renameat2 = Callable[[int, bytes, int, bytes, int], int]


def _load_renameat2() -> _Renameat2 | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        func = libc.renameat2
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    func.restype = ctypes.c_int
    result: _Renameat2 = func
    return result


_renameat2: _Renameat2 | None = _load_renameat2()


def rename_with_flags(src: Path, dst: Path, flags: int) -> bool:
    """`renameat2(src, dst, flags)` (Linux); False when the call or flag is unsupported."""
    if _renameat2 is None:
        return False
    if _renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) == 0:
        return True
    err = ctypes.get_errno()
    if err in _UNSUPPORTED:
        return False
    raise OSError(err, os.strerror(err), str(src), None, str(dst))


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
    takes it (`snaparc.directio`); shared by `AppendFile` and `NewFileWriter`.

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


def check_target(target: Path, *, force: bool, kind: str = "directory") -> bool:
    """Refuse unusable targets; True if the target exists and will be replaced."""
    parent = target.parent
    if not parent.is_dir():
        raise DestinationError(f"parent directory {parent} does not exist", path=str(target))
    if target.is_symlink():
        raise DestinationError(
            f"{target} is a symbolic link; refusing to write through it", path=str(target)
        )
    if not target.exists():
        return False
    st = target.lstat()
    if kind == "directory":
        if not stat.S_ISDIR(st.st_mode):
            raise DestinationError(f"{target} exists and is not a directory", path=str(target))
        if not force and any(os.scandir(target)):
            raise DestinationError(
                f"{target} exists and is not empty (use --force to replace it atomically)",
                path=str(target),
            )
        return True
    if not stat.S_ISREG(st.st_mode):
        raise DestinationError(f"{target} exists and is not a regular file", path=str(target))
    if not force:
        raise DestinationError(f"{target} exists (use --force to replace it)", path=str(target))
    return True


class AtomicFile:
    """A binary file written under a temp name, published by `commit()`."""

    def __init__(self, target: Path, *, force: bool = False) -> None:
        self.target = target
        check_target(target, force=force, kind="file")
        clean_stale(target.parent, target.name)
        self.tmp = _unique(target.parent, target.name, _TMP_TAG)
        own(self.tmp, is_dir=False)
        try:
            self._raw = AppendFile(self.tmp)
            self.file: BinaryIO = cast(BinaryIO, self._raw)
        except OSError as exc:
            disown(self.tmp)
            raise os_error(exc, f"creating {self.tmp}") from None
        self._done = False

    def commit(self) -> None:
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
            os.chmod(self.tmp, 0o644 & ~_umask())
            os.replace(self.tmp, self.target)
            disown(self.tmp)
            self._done = True
            fsync_dir(self.target.parent)
        except OSError as exc:
            self.abort()
            raise os_error(exc, f"writing {self.target}") from None
        except BaseException:  # Ctrl-C while flushing: no temp file may stay behind
            self.abort()
            raise

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            self._raw.discard()
        finally:
            self.tmp.unlink(missing_ok=True)
            disown(self.tmp)

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.abort()
        elif not self._done:
            self.commit()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class StagingDir:
    """A private directory beside `target` that becomes `target` on publish."""

    def __init__(self, target: Path, *, force: bool = False) -> None:
        self.target = Path(os.path.abspath(target))
        if self.target.parent.is_dir():  # first: it may put an old tree back in place
            clean_stale(self.target.parent, self.target.name)
        self.replaces = check_target(self.target, force=force)
        self.path = _unique(self.target.parent, self.target.name, _STAGING_TAG)
        own(self.path, is_dir=True)
        try:
            os.mkdir(self.path, 0o700)
        except OSError as exc:
            disown(self.path)
            raise os_error(exc, f"creating staging directory {self.path}") from None
        self._done = False

    def publish(self, *, dir_mode: int = 0o755) -> None:
        """fsync every directory, then make the staging tree the target."""
        try:
            dirs = [Path(root) for root, _, _ in os.walk(self.path)]
            for d in reversed(dirs):
                fsync_dir(d)
                os.chmod(d, dir_mode)
            if self.replaces and self.target.exists():
                if not rename_with_flags(self.path, self.target, RENAME_EXCHANGE):
                    aside = _unique(self.target.parent, self.target.name, _OLD_TAG)
                    os.rename(self.target, aside)
                    os.rename(self.path, self.target)
                    own(aside, is_dir=True)  # only now: until here it is the old tree
                    disown(self.path)
                    self.path = aside
                fsync_dir(self.target.parent)
                _rmtree(self.path)  # now holds the old tree
                disown(self.path)
            else:
                os.rename(self.path, self.target)
                disown(self.path)
                fsync_dir(self.target.parent)
        except OSError as exc:
            self.abort()
            raise os_error(exc, f"publishing {self.target}") from None
        self._done = True

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        _rmtree(self.path)
        disown(self.path)

    def __enter__(self) -> StagingDir:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.abort()
