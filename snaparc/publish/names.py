"""The one naming scheme for paths that are not published yet, and their stale cleanup.

Every temp file, staging directory and moved-aside old tree is a hidden
sibling of the path it will become (or was):

    .NAME.snaparc-tmp-PID@HOST-TOKEN       a file being written
    .NAME.snaparc-staging-PID@HOST-TOKEN   a directory tree being built
    .NAME.snaparc-old-PID@HOST-TOKEN       an old tree moved aside by a swap

PID@HOST names the owner (`owner_tag`), so that the next run can tell the
leftovers of a dead process (`clean_stale`) from the work of a live one,
and leaves alone those of another machine sharing the filesystem (NFS),
whose PIDs mean nothing here. TOKEN makes names unique within a process.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import socket
from pathlib import Path
from typing import Literal

from snaparc.publish.claims import disown, own, remove_tree

Kind = Literal["tmp", "staging", "old"]


def _host_id() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


_HOST = _host_id()


def owner_tag() -> str:
    """`PID@HOST` for temp and staging names (see `clean_stale`)."""
    return f"{os.getpid()}@{_HOST}"


def temp_name(parent: Path, name: str, kind: Kind) -> Path:
    """A process-unique hidden sibling `parent/.NAME.snaparc-KIND-PID@HOST-TOKEN`."""
    return parent / f".{name}.snaparc-{kind}-{owner_tag()}-{secrets.token_hex(4)}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stale_pid(owner: str) -> int | None:
    """The PID in an owner tag if it ran on this host, else None.

    A bare PID (no `@HOST`) is read as this host's."""
    pid_text, _, host = owner.partition("@")
    if host and host != _HOST:
        return None
    return int(pid_text) if pid_text.isdigit() else None


def clean_stale(parent: Path, target_name: str, *, numbered: bool = False) -> list[Path]:
    """Remove the temp and staging siblings of `target_name` left by dead processes.

    With `numbered`, also those of `target_name.NNN` (split volumes). An old
    tree a dead process had moved aside goes back to its name when nothing
    took its place (the process died between the two renames of a swap
    without renameat2), so the old state survives; otherwise the new tree was
    published and the old one is removed. Returns the paths removed.
    """
    suffix = r"(?:\.\d{3,})?" if numbered else ""
    pattern = re.compile(
        rf"\.({re.escape(target_name)}{suffix})\.snaparc-(tmp|staging|old)-([^-]*)(?:-|$)"
    )
    removed: list[Path] = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for entry in entries:
        m = pattern.match(entry.name)
        if m is None:
            continue
        base, kind, owner = m.groups()
        pid = _stale_pid(owner)
        if pid is None or pid == os.getpid() or _pid_alive(pid):
            continue  # another host's, ours, or a live process's
        path = Path(entry.path)
        target = parent / base
        if kind == "old" and not os.path.lexists(target):
            os.rename(path, target)
            continue
        if entry.is_dir(follow_symlinks=False):
            remove_tree(path)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def dead_temps(parent: Path, name_pattern: str) -> list[tuple[int, Path]]:
    """The temp files (size, path) that dead processes of this host left in
    `parent` for a target name matching the regex `name_pattern`, largest first."""
    pattern = re.compile(rf"\.({name_pattern})\.snaparc-tmp-([^-]*)(?:-|$)")
    found: list[tuple[int, Path]] = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return found
    for entry in entries:
        m = pattern.match(entry.name)
        if m is None or not entry.is_file(follow_symlinks=False):
            continue
        pid = _stale_pid(m.group(2))
        if pid is None or pid == os.getpid() or _pid_alive(pid):
            continue
        try:
            size = entry.stat(follow_symlinks=False).st_size
        except OSError:
            continue
        found.append((size, Path(entry.path)))
    found.sort(key=lambda item: item[0], reverse=True)
    return found


def adopt(path: Path, target_name: str) -> Path | None:
    """Rename a dead process's temp file `path` to a temp name of `target_name`
    this process claims (`own`), so Ctrl-C removes it, a later run may adopt
    it in turn if this one is killed, and `clean_stale` leaves it alone while
    this process lives. Returns its new path, or None when it is gone."""
    mine = temp_name(path.parent, target_name, "tmp")
    own(mine, is_dir=False)
    try:
        os.rename(path, mine)
    except OSError:
        disown(mine)
        return None
    return mine


def adopt_stale(parent: Path, target_name: str) -> Path | None:
    """Take over the largest temp file a dead process of this host left for
    `target_name`, for a command that resumes from it (`adopt`). Returns its
    new path, or None when there is none."""
    found = dead_temps(parent, re.escape(target_name))
    return adopt(found[0][1], target_name) if found else None
