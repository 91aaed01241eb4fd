"""Open and read the side files a command reads: regular files only.

Why: `open()` of a FIFO for reading blocks until a writer appears (forever,
if none does); a device may never end (`/dev/zero`) or act when opened; a
directory or a socket is nobody's signature. Every side file snaparc reads
(signatures, keys, split indexes, password files, base model specs, store
pointers, directory-mirror objects, the file minisign signs or verifies)
goes through `open_regular_file`, which:

1. `stat`s the path (following symlinks, as `open` does) and refuses
   anything but a regular file before opening it, so a device is never opened;
2. opens it with `O_NONBLOCK`, so a path swapped for a FIFO after the stat
   cannot block the open (and `O_CLOEXEC`);
3. `fstat`s the descriptor and refuses again unless it is a regular file:
   what is read is what was checked;
4. clears `O_NONBLOCK` and returns a buffered binary file (`io.BufferedReader`).

Errors, all `SnaparcError`s:

- not a regular file: `NotRegularFileError` (exit 2), naming the path and what
  it is ("FIFO", "directory", "socket", "character device", ...);
- missing (or a parent that is not a directory): `missing(message, path=...)`,
  `InputNotFoundError` (exit 2, a `FileNotFoundError`) by default: a caller
  with its own class for a missing file (`MissingSignatureError`) passes it;
- larger than `limit` (`read_regular_file` only): `too_large(message, path=...)`,
  `UsageError` by default: callers pass the class of their format's refusals;
- any other `OSError` (permission, loop, I/O error): `IOFailure` (exit 8),
  raised from that `OSError` (its `__cause__`).

A caller whose errors belong to another family catches these and maps them
(a directory mirror maps them to its `RemoteError`s, exit 10).
"""

from __future__ import annotations

import errno
import fcntl
import io
import os
import stat
from typing import Protocol

from snaparc.errors import (
    InputNotFoundError,
    IOFailure,
    NotRegularFileError,
    SnaparcError,
    UsageError,
)


class ErrorFactory(Protocol):
    """An error class, or any callable like one: `(message, *, path) -> error`."""

    def __call__(self, message: str, *, path: str) -> SnaparcError: ...


def file_kind(mode: int) -> str:
    """What a `st_mode` is, in words: "regular file", "FIFO", "directory", ..."""
    if stat.S_ISREG(mode):
        return "regular file"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    return "special file"


def open_regular_file(
    path: str | os.PathLike[str],
    *,
    what: str,
    missing: ErrorFactory = InputNotFoundError,
) -> io.BufferedReader:
    """Open `path` for reading if it is a regular file; refuse anything else at once.

    (`open_regular_raw` is the same, unbuffered, for large sequential reads.)

    `what` names the file in messages ("signature file", "split archive
    index"). Errors: see the module docstring. Errors from reading the
    returned file are plain `OSError`s, as from `open`.
    """
    return os.fdopen(_open_regular_fd(path, what=what, missing=missing), "rb")


def open_regular_raw(
    path: str | os.PathLike[str],
    *,
    what: str,
    missing: ErrorFactory = InputNotFoundError,
) -> io.FileIO:
    """`open_regular_file`, unbuffered (split volumes, files hashed in large chunks)."""
    return io.FileIO(_open_regular_fd(path, what=what, missing=missing), "rb", closefd=True)


def _open_regular_fd(path: str | os.PathLike[str], *, what: str, missing: ErrorFactory) -> int:
    name = os.fspath(path)
    _check_mode(_stat(name, what, missing), name, what)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # open refuses sockets: one swapped in after the stat
            _check_mode(_stat(name, what, missing), name, what)
        raise _os_error(exc, name, what, missing) from exc
    try:
        _check_mode(os.fstat(fd).st_mode, name, what)
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
        return fd
    except OSError as exc:
        os.close(fd)
        raise _os_error(exc, name, what, missing) from exc
    except BaseException:
        os.close(fd)
        raise


def read_regular_file(
    path: str | os.PathLike[str],
    *,
    limit: int,
    what: str,
    missing: ErrorFactory = InputNotFoundError,
    too_large: ErrorFactory = UsageError,
) -> bytes:
    """The whole content of the regular file `path`, refused if over `limit` bytes.

    A file whose size is over `limit` is refused before a byte is read, and
    at most `limit + 1` bytes are read from one that grows meanwhile.
    """
    name = os.fspath(path)
    with open_regular_file(name, what=what, missing=missing) as f:
        try:
            size = os.fstat(f.fileno()).st_size
            data = b"" if size > limit else f.read(limit + 1)
        except OSError as exc:
            raise _os_error(exc, name, what, missing) from exc
    if size > limit or len(data) > limit:
        raise too_large(f"{what} {name} is larger than {limit} bytes", path=name)
    return data


def _stat(name: str, what: str, missing: ErrorFactory) -> int:
    try:
        return os.stat(name).st_mode
    except OSError as exc:
        raise _os_error(exc, name, what, missing) from exc


def _check_mode(mode: int, name: str, what: str) -> None:
    if not stat.S_ISREG(mode):
        kind = file_kind(mode)
        raise NotRegularFileError(
            f"{what} {name} is a {kind}, not a regular file", path=name, kind=kind
        )


def _os_error(exc: OSError, name: str, what: str, missing: ErrorFactory) -> SnaparcError:
    if isinstance(exc, FileNotFoundError | NotADirectoryError):
        return missing(f"{what} not found: {name}", path=name)
    return IOFailure(f"cannot read {what} {name}: {exc.strerror or exc}", path=name)
