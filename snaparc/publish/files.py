"""Files published whole: written under a claimed temp name, fsynced, then named.

- `AtomicFile`: a stream (pack's archive, a pulled archive) written through
  `AppendFile` and published by `commit()`.
- `write_file_atomic`: bytes already in memory (keys, signatures, sums, a
  split archive's index), with an exact mode and an optional create-only
  publish.
- `put_file`: the same at the OSError level, for callers that map errors
  themselves (the mirror's directory store).

Every one cleans up the stale temps of its target first (`clean_stale`) and
claims its temp file before creating it (`own`), so neither a SIGKILL nor a
Ctrl-C leaves a file under the final name that is not complete.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import BinaryIO, cast

from snaparc.errors import DestinationError
from snaparc.publish.claims import disown, own
from snaparc.publish.fs import check_target, fsync_dir, os_error, place, published_mode
from snaparc.publish.names import clean_stale, temp_name
from snaparc.publish.output import Output
from snaparc.publish.writers import AppendFile


def _exists(path: Path) -> DestinationError:
    return DestinationError(f"{path} already exists (use --force to replace it)", path=str(path))


def write_file_atomic(
    path: Path | str, data: bytes, *, mode: int = 0o644, overwrite: bool = True
) -> Path:
    """Publish `data` at `path` atomically with exactly the permission bits `mode`.

    The mode is not subject to the umask. With `overwrite=False` an existing
    `path` (even a dangling symlink) raises DestinationError and nothing is
    changed, also when another writer creates it meanwhile (see `place`).
    OS errors become `DiskFullError` or `IOFailure`. Returns `path`.
    """
    path = Path(path)
    if not path.parent.is_dir():  # as every other output: exit 5, not an I/O failure
        raise DestinationError(f"parent directory {path.parent} does not exist", path=str(path))
    if not overwrite and os.path.lexists(path):
        raise _exists(path)
    try:
        put_file(path, data, mode=mode, overwrite=overwrite)
    except FileExistsError:
        raise _exists(path) from None
    except OSError as exc:
        raise os_error(exc, f"writing {path}", path=path) from exc
    return path


def put_file(path: Path, data: bytes, *, mode: int | None, overwrite: bool) -> None:
    """`write_file_atomic` with OS errors left as they are.

    `mode=None` creates the file as `open()` would (0666 less the umask).
    Without `overwrite`, FileExistsError says `path` exists and is untouched.
    """
    clean_stale(path.parent, path.name)
    tmp = temp_name(path.parent, path.name, "tmp")
    own(tmp, is_dir=False)  # removed by the CLI if a signal lands before `finally`
    try:
        fd = os.open(
            tmp,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
            0o666 if mode is None else mode,
        )
        try:
            if mode is not None:
                os.fchmod(fd, mode)  # not subject to the umask
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        place(tmp, path, overwrite=overwrite)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        disown(tmp)
    fsync_dir(path.parent)


class AtomicFile(Output):
    """A binary file written under a temp name, published by `commit()`.

    Without `force` an existing target is refused, at construction and again
    at `commit()`: a target that appeared meanwhile is not replaced.
    """

    def __init__(self, target: Path, *, force: bool = False) -> None:
        self.target = target
        self.force = force
        check_target(target, force=force, kind="file")
        clean_stale(target.parent, target.name)
        self.tmp = temp_name(target.parent, target.name, "tmp")
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
            os.chmod(self.tmp, published_mode())
            place(self.tmp, self.target, overwrite=self.force)
            disown(self.tmp)
            self._done = True
            fsync_dir(self.target.parent)
        except FileExistsError:
            self.abort()
            raise _exists(self.target) from None
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

    def finish(self) -> None:
        if not self._done:
            self.commit()
