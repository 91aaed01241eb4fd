"""Open the archive a command names: a path, `-` for stdin, split volumes, or a
mirror target (`s3://bucket/prefix:REF`, `file:///dir@ID`, `DIR:REF`).

Every source comes back as one byte stream that the verified reader checks
the same way; a mirror's bytes are rebuilt lazily from its objects.
"""

from __future__ import annotations

import io
import os
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, cast

from snaparc.errors import InputNotFoundError, IOFailure, SnaparcError, UsageError

STDIN = "-"


@contextmanager
def open_archive_input(source: str | Path) -> Iterator[BinaryIO]:
    """A binary stream of the whole archive (stdin for "-")."""
    if str(source) == STDIN:
        fd = os.dup(sys.stdin.fileno())
        _grow_pipe(fd)
        yield io.FileIO(fd, "rb", closefd=True)
        return
    if isinstance(source, str) and _is_mirror_target(source):
        from snaparc.mirror.pull import open_mirror_archive
        from snaparc.mirror.url import s3_settings

        with open_mirror_archive(source, settings=s3_settings()) as stream:
            yield stream
        return
    path = Path(source)
    split = _split_volumes(path)
    if split is not None:
        with split as stream:
            yield stream
        return
    try:
        f = open(path, "rb", buffering=0)  # noqa: SIM115
    except FileNotFoundError:
        raise InputNotFoundError(f"no such archive: {path}", path=str(path)) from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a directory, not an archive", path=str(path)) from None
    except OSError as exc:
        raise IOFailure(f"cannot open {path}: {exc.strerror}", path=str(path)) from None
    with f:
        yield f


_F_SETPIPE_SZ = 1031  # Linux fcntl: resize a pipe's buffer


def _grow_pipe(fd: int, size: int = 1 << 20) -> None:
    """Ask for a 1 MiB pipe buffer (default 64 KiB): fewer, larger reads and
    fewer context switches with the writer. Harmless where unsupported."""
    try:
        import fcntl

        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            fcntl.fcntl(fd, _F_SETPIPE_SZ, size)
    except OSError:
        pass


def _is_mirror_target(text: str) -> bool:
    if "://" not in text and ":" not in text and "@" not in text:
        return False  # a plain path: do not import the mirror package
    from snaparc.mirror.url import looks_like_mirror_target

    return looks_like_mirror_target(text)


def _split_volumes(path: Path) -> BinaryIO | None:
    """Split volumes (`X.dlmsnap.001` or the index) open as one stream."""
    try:
        from snaparc.airgap.volumes import is_split_archive, open_volumes
    except ImportError:
        return None
    if not is_split_archive(path):
        return None
    return cast(BinaryIO, open_volumes(path))


def archive_size(source: str | Path) -> int:
    """Bytes a command will read from `source` (0 if unknown: stdin, a mirror),
    for progress meters; split volumes count all their volumes."""
    if str(source) == STDIN:
        return 0
    try:
        from snaparc.airgap.volumes import is_split_archive, open_volumes

        if is_split_archive(Path(source)):
            with open_volumes(Path(source)) as stream:
                return int(stream.seek(0, os.SEEK_END))
        return os.stat(source).st_size
    except (OSError, SnaparcError):
        return 0


def is_seekable(stream: BinaryIO) -> bool:
    try:
        return stream.seekable()
    except (AttributeError, OSError, ValueError):
        return False
