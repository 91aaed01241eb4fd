"""Directory trees published whole: `StagingDir`, and the renames it needs.

`StagingDir` builds a tree in `.NAME.snaparc-staging-PID@HOST-TOKEN` beside
the target, fsyncs it, then publishes it with one rename, or with `force`
by an atomic exchange with the existing target (`renameat2`
`RENAME_EXCHANGE`). Where the filesystem has no exchange (NFS, old kernels)
the old tree moves aside as `.NAME.snaparc-old-PID@HOST-TOKEN` and the new
one into place; if the second rename fails the old tree goes back. A
SIGKILL at any moment leaves the old state or the complete new one: the
next run puts back an old tree a dead process had moved aside, if nothing
took its place, and removes the staging of dead processes (`clean_stale`).

Nothing outside the target and its staging sibling is created, changed,
chmod'ed or re-timed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from collections.abc import Callable
from pathlib import Path

from snaparc.publish.claims import disown, own, remove_tree
from snaparc.publish.fs import check_target, fsync_dir, os_error
from snaparc.publish.names import clean_stale, temp_name
from snaparc.publish.output import Output

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
_UNSUPPORTED = (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP)
_AT_FDCWD = -100

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


def _fsync_file(path: str) -> None:
    if os.path.islink(path) or not os.path.isfile(path):
        return
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class StagingDir(Output):
    """A private directory beside `target` that becomes `target` on publish."""

    def __init__(self, target: Path, *, force: bool = False) -> None:
        self.target = Path(os.path.abspath(target))
        if self.target.parent.is_dir():  # first: it may put an old tree back in place
            clean_stale(self.target.parent, self.target.name)
        self.replaces = check_target(self.target, force=force)
        self.path = temp_name(self.target.parent, self.target.name, "staging")
        own(self.path, is_dir=True)
        try:
            os.mkdir(self.path, 0o700)
        except OSError as exc:
            disown(self.path)
            raise os_error(exc, f"creating staging directory {self.path}") from None
        self._done = False

    def publish(self, *, dir_mode: int = 0o755, sync_files: bool = False) -> None:
        """fsync every directory, then make the staging tree the target.

        `sync_files` also fsyncs every regular file first, for trees whose
        writers did not (unpack's and materialize's writers fsync on close).
        """
        try:
            for root, _, files in os.walk(self.path, topdown=False):
                if sync_files:
                    for name in files:
                        _fsync_file(os.path.join(root, name))
                fsync_dir(Path(root))
                os.chmod(root, dir_mode)
            if self.replaces and self.target.exists():
                if not rename_with_flags(self.path, self.target, RENAME_EXCHANGE):
                    self._swap_aside()
                fsync_dir(self.target.parent)
                remove_tree(self.path)  # now holds the old tree
                disown(self.path)
            else:
                if not rename_with_flags(self.path, self.target, RENAME_NOREPLACE):
                    os.rename(self.path, self.target)
                disown(self.path)
                fsync_dir(self.target.parent)
        except OSError as exc:
            self.abort()
            raise os_error(exc, f"publishing {self.target}") from None
        self._done = True

    def _swap_aside(self) -> None:
        """The exchange in two renames: old tree aside, new one in. If the
        second fails the old tree goes back, so the target never goes missing."""
        aside = temp_name(self.target.parent, self.target.name, "old")
        os.rename(self.target, aside)
        try:
            os.rename(self.path, self.target)
        except BaseException:
            os.rename(aside, self.target)
            raise
        own(aside, is_dir=True)  # only now: until here it is the old tree
        disown(self.path)
        self.path = aside

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        remove_tree(self.path)
        disown(self.path)

    def finish(self) -> None:
        """A block that ends without `publish()` publishes nothing: the staging goes."""
        self.abort()
