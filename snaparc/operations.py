"""The typed Python API behind the CLI: one function per command.

Each function takes paths (or "-" for stdin/stdout), does the work through
the format and reader layers, and returns a result object; none prints.
`progress_factory(total_bytes)` may return a `Progress` (or None).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

from snaparc.errors import SnaparcError, SourceError, UsageError
from snaparc.format.limits import DEFAULT_LIMITS, Limits
from snaparc.format.manifest import MetadataValue
from snaparc.inputs import archive_size, open_archive_input
from snaparc.listing import read_listing
from snaparc.pack import PackResult, hash_tree, plan_pack, write_archive
from snaparc.progress import Progress
from snaparc.publish import AtomicFile, check_target, os_error
from snaparc.reader import ReadReport
from snaparc.source_tree import scan_tree

ProgressFactory = Callable[[int], Any]


def _no_progress(total: int) -> None:
    return None


@dataclass(frozen=True, slots=True)
class PackOutcome:
    pack: PackResult
    output: Path | None
    progress: Progress | None


def snapshot_metadata(
    src: Path,
    files: list[str],
    *,
    allow_undeclared: bool,
    digests: dict[str, str] | None = None,
) -> dict[str, MetadataValue]:
    """Metadata for a snapshot export; refuses undeclared files unless allowed.

    `digests` (path -> sha256, from the packer's own hashing pass) saves
    hashing every artifact a second time.
    """
    from snaparc.hf.snapshot import inspect_snapshot_tree

    info = inspect_snapshot_tree(src, files, digests=digests)
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
    split: int | None = None,
    sums: bool = False,
    base: Path | str | None = None,
) -> PackOutcome:
    """Pack `src` into `out` (atomically), or to stdout when `out` is None.

    `split` writes volumes of that many bytes plus an index; `sums` writes
    `OUT.sha256` and `OUT.b3` for the stock tools; `base` makes a thin
    archive that stores only the blobs the base archive lacks.
    """
    if out is None and (split or sums):
        raise UsageError("--split and --sums need an output file, not stdout")
    if out is not None and not split:
        check_target(out, force=force, kind="file")  # fail before hashing anything
    tree = scan_tree(src)
    digests = hash_tree(tree, threads=threads)
    meta = snapshot_metadata(
        src,
        [f.rel for f in tree.files],
        allow_undeclared=allow_undeclared,
        digests={f.rel: d.sha256 for f, d in zip(tree.files, digests, strict=True)},
    )
    meta.update(metadata or {})
    base_blobs: frozenset[str] = frozenset()
    base_id = None
    if base is not None:
        with open_archive_input(base) as f:
            listing = read_listing(f)
        base_blobs = frozenset(b.sha256 for b in listing.manifest.stored_blobs)
        base_id = listing.archive_id
    plan = plan_pack(
        src,
        threads=threads,
        metadata=meta,
        tree=tree,
        digests=digests,
        base_blobs=base_blobs,
        base_id=base_id,
    )
    progress: Progress | None = progress_factory(plan.layout.tar_size)
    if out is None:
        sink = stdout if stdout is not None else sys.stdout.buffer
        result = write_archive(plan, sink, level=level, threads=threads, progress=progress)
        sink.flush()
        return PackOutcome(result, None, progress)
    try:
        if split:
            from snaparc.airgap.volumes import SplitWriter

            if force:
                _remove_split_set(out)
            with SplitWriter(out, split) as writer:
                result = write_archive(
                    plan, cast(BinaryIO, writer), level=level, threads=threads, progress=progress
                )
        else:
            with AtomicFile(out, force=force) as af:
                result = write_archive(
                    plan, af.file, level=level, threads=threads, progress=progress
                )
    except SnaparcError:
        raise
    except OSError as exc:
        raise os_error(exc, f"writing {out}") from None
    if sums:
        from snaparc.airgap.sums import write_sums

        write_sums(out)
    return PackOutcome(result, out, progress)


def _remove_split_set(out: Path) -> None:
    from snaparc.airgap.volumes import read_index, split_index_path

    index = split_index_path(out)
    if index is None or not index.exists():
        return
    for path in read_index(index).paths():
        path.unlink(missing_ok=True)
    index.unlink()


@dataclass(frozen=True, slots=True)
class ReadOutcome:
    report: ReadReport
    progress: Progress | None
    signature: dict[str, str] | None = None


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
    progress = progress_factory(archive_size(source))
    with open_archive_input(source) as stream:
        report = verify_archive(stream, threads=threads, limits=limits, progress=progress)
    return ReadOutcome(report, progress, signature)


def check_signature(
    source: str | Path, key: str | Path | None, *, require: bool
) -> dict[str, str] | None:
    """Verify the minisign signature next to the archive (or its split index).

    With `key`, a signature must exist and verify; `require` without a key
    is a usage error (a signature is only meaningful against a trusted key).
    """
    if str(source) == "-":
        raise UsageError("signatures are checked on files: save the archive, then verify it")
    if key is None:
        if require:
            raise UsageError("--require-signature needs --key PUB")
        return None
    from snaparc.airgap import signature_target
    from snaparc.airgap.minisign import verify_file

    verified = verify_file(signature_target(source), key)
    return {"key_id": verified.key_id, "trusted_comment": verified.trusted_comment}


def unpack_path(
    source: str | Path,
    dest: Path,
    *,
    force: bool = False,
    threads: int | None = None,
    limits: Limits = DEFAULT_LIMITS,
    base: Path | str | None = None,
    read_only: bool = False,
    progress_factory: ProgressFactory = _no_progress,
) -> ReadOutcome:
    from snaparc.unpack import unpack_archive

    progress = progress_factory(archive_size(source))
    with open_archive_input(source) as stream:
        result = unpack_archive(
            stream,
            dest,
            force=force,
            threads=threads,
            limits=limits,
            progress=progress,
            read_only=read_only,
            base=base,
        )
    return ReadOutcome(result.report, progress)
