"""Scan a directory that `pack` will archive; refuse what the format cannot carry.

Only regular files and directories are allowed: a symlink, device, FIFO or
socket anywhere in the tree is refused with its path. Names must pass the
manifest's path rules (valid UTF-8, NFC, no control characters, no
collisions), so the archive written is always one every reader accepts.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from snaparc.errors import InputNotFoundError, SourceError, UnsafePathError, UsageError
from snaparc.format.paths import check_path, check_tree


@dataclass(frozen=True, slots=True)
class SourceFile:
    rel: str  # posix relative path, as it goes into the manifest
    abs: Path
    size: int
    executable: bool
    identity: tuple[int, int, int, int, int]  # dev, ino, size, mtime_ns, ctime_ns

    def changed(self) -> bool:
        try:
            st = os.stat(self.abs, follow_symlinks=False)
        except OSError:
            return True
        return _identity(st) != self.identity


def _identity(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@dataclass(frozen=True, slots=True)
class SourceTree:
    root: Path
    files: list[SourceFile]
    empty_dirs: list[str]


def scan_tree(root: Path) -> SourceTree:
    """All regular files under `root` (sorted) and its empty directories."""
    try:
        st = os.stat(root)
    except FileNotFoundError:
        raise InputNotFoundError(f"no such directory: {root}", path=str(root)) from None
    if not stat.S_ISDIR(st.st_mode):
        raise UsageError(f"not a directory: {root}", path=str(root))
    files: list[SourceFile] = []
    empty: list[str] = []

    def walk(directory: Path, rel: str) -> None:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except PermissionError:
            raise SourceError(f"cannot read directory {directory}: permission denied") from None
        if not entries and rel:
            empty.append(rel)
        for entry in entries:
            name = entry.name
            child_rel = f"{rel}/{name}" if rel else name
            path = Path(entry.path)
            try:
                est = entry.stat(follow_symlinks=False)
            except OSError as exc:
                raise SourceError(f"cannot stat {path}: {exc.strerror}", path=str(path)) from None
            mode = est.st_mode
            if stat.S_ISLNK(mode):
                raise SourceError(
                    f"{path} is a symbolic link; .dlmsnap archives carry regular files only "
                    "(copy the target in place of the link)",
                    path=str(path),
                )
            if stat.S_ISDIR(mode):
                walk(path, child_rel)
                continue
            if not stat.S_ISREG(mode):
                raise SourceError(
                    f"{path} is a special file (device, FIFO or socket); refusing to pack it",
                    path=str(path),
                )
            if not os.access(path, os.R_OK):
                raise SourceError(f"{path} is not readable", path=str(path))
            files.append(
                SourceFile(child_rel, path, est.st_size, bool(mode & stat.S_IXUSR), _identity(est))
            )

    walk(root, "")
    for f in files:
        _check_name(f.rel, root)
    for d in empty:
        _check_name(d, root)
    try:
        check_tree((f.rel for f in files), empty)
    except UnsafePathError as exc:
        raise SourceError(f"cannot pack {root}: {exc}", path=exc.path) from None
    files.sort(key=lambda f: f.rel)
    return SourceTree(root, files, sorted(empty))


def _check_name(rel: str, root: Path) -> None:
    try:
        check_path(rel)
    except UnsafePathError as exc:
        raise SourceError(
            f"cannot pack {root}: {exc} (rename it to a portable name)", path=exc.path
        ) from None
