"""Where an archived snapshot export goes in a hub cache repo: pure rules, no I/O.

Repo ids, the revision an archive gets, which export file lands at which
repo path (and what happens on a clash), and the relative blob links.
The rules are stated in `snaparc.hf.materialize`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from snaparc.errors import (
    ExportError,
    UsageError,
)
from snaparc.format.manifest import FileEntry

ADAPTER_DIR = "adapter"


PROCESSOR_DIR = "processor"


ADAPTER_CONFIG = f"{ADAPTER_DIR}/adapter_config.json"


REVISION_LENGTH = 40


_REPO_PART = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.\-]{0,94}[A-Za-z0-9_])?")


@dataclass(frozen=True, slots=True)
class LayoutConflict:
    """Two export files wanted the same repo path; `moved` lives at `moved_to` instead."""

    repo_path: str
    kept: str
    moved: str
    moved_to: str
    reason: str

    def describe(self) -> str:
        return (
            f"{self.repo_path}: {self.kept} kept at the root; {self.moved} "
            f"({self.reason}) kept as {self.moved_to}"
        )


@dataclass(frozen=True, slots=True)
class RepoLayout:
    """Where each export file lives in the repo snapshot.

    `files` maps repo path -> the file entry placed there, `sources` repo
    path -> its export path; `merged` lists (repo path, export path) of identical files folded into
    an existing entry.
    """

    files: dict[str, FileEntry]
    sources: dict[str, str]
    merged: tuple[tuple[str, str], ...]
    conflicts: tuple[LayoutConflict, ...]


def validate_repo_id(repo_id: str) -> tuple[str, str]:
    """`ORG/NAME` with the Hub's characters (A-Z a-z 0-9 _ . -), each part 1..96
    characters starting and ending with a letter, digit or `_`, no `--` or `..`
    (the cache folder name uses `--` as separator), not ending in `.git`.
    Raises `UsageError`; returns (org, name)."""
    if not isinstance(repo_id, str) or repo_id.count("/") != 1:
        raise UsageError(f"repo id {repo_id!r} must be ORG/NAME")
    org, name = repo_id.split("/")
    for part in (org, name):
        if not _REPO_PART.fullmatch(part):
            raise UsageError(
                f"repo id {repo_id!r}: {part!r} must be 1-96 of A-Z a-z 0-9 _ . - and start "
                "and end with a letter, digit or _"
            )
        if "--" in part or ".." in part:
            raise UsageError(f"repo id {repo_id!r}: '--' and '..' are not allowed")
    if name.endswith(".git"):
        raise UsageError(f"repo id {repo_id!r}: the name cannot end in .git")
    return org, name


def repo_folder_name(repo_id: str) -> str:
    """The hub cache folder of a model repo: `models--ORG--NAME`."""
    org, name = validate_repo_id(repo_id)
    return f"models--{org}--{name}"


def revision_for(archive_id: str) -> str:
    """The cache revision of an archive: the first 40 hex chars of its archive id."""
    if not re.fullmatch(r"[0-9a-f]{64}", archive_id):
        raise ValueError(f"not an archive id: {archive_id!r}")
    return archive_id[:REVISION_LENGTH]


def _priority(path: str) -> tuple[int, str]:
    top = path.split("/", 1)[0]
    if top == ADAPTER_DIR and "/" in path:
        return 1, path.split("/", 1)[1]
    if top == PROCESSOR_DIR and "/" in path:
        return 2, path.split("/", 1)[1]
    return 0, path


def plan_repo_layout(files: Sequence[FileEntry]) -> RepoLayout:
    """Map export paths to repo paths by the rule in the module docstring."""
    ordered = sorted(files, key=lambda f: (_priority(f.path)[0], f.path))
    placed: dict[str, FileEntry] = {}
    sources: dict[str, str] = {}
    dirs: set[str] = set()
    merged: list[tuple[str, str]] = []
    conflicts: list[LayoutConflict] = []

    def clash(path: str) -> str | None:
        """Why `path` cannot hold a new file (None if it can)."""
        if path in placed:
            return "different content"
        if path in dirs:
            return "a directory of that name exists"
        parts = path.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in placed:
                return f"{'/'.join(parts[:i])} is a file"
        return None

    def place(path: str, entry: FileEntry) -> None:
        placed[path] = entry
        sources[path] = entry.path
        parts = path.split("/")
        dirs.update("/".join(parts[:i]) for i in range(1, len(parts)))

    for entry in ordered:
        want = _priority(entry.path)[1]
        occupant = placed.get(want)
        if occupant is not None and occupant.blob == entry.blob:
            merged.append((want, entry.path))
            continue
        reason = clash(want)
        if reason is None:
            place(want, entry)
            continue
        fallback = entry.path
        fallback_occupant = placed.get(fallback)
        if fallback_occupant is not None and fallback_occupant.blob == entry.blob:
            merged.append((fallback, entry.path))
        elif fallback == want or clash(fallback) is not None:
            raise ExportError(
                f"cannot lay out {entry.path} in the repo: {want} and {fallback} are both taken"
            )
        else:
            place(fallback, entry)
        kept = sources.get(want, want)
        conflicts.append(LayoutConflict(want, kept, entry.path, fallback, reason))
    return RepoLayout(placed, sources, tuple(merged), tuple(conflicts))


def blob_link(repo_path: str, sha256: str) -> str:
    """`../../blobs/<sha>` from `snapshots/<rev>/<repo_path>`, one `..` per extra level."""
    depth = len(PurePosixPath(repo_path).parts) + 1
    return "../" * depth + f"blobs/{sha256}"


def inside(root: Path, rel: str) -> Path:
    """`root/rel`, refused unless it stays lexically inside `root`."""
    base = os.path.normpath(os.path.abspath(root))
    path = os.path.normpath(os.path.join(base, *PurePosixPath(rel).parts))
    if os.path.isabs(rel) or not path.startswith(base + os.sep):
        raise ExportError(f"path {rel!r} would leave {root}", path=str(root))
    return Path(path)
