"""The typed Python API behind the CLI: one function per command.

Each function takes paths (or "-" for stdin/stdout), does the work through
the format and reader layers, and returns a result object; none prints.
`progress_factory(total_bytes)` may return a `Progress` (or None).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from snaparc.errors import SourceError
from snaparc.format.limits import DEFAULT_LIMITS, Limits
from snaparc.format.manifest import MetadataValue
from snaparc.inputs import open_archive_input
from snaparc.pack import PackResult, plan_pack, write_archive
from snaparc.progress import Progress
from snaparc.reader import ReadReport
from snaparc.source_tree import scan_tree
from snaparc.staging import AtomicFile, os_error

ProgressFactory = Callable[[int], Any]


def _no_progress(total: int) -> None:
    return None


@dataclass(frozen=True, slots=True)
class PackOutcome:
    pack: PackResult
    output: Path | None
    progress: Progress | None


def snapshot_metadata(
    src: Path, files: list[str], *, allow_undeclared: bool
) -> dict[str, MetadataValue]:
    """Metadata for a snapshot export; refuses undeclared files unless allowed."""
    try:
        from snaparc.hf.snapshot import inspect_snapshot_tree
    except ModuleNotFoundError:  # the HF package is being written
        return {}

    info = inspect_snapshot_tree(src, files)
    if info is None:
        return {}
    if info.undeclared and not allow_undeclared:
        shown = ", ".join(info.undeclared[:5]) + (" …" if len(info.undeclared) > 5 else "")
        raise SourceError(
            f"{src} is a snapshot export, but {len(info.undeclared)} files are not declared in "
            f"its snapshot_manifest.json ({shown}); base weights or stray files may be "
            "shipped by accident. Remove them, re-export, or pass --allow-undeclared."
        )
    return dict(info.metadata)


def pack_directory(
    src: Path,
    out: Path | None,
    *,
    level: int = 3,
    threads: int | None = None,
    force: bool = False,
    allow_undeclared: bool = False,
    metadata: dict[str, MetadataValue] | None = None,
    progress_factory: ProgressFactory = _no_progress,
    stdout: BinaryIO | None = None,
) -> PackOutcome:
    """Pack `src` into `out` (atomically), or to stdout when `out` is None."""
    tree = scan_tree(src)
    meta = snapshot_metadata(src, [f.rel for f in tree.files], allow_undeclared=allow_undeclared)
    meta.update(metadata or {})
    plan = plan_pack(src, threads=threads, metadata=meta, tree=tree)
    progress: Progress | None = progress_factory(plan.layout.tar_size)
    if out is None:
        sink = stdout if stdout is not None else sys.stdout.buffer
        result = write_archive(plan, sink, level=level, threads=threads, progress=progress)
        sink.flush()
        return PackOutcome(result, None, progress)
    with AtomicFile(out, force=force) as af:
        try:
            result = write_archive(plan, af.file, level=level, threads=threads, progress=progress)
        except OSError as exc:
            raise os_error(exc, f"writing {out}") from None
    return PackOutcome(result, out, progress)


@dataclass(frozen=True, slots=True)
class ReadOutcome:
    report: ReadReport
    progress: Progress | None
    signature: dict[str, str] | None = None


def _archive_size(source: str | Path) -> int:
    if str(source) == "-":
        return 0
    try:
        return os.stat(source).st_size
    except OSError:
        return 0


def verify_path(
    source: str | Path,
    *,
    threads: int | None = None,
    limits: Limits = DEFAULT_LIMITS,
    key: str | Path | None = None,
    require_signature: bool = False,
    progress_factory: ProgressFactory = _no_progress,
) -> ReadOutcome:
    """Verify an archive file (or stdin for "-"), and its signature if asked."""
    from snaparc.verify import verify_archive

    signature = None
    if key is not None or require_signature:
        signature = check_signature(source, key, require=require_signature)
    progress = progress_factory(_archive_size(source))
    with open_archive_input(source) as stream:
        report = verify_archive(stream, threads=threads, limits=limits, progress=progress)
    return ReadOutcome(report, progress, signature)


def check_signature(
    source: str | Path, key: str | Path | None, *, require: bool
) -> dict[str, str] | None:
    from snaparc.errors import SignatureError, UsageError

    if str(source) == "-":
        raise UsageError("signatures are checked on files: save the archive, then verify it")
    if key is None:
        raise UsageError("--require-signature needs --key PUB")
    from snaparc.airgap.minisign import verify_file

    sig_path = Path(str(source) + ".minisig")
    if not sig_path.exists():
        if require:
            raise SignatureError(f"no signature: {sig_path} does not exist")
        return None
    verified = verify_file(Path(source), Path(key), sig_path)
    return {"key_id": verified.key_id, "trusted_comment": verified.trusted_comment}


def unpack_path(
    source: str | Path,
    dest: Path,
    *,
    force: bool = False,
    threads: int | None = None,
    limits: Limits = DEFAULT_LIMITS,
    base: Path | None = None,
    read_only: bool = False,
    progress_factory: ProgressFactory = _no_progress,
) -> ReadOutcome:
    from snaparc.unpack import unpack_archive

    progress = progress_factory(_archive_size(source))
    with open_archive_input(source) as stream:
        result = unpack_archive(
            stream,
            dest,
            force=force,
            threads=threads,
            limits=limits,
            progress=progress,
            read_only=read_only,
        )
    return ReadOutcome(result.report, progress)
