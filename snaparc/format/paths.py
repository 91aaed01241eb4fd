"""Path rules: which relative paths a manifest may name (spec/FORMAT.md, "Paths").

A path is a non-empty sequence of components joined by "/", valid UTF-8 in
Unicode NFC, with no empty, "." or ".." component, no backslash, no NUL or
other control character (C0, DEL, C1), no leading drive letter ("C:"), each
component at most 255 UTF-8 bytes and the whole path at most 4096. Two paths
that fold to the same key (NFKC of the case-folded name) collide, because
case-insensitive or normalising filesystems would write them to one file.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from snaparc.errors import UnsafePathError

MAX_COMPONENT_BYTES = 255
MAX_PATH_BYTES = 4096
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_DRIVE = re.compile(r"^[A-Za-z]:")


def check_path(path: str) -> None:
    """Raise UnsafePathError unless `path` is a safe canonical relative path."""
    shown = ascii(path)
    if not isinstance(path, str) or not path:
        raise UnsafePathError("empty path in manifest", path=str(path))
    try:
        raw = path.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsafePathError(f"path {shown} is not valid UTF-8", path=shown) from None
    if len(raw) > MAX_PATH_BYTES:
        raise UnsafePathError(f"path {shown} is longer than {MAX_PATH_BYTES} bytes", path=shown)
    if _CONTROL.search(path):
        raise UnsafePathError(f"path {shown} contains a control character", path=shown)
    if "\\" in path:
        raise UnsafePathError(f"path {shown} contains a backslash", path=shown)
    if path.startswith("/"):
        raise UnsafePathError(f"path {shown} is absolute", path=shown)
    if _DRIVE.match(path):
        raise UnsafePathError(f"path {shown} starts with a drive letter", path=shown)
    if not unicodedata.is_normalized("NFC", path):
        raise UnsafePathError(f"path {shown} is not in Unicode NFC", path=shown)
    for part in path.split("/"):
        if part in ("", ".", ".."):
            raise UnsafePathError(f"path {shown} has an empty, '.' or '..' component", path=shown)
        if len(part.encode("utf-8")) > MAX_COMPONENT_BYTES:
            raise UnsafePathError(
                f"path {shown} has a component longer than {MAX_COMPONENT_BYTES} bytes",
                path=shown,
            )


def fold_key(path: str) -> str:
    """The key under which two names land on one file somewhere."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKD", path).casefold())


def check_tree(files: Iterable[str], dirs: Iterable[str]) -> None:
    """Refuse collisions between entries (exact, case/normalisation folded) and
    paths that are used both as a file and as a directory."""
    seen: dict[str, str] = {}
    file_keys: set[str] = set()
    dir_keys: set[str] = set()
    for kind, paths in (("file", files), ("dir", dirs)):
        for p in paths:
            key = fold_key(p)
            if key in seen:
                other = seen[key]
                what = "duplicate" if other == p else "colliding"
                raise UnsafePathError(
                    f"{what} paths {other!a} and {p!a} (same file on "
                    "case-insensitive or normalising filesystems)",
                    path=p,
                )
            seen[key] = p
            (file_keys if kind == "file" else dir_keys).add(key)
            parts = key.split("/")
            for i in range(1, len(parts)):
                dir_keys.add("/".join(parts[:i]))
    clash = file_keys & dir_keys
    if clash:
        key = sorted(clash)[0]
        raise UnsafePathError(
            f"path {seen.get(key, key)!a} is both a file and a directory", path=key
        )
    # Declared empty dirs must be leaves: nothing may live beneath them.
    declared = {fold_key(d) for d in dirs}
    for key in seen:
        parts = key.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in declared:
                raise UnsafePathError(
                    f"empty directory {'/'.join(parts[:i])!a} has entries beneath it",
                    path=key,
                )
