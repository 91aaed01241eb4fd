"""Files published whole: written under a claimed temp name, fsynced, then named.

`AtomicFile` is a stream (pack's archive, a pulled archive) written through
`AppendFile` and published by `commit()`. It cleans up the stale temps of
its target first (`clean_stale`) and claims its temp file before creating
it (`own`), so neither a SIGKILL nor a Ctrl-C leaves a file under the final
name that is not complete.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, cast

from snaparc.publish.claims import disown, own
from snaparc.publish.fs import check_target, fsync_dir, os_error
from snaparc.publish.names import clean_stale, temp_name
from snaparc.publish.writers import AppendFile


class AtomicFile:
    """A binary file written under a temp name, published by `commit()`."""

    def __init__(self, target: Path, *, force: bool = False) -> None:
        self.target = target
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
