"""Claims: the temp paths this process must remove if a signal ends it.

A signal can land anywhere, including between creating a path and entering
the `with` block that would remove it, so the CLI removes whatever is still
claimed when Ctrl-C or SIGTERM ends a command (`remove_owned`). Paths are
claimed before they are created and released only once they no longer exist
under that name (published under their final name, or removed).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# Claimed paths (path -> is a directory), not yet published or removed.
_OWNED: dict[Path, bool] = {}


def own(path: Path, *, is_dir: bool) -> None:
    """Claim a temp path this process is about to create."""
    _OWNED[path] = is_dir


def disown(path: Path) -> None:
    """Release a claimed path (published under another name, or removed)."""
    _OWNED.pop(path, None)


def remove_owned() -> list[Path]:
    """Remove every claimed temp file and staging directory; return what was removed."""
    removed: list[Path] = []
    for path, is_dir in list(_OWNED.items()):
        try:
            if is_dir:
                remove_tree(path)
            else:
                path.unlink(missing_ok=True)
        except OSError:
            continue
        _OWNED.pop(path, None)
        removed.append(path)
    return removed


def remove_tree(path: Path) -> None:
    """Remove a tree we created, including read-only directories in it.

    A symlink is removed as a link, never followed."""
    if path.is_symlink() or not path.exists():
        path.unlink(missing_ok=True)
        return
    for root, dirs, _ in os.walk(path):
        for d in dirs:
            p = os.path.join(root, d)
            if not os.path.islink(p):
                os.chmod(p, 0o700)
    os.chmod(path, 0o700)
    shutil.rmtree(path)
