"""The filesystem steps every publisher is made of, and their one error mapping.

- `fsync_dir`: make the renames in a directory durable (strict: errors raise).
- `place`: move a finished temp file to its final name, replacing or
  create-only (an atomic hard link; check-then-rename where the filesystem
  has no links).
- `check_target`: refuse unusable targets before any byte is written.
- `os_error`: an OSError as the snaparc error a script can tell apart.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from snaparc.errors import DestinationError, DiskFullError, IOFailure

# What `os.link` raises on filesystems without hard links (FAT32, some FUSE
# mounts) or across devices.
_NO_LINKS = (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV)


def os_error(exc: OSError, what: str, *, path: Path | str | None = None) -> Exception:
    """Map an OSError to the snaparc class scripts can tell apart.

    ENOSPC and EDQUOT become `DiskFullError` (exit 6), anything else
    `IOFailure` (exit 8). `what` says what was being done ("writing X");
    `path`, if given, is carried on the error.
    """
    where = None if path is None else str(path)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(f"no space left on device while {what}", path=where)
    return IOFailure(f"{what}: {exc.strerror or exc}", path=where)


def fsync_dir(path: Path) -> None:
    """fsync a directory, so that the renames and links inside it are durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def place(tmp: Path, path: Path, *, overwrite: bool) -> None:
    """Give the finished file `tmp` the name `path`; `tmp`'s name is gone afterwards.

    With `overwrite` an existing file is replaced atomically (rename).
    Without it an existing `path` (even a dangling symlink) raises
    FileExistsError and is left alone: a hard link publishes create-only in
    one step. Where the filesystem has no hard links the fallback checks,
    then renames: racing writers can then both succeed.
    """
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path)) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


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


def published_mode() -> int:
    """The mode of a published archive file or volume: 0644 less the umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o644 & ~mask
