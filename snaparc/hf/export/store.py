"""The training store layout and adapter resolution for export.

Layout under a store root:

    adapter/current.txt                 -> "adapter/versions/vNNNN" (store-relative)
    adapter/versions/vNNNN/             PEFT adapter dirs, 1-indexed, four digits
    adapter/<name>/current.txt          -> "adapter/<name>/versions/vNNNN"
    adapter/<name>/versions/vNNNN/      named adapters, name ^[a-z][a-z0-9_]{0,31}$
    exports/                            export outputs

A pointer that is missing, empty, not a directory once resolved, or that
resolves (symlinks included) outside the store root is refused with an
`AdapterResolutionError` that says what to do; a pointer that is not a
regular file (a FIFO, a directory) with `NotRegularFileError`, before it is read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from snaparc.errors import ExportError, IOFailure
from snaparc.sidefiles import read_regular_file

ADAPTER_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
VERSION_DIR_RE = re.compile(r"^v(\d{4})$")
CURRENT_POINTER = "current.txt"
ADAPTER_CONFIG = "adapter_config.json"
_MAX_POINTER_BYTES = 64 * 1024  # far more than any store-relative path


class AdapterResolutionError(ExportError):
    """The adapter to export cannot be found or is not acceptable."""


@dataclass(frozen=True)
class Store:
    """A training store rooted at `root` (paths are computed, never created)."""

    root: Path

    @property
    def adapter_dir(self) -> Path:
        return self.root / "adapter"

    @property
    def exports(self) -> Path:
        return self.root / "exports"

    def adapter_root(self, name: str | None = None) -> Path:
        """`adapter/` for the default adapter, `adapter/<name>/` for a named one."""
        if name is None:
            return self.adapter_dir
        check_adapter_name(name)
        return self.adapter_dir / name

    def current_pointer(self, name: str | None = None) -> Path:
        """The `current.txt` of the default or a named adapter."""
        return self.adapter_root(name) / CURRENT_POINTER


@dataclass(frozen=True)
class ResolvedAdapter:
    """An adapter dir chosen for export, with its version (>= 1) and name."""

    path: Path
    version: int
    name: str | None


def check_adapter_name(name: str) -> None:
    """Raise `AdapterResolutionError` unless `name` matches ^[a-z][a-z0-9_]{0,31}$."""
    if not ADAPTER_NAME_RE.fullmatch(name):
        raise AdapterResolutionError(
            f"invalid adapter name {name!r}: use 1-32 characters of a-z, 0-9 and _, "
            "starting with a letter"
        )


def version_from_dir_name(path: Path) -> int:
    """The N of a `vNNNN` dir name (N >= 1); 1 for any other name."""
    match = VERSION_DIR_RE.fullmatch(path.name)
    if match is None or int(match.group(1)) < 1:
        return 1
    return int(match.group(1))


def resolve_adapter(
    store: Store, *, adapter_name: str | None = None, adapter_path: Path | None = None
) -> ResolvedAdapter:
    """Pick the adapter dir to export.

    `adapter_path` (an explicit dir, anywhere) wins; else the named adapter's
    `current.txt`; else `adapter/current.txt`. Passing both is refused. The
    result is a resolved directory holding `adapter_config.json`.
    """
    if adapter_path is not None and adapter_name is not None:
        raise AdapterResolutionError("pass either an adapter name or an adapter path, not both")
    if adapter_path is not None:
        path = _existing_dir(adapter_path, what="adapter path")
        return ResolvedAdapter(_checked_adapter(path), version_from_dir_name(path), None)
    if adapter_name is not None:
        check_adapter_name(adapter_name)
    root = _existing_dir(store.root, what="store root")
    pointer = store.current_pointer(adapter_name)
    target = _follow_pointer(root, pointer)
    return ResolvedAdapter(_checked_adapter(target), version_from_dir_name(target), adapter_name)


def _existing_dir(path: Path, *, what: str) -> Path:
    try:
        resolved = path.resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise AdapterResolutionError(f"{what} {path} does not exist", path=str(path)) from exc
    if not resolved.is_dir():
        raise AdapterResolutionError(f"{what} {path} is not a directory", path=str(path))
    return resolved


def _follow_pointer(root: Path, pointer: Path) -> Path:
    hint = "run training first, or pass --adapter-path"

    def missing(message: str, *, path: str) -> AdapterResolutionError:
        return AdapterResolutionError(f"no adapter pointer at {path}; {hint}", path=path)

    try:
        raw = read_regular_file(
            pointer,
            limit=_MAX_POINTER_BYTES,
            what="adapter pointer",
            missing=missing,
            too_large=AdapterResolutionError,
        )
        text = raw.decode("utf-8").strip()
    except (IOFailure, UnicodeDecodeError) as exc:
        raise AdapterResolutionError(
            f"cannot read adapter pointer {pointer}: {exc}", path=str(pointer)
        ) from exc
    if not text:
        raise AdapterResolutionError(
            f"adapter pointer {pointer} is empty; write the store-relative path of a "
            "version dir (e.g. adapter/versions/v0001) into it, or pass --adapter-path",
            path=str(pointer),
        )
    try:
        target = (root / text).resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise AdapterResolutionError(
            f"adapter pointer {pointer} names {text!r}, which does not exist; fix the "
            f"pointer or {hint}",
            path=str(pointer),
        ) from exc
    if not target.is_relative_to(root):
        raise AdapterResolutionError(
            f"adapter pointer {pointer} names {text!r}, which resolves outside the store "
            f"root {root}; point it at a version dir inside the store",
            path=str(pointer),
        )
    if not target.is_dir():
        raise AdapterResolutionError(
            f"adapter pointer {pointer} names {text!r}, which is not a directory",
            path=str(pointer),
        )
    return target


def _checked_adapter(path: Path) -> Path:
    if not (path / ADAPTER_CONFIG).is_file():
        raise AdapterResolutionError(
            f"{path} holds no {ADAPTER_CONFIG}; it is not a PEFT adapter dir "
            "(save it with peft's save_pretrained)",
            path=str(path),
        )
    return path
