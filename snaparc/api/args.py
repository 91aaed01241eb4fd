"""Every argument an API function takes, checked before anything is touched.

Each check returns the value to use or raises `UsageError` (exit 2) with a
message that names the option as the CLI spells it, so that a script, a
library caller and a person at a terminal see the same words. The API
functions run all their checks first, then touch files, mirrors or caches.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from snaparc.archive.threads import check_threads
from snaparc.errors import UsageError
from snaparc.format.limits import DEFAULT_LIMITS, Limits

__all__ = [
    "check_codec",
    "check_flag",
    "check_jobs",
    "check_level",
    "check_limits",
    "check_oms_ignore",
    "check_path",
    "check_ref",
    "check_repo_id",
    "check_split",
    "check_threads",
]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_flag(value: object, option: str) -> bool:
    """A switch (`--allow-http`, ...): True or False, nothing else."""
    if not isinstance(value, bool):
        raise UsageError(f"{option} must be True or False; got {value!r}")
    return value


def check_jobs(jobs: int, *, option: str = "--jobs") -> int:
    """Objects transferred in parallel: 1 or more."""
    if not _is_int(jobs) or jobs < 1:
        raise UsageError(f"{option} must be a whole number, 1 or more; got {jobs!r}")
    return jobs


def check_level(level: int, *, option: str = "--level") -> int:
    """A zstd level the format allows."""
    from snaparc.archive.pack import MAX_LEVEL, MIN_LEVEL

    if not _is_int(level) or not MIN_LEVEL <= level <= MAX_LEVEL:
        raise UsageError(
            f"{option} must be a zstd level from {MIN_LEVEL} to {MAX_LEVEL}; got {level!r}"
        )
    return level


def check_codec(codec: str | None, *, option: str = "--codec") -> str | None:
    """A blob codec a writer may use: "none" (or None) for none, else its name."""
    from snaparc.format.constants import CODECS

    if codec is None or codec == "none":
        return None
    if not isinstance(codec, str) or codec not in CODECS:
        raise UsageError(f"{option} must be one of none, {', '.join(CODECS)}; got {codec!r}")
    return codec


_LIMIT_OPTIONS = {
    "max_manifest_bytes": "--max-manifest-bytes",
    "max_files": "--max-files",
    "max_total_bytes": "--max-total-bytes",
}


def check_limits(limits: Limits | None) -> Limits:
    """Hostile-input limits: each 1 or more (a limit of 0 admits no archive)."""
    if limits is None:
        return DEFAULT_LIMITS
    if not isinstance(limits, Limits):
        raise UsageError(f"limits must be a snaparc Limits, not {type(limits).__name__}")
    for field in (*_LIMIT_OPTIONS, "max_frame_bytes", "max_frames"):
        value = getattr(limits, field)
        if not _is_int(value) or value < 1:
            option = _LIMIT_OPTIONS.get(field, field)
            raise UsageError(f"{option} must be a whole number, 1 or more; got {value!r}")
    return limits


def check_split(split: int | str | None, *, option: str = "--split") -> int | None:
    """A volume size: a size text (`700M`, `fat32`) or bytes, at least 1 MiB."""
    from snaparc.airgap.volumes import MIN_VOLUME_SIZE, parse_size

    if split is None:
        return None
    if isinstance(split, str):
        try:
            split = parse_size(split)
        except UsageError as exc:
            raise UsageError(f"{option}: {exc}") from None
    if not _is_int(split) or split < MIN_VOLUME_SIZE:
        raise UsageError(f"{option} must be at least 1M (1 MiB); got {split!r}")
    return split


def check_ref(ref: str, *, option: str = "--ref") -> str:
    """A mirror ref name."""
    from snaparc.mirror.url import check_ref_name

    if not isinstance(ref, str):
        raise UsageError(f"{option} must be a ref name; got {ref!r}")
    try:
        return check_ref_name(ref)
    except UsageError as exc:
        raise UsageError(f"{option}: {exc}") from None


def check_repo_id(repo_id: str, *, option: str = "--repo-id") -> str:
    """A Hub repo id, `ORG/NAME`."""
    from snaparc.hf.materialize.layout import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except UsageError as exc:
        raise UsageError(f"{option}: {exc}") from None
    return repo_id


def check_path(path: str | os.PathLike[str], *, option: str) -> Path:
    """A path argument: not empty (an empty path would mean the current directory)."""
    if not isinstance(path, str | os.PathLike):
        raise UsageError(f"{option} must be a path; got {path!r}")
    text = os.fspath(path)
    if not isinstance(text, str) or not text:
        raise UsageError(f"{option} is empty: give a path")
    if "\0" in text:
        raise UsageError(f"{option} contains a NUL character")
    return Path(text)


def check_oms_ignore(paths: Iterable[str], *, option: str = "--oms-ignore") -> tuple[str, ...]:
    """Paths to leave out of an OMS signature: relative to the snapshot root,
    never escaping it (a directory leaves out everything below it)."""
    from snaparc.airgap.oms.tree import check_ignore_path

    if isinstance(paths, str | bytes):
        raise UsageError(f"{option} takes a list of paths, not one string")
    return tuple(check_ignore_path(p, option=option) for p in paths)
