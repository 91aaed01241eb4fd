"""Atomic publication of a directory tree built in a sibling staging dir.

`staging_dir(target)` yields a fresh dir next to `target` (same filesystem)
and removes it if the block raises. `publish_dir(staging, target)` fsyncs the
staged tree and swaps it into place so a reader sees either the whole old
tree or the whole new one, never a mix:

- no `target` yet: `renameat2(RENAME_NOREPLACE)` where available, else
  `os.rename`;
- `target` exists: `renameat2(RENAME_EXCHANGE)` where available (one atomic
  step), else rename the old tree aside, rename the new one in (restoring the
  old one if that fails); the old tree is then deleted.

Afterwards no staging or aside dir remains. Errors are `OSError`s; callers
translate them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from snaparc.publish import RENAME_EXCHANGE, RENAME_NOREPLACE, rename_with_flags

__all__ = ["RENAME_EXCHANGE", "RENAME_NOREPLACE", "rename_with_flags"]


@contextlib.contextmanager
def staging_dir(target: Path) -> Iterator[Path]:
    """A new empty dir beside `target`; removed again if the block raises."""
    path = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
    try:
        yield path
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise


def fsync_tree(root: Path) -> None:
    """fsync every regular file and directory under `root`, `root` itself last."""
    for dirpath, _dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames:
            path = os.path.join(dirpath, name)
            if os.path.isfile(path) and not os.path.islink(path):
                _fsync_path(path, os.O_RDONLY)
        _fsync_path(dirpath, os.O_RDONLY | os.O_DIRECTORY)


def _fsync_path(path: str | Path, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish_dir(staging: Path, target: Path) -> None:
    """Swap the fully built `staging` tree into `target`; see the module docstring.

    `staging` and `target` must be siblings. On failure `target` holds the
    old tree (or does not exist, as before) and `staging` is removed.
    """
    try:
        fsync_tree(staging)
        if target.exists() or target.is_symlink():
            old = _swap_existing(staging, target)
        else:
            old = None
            if not rename_with_flags(staging, target, RENAME_NOREPLACE):
                os.rename(staging, target)
        _fsync_path(target.parent, os.O_RDONLY | os.O_DIRECTORY)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old)


def _swap_existing(staging: Path, target: Path) -> Path:
    """Put `staging` at `target`; return where the old tree now lives."""
    if rename_with_flags(staging, target, RENAME_EXCHANGE):
        return staging
    aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.rmdir(aside)
    os.rename(target, aside)
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(aside, target)
        raise
    return aside
