"""Atomic file publication for the air-gap outputs (keys, signatures, sums, indexes).

Contract: a published path either keeps its old content or has the complete new
content; never a partial file. Data goes to a process-unique temporary name in
the destination directory, is fsync'ed, then moved into place by rename (or by
hard link when overwriting is refused, so the no-clobber check is atomic).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from pathlib import Path

from snaparc.errors import DestinationError, DiskFullError, IOFailure
from snaparc.publish import disown, own


def temp_path_for(path: Path) -> Path:
    """A hidden, process-unique temporary name beside `path`."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def os_error(exc: OSError, what: str, path: Path) -> DiskFullError | IOFailure:
    """Map an OSError to snaparc's error classes (ENOSPC -> DiskFullError)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(f"{what} {path}: no space left on device", path=str(path))
    return IOFailure(f"{what} {path}: {exc.strerror or exc}", path=str(path))


def fsync_dir(directory: Path) -> None:
    """Best-effort fsync of a directory so renames inside it are durable."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(
    path: Path, data: bytes, *, mode: int = 0o644, overwrite: bool = True
) -> Path:
    """Publish `data` at `path` atomically with permission bits `mode`.

    With `overwrite=False` an existing `path` (even a dangling symlink) raises
    DestinationError and nothing is changed.
    """
    path = Path(path)
    if not overwrite and (path.exists() or path.is_symlink()):
        raise DestinationError(f"{path} already exists (use --force to replace it)", path=str(path))
    tmp = temp_path_for(path)
    own(tmp, is_dir=False)  # removed by the CLI if a signal lands before `finally`
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            os.fchmod(fd, mode)  # not subject to the umask
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        if overwrite:
            os.replace(tmp, path)
        else:
            _link_no_clobber(tmp, path)
    except OSError as exc:
        raise os_error(exc, "cannot write", path) from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        disown(tmp)
    fsync_dir(path.parent)
    return path


def _link_no_clobber(tmp: Path, path: Path) -> None:
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise DestinationError(
            f"{path} already exists (use --force to replace it)", path=str(path)
        ) from None
    except OSError as exc:
        # File systems without hard links (FAT32, some FUSE mounts): a rename
        # after the existence check is the best we can do there.
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        if path.exists() or path.is_symlink():
            raise DestinationError(
                f"{path} already exists (use --force to replace it)", path=str(path)
            ) from None
        os.replace(tmp, path)
