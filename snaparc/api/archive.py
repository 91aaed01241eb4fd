"""pack, verify, ls, cat, unpack: the archive commands of the public API.

Each function checks every argument first (`snaparc.api.args`), classifies
what it reads (`snaparc.sources`), then does the work through the layers
below and returns a `Result`. None prints.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO, TypeVar, cast

from snaparc.api.args import (
    check_codec,
    check_flag,
    check_level,
    check_limits,
    check_oms_ignore,
    check_path,
    check_split,
    check_threads,
)
from snaparc.api.results import Catted, Listed, Packed, Unpacked, Verified
from snaparc.archive.input import ArchiveInput, OpenBase, TransferCounts
from snaparc.errors import SnaparcError, SourceError, UsageError
from snaparc.format.limits import Limits
from snaparc.format.manifest import MetadataValue
from snaparc.mirror.resume import ResumeAt
from snaparc.mirror.url import S3Settings
from snaparc.progress import Progress
from snaparc.sources.archive import Source, classify_source, open_source

T = TypeVar("T")

# Called once with the number of bytes the command will read or write (None
# when unknown: a pipe); may return a Progress meter, which the caller closes.
ProgressFactory = Callable[[int | None], Progress | None]


def _meter(progress: ProgressFactory | None, total: int | None) -> Progress | None:
    return progress(total) if progress is not None else None


def base_opener(
    base: Source | None, *, s3: S3Settings | None = None, allow_http: bool = False
) -> OpenBase | None:
    """How a thin archive's base is opened, if one was given (only when needed)."""
    if base is None:
        return None
    return lambda: open_source(base, s3=s3, allow_http=allow_http)


def classify_base(base: str | os.PathLike[str] | None) -> Source | None:
    return None if base is None else classify_source(base, option="--base")


@dataclass(frozen=True, slots=True)
class Reading:
    """The checked arguments every command that reads an archive shares.

    `check` validates them all (nothing is opened); `open` opens the source
    once, with a progress meter sized to it (showing, for a mirror, the bytes
    fetched, skipped and retried); `open_base` is how a thin archive's base
    is opened, only if blobs are needed from it. `resume_in` makes a mirror
    or OCI read resumable (spec/MIRROR.md, section 12; spec/OCI.md, section 5).
    """

    source: Source
    threads: int
    limits: Limits
    base: Source | None = None
    s3: S3Settings | None = None
    resume: ResumeAt | None = None
    allow_http: bool = False  # plain http to an oci:// registry that is not loopback

    @classmethod
    def check(
        cls,
        archive: str | os.PathLike[str],
        *,
        threads: int = 0,
        limits: Limits | None = None,
        base: str | os.PathLike[str] | None = None,
        s3: S3Settings | None = None,
        allow_http: bool = False,
    ) -> Reading:
        return cls(
            classify_source(archive),
            check_threads(threads),
            check_limits(limits),
            classify_base(base),
            s3,
            allow_http=check_flag(allow_http, "--allow-http"),
        )

    def resume_in(self, directory: Path, *, resume: bool = True) -> Reading:
        """Keep a mirror source's parts in `directory` (beside the output), where
        a killed run of the same archive left its own (taken over unless not
        `resume`: `--no-resume`); the same for an `oci://` source. Nothing
        changes for other sources."""
        if self.source.kind not in ("mirror", "oci"):
            return self
        return replace(self, resume=ResumeAt.keyed(directory, adopt=bool(resume)))

    @contextmanager
    def open(
        self, progress: ProgressFactory | None = None
    ) -> Iterator[tuple[ArchiveInput, Progress | None]]:
        with open_source(
            self.source, s3=self.s3, allow_http=self.allow_http, resume=self.resume
        ) as opened:
            meter = _meter(progress, opened.size)
            counts = opened.transfer
            if meter is not None and counts is not None:
                meter.detail = lambda: counts().describe()
            yield opened, meter

    def open_base(self) -> OpenBase | None:
        return base_opener(self.base, s3=self.s3, allow_http=self.allow_http)

    def publish_with(
        self, write: Callable[..., T], progress: ProgressFactory | None, /, *args: Any, **kw: Any
    ) -> tuple[T, TransferCounts | None]:
        """Open the source and hand it to `write(opened, *args, threads=, limits=,
        progress=, base=, **kw)`: the commands that publish a tree (unpack,
        materialize, materialize_cache) all read this way. Returns what
        `write` returned and, for a mirror, what was fetched, skipped and
        retried."""
        with self.open(progress) as (opened, meter):
            result = write(
                opened,
                *args,
                threads=self.threads,
                limits=self.limits,
                progress=meter,
                base=self.open_base(),
                **kw,
            )
            return result, None if opened.transfer is None else opened.transfer()


# --- pack ------------------------------------------------------------------------


def pack(
    src: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    level: int | None = None,
    codec: str | None = "none",
    threads: int = 0,
    force: bool = False,
    allow_undeclared: bool = False,
    allow_base_weights: bool = False,
    split: int | str | None = None,
    sums: bool = False,
    base: str | os.PathLike[str] | None = None,
    metadata: dict[str, MetadataValue] | None = None,
    s3: S3Settings | None = None,
    allow_http: bool = False,
    progress: ProgressFactory | None = None,
    stdout: BinaryIO | None = None,
) -> Packed:
    """Pack directory `src` into `output` (atomically), or to stdout for "-".

    `split` writes volumes of that size (`700M`, `fat32`, or bytes) plus an
    index; `sums` writes `OUT.sha256` and `OUT.b3`; `base` (a file, split
    volumes or a mirror target) makes a thin archive holding only the blobs
    the base lacks. `codec="bytegroup"` stores the float tensors of every
    safetensors file of a snapshot export as byte planes (format 1.2; smaller,
    same content); "none" writes exactly what earlier versions write. `level`
    defaults to 3, and to 1 with a codec (the planes compress best there).
    `threads=0` uses every core. The safetensors files of a
    snapshot export must pass the strict profile and hold adapter tensors
    only (`allow_base_weights` lifts the second rule).
    """
    from snaparc.archive.pack import (
        check_tensors,
        default_level,
        hash_tree,
        plan_pack,
        write_archive,
    )
    from snaparc.archive.source_tree import scan_tree
    from snaparc.publish import AtomicFile, check_target, os_error

    src_path = check_path(src, option="SRC_DIR")
    to_stdout = os.fspath(output) == "-"
    out = None if to_stdout else check_path(output, option="-o/--output")
    coding = check_codec(codec)
    level = check_level(default_level(coding) if level is None else level)
    threads = check_threads(threads)
    volume_size = check_split(split)
    allow_http = check_flag(allow_http, "--allow-http")
    if to_stdout and (volume_size or sums):
        raise UsageError("--split and --sums need an output file (-o FILE), not stdout")
    base_source = classify_base(base)
    if out is not None and volume_size is None:
        check_target(out, force=force, kind="file")  # fail before hashing anything
    elif out is not None:
        _check_split_target(out, force=force)

    tree = scan_tree(src_path)
    hashes = hash_tree(tree, threads=threads)
    meta = snapshot_metadata(
        src_path,
        [f.rel for f in tree.files],
        allow_undeclared=allow_undeclared,
        digests={f.rel: d.sha256 for f, d in zip(tree.files, hashes.digests, strict=True)},
    )
    meta.update(metadata or {})
    tensors = check_tensors(tree, hashes, meta)
    if tensors and not allow_base_weights:
        from snaparc.hf.export.adapter_tensors import refuse_base_weights

        names = {rel: [t.name for t in header.tensors] for rel, header in tensors.items()}
        refuse_base_weights(src_path, names)
    base_blobs: frozenset[str] = frozenset()
    base_id = None
    if base_source is not None:
        from snaparc.archive.listing import read_listing

        with open_source(base_source, s3=s3, allow_http=allow_http) as opened:
            listing = read_listing(opened)
        base_blobs = frozenset(b.sha256 for b in listing.manifest.stored_blobs)
        base_id = listing.archive_id
    plan = plan_pack(
        src_path,
        threads=threads,
        metadata=meta,
        tree=tree,
        hashes=hashes,
        tensors=tensors,
        base_blobs=base_blobs,
        base_id=base_id,
        codec=coding,
    )
    meter = _meter(progress, plan.layout.tar_size)
    if out is None:
        sink = stdout if stdout is not None else sys.stdout.buffer
        written = write_archive(plan, sink, level=level, threads=threads, progress=meter)
        sink.flush()
        return Packed(written, "-")
    try:
        if volume_size is not None:
            from snaparc.airgap.volumes import SplitWriter

            with SplitWriter(out, volume_size, replace=force) as writer:
                written = write_archive(
                    plan, cast(BinaryIO, writer), level=level, threads=threads, progress=meter
                )
        else:
            with AtomicFile(out, force=force) as af:
                written = write_archive(plan, af.file, level=level, threads=threads, progress=meter)
    except SnaparcError:
        raise
    except OSError as exc:
        raise os_error(exc, f"writing {out}") from None
    sums_written: tuple[Path, ...] = ()
    if sums:
        from snaparc.airgap.sums import write_sums

        sums_written = tuple(write_sums(out))
    return Packed(written, str(out), sums_written)


def _check_split_target(out: Path, *, force: bool) -> None:
    from snaparc.airgap.volumes import index_path_for, volume_name
    from snaparc.publish import check_target

    check_target(index_path_for(out), force=force, kind="file")
    check_target(out.with_name(volume_name(out.name, 1)), force=force, kind="file")


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
    from snaparc.hf.export.tree import inspect_snapshot_tree

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


# --- verify, ls, cat ----------------------------------------------------------------


def verify(
    archive: str | os.PathLike[str],
    *,
    threads: int = 0,
    limits: Limits | None = None,
    key: str | os.PathLike[str] | None = None,
    require_signature: bool = False,
    oms_signature: str | os.PathLike[str] | None = None,
    public_key: str | os.PathLike[str] | None = None,
    oms_ignore: Iterable[str] = (),
    oms_ignore_git_paths: bool = True,
    s3: S3Settings | None = None,
    allow_http: bool = False,
    progress: ProgressFactory | None = None,
) -> Verified:
    """Check every byte of an archive (a file, `-`, split volumes or a mirror
    target) against both digests, and its signature with `key`. Writes nothing.

    `oms_signature` (with `public_key`, a PEM EC public key) is an OpenSSF
    model signing bundle, e.g. from `model_signing sign key` over the snapshot
    directory: its signature is checked first, then its file list and digests
    against the verified manifest (exit 11 naming the files that differ);
    `oms_ignore` and `oms_ignore_git_paths` are model_signing's ignore options.
    """
    from snaparc.archive.reader import read_archive

    r = Reading.check(archive, threads=threads, limits=limits, s3=s3, allow_http=allow_http)
    key_path = None if key is None else check_path(key, option="--key")
    oms_path = (
        None if oms_signature is None else check_path(oms_signature, option="--oms-signature")
    )
    pub_path = None if public_key is None else check_path(public_key, option="--public-key")
    if (oms_path is None) != (pub_path is None):
        raise UsageError("--oms-signature and --public-key go together")
    ignore = check_oms_ignore(oms_ignore)
    if ignore and oms_path is None:
        raise UsageError("--oms-ignore needs --oms-signature")
    if require_signature and key_path is None:
        raise UsageError("--require-signature needs --key PUB")
    if key_path is not None and not r.source.is_local:
        raise UsageError(
            "signatures are checked on files: save the archive (or pull it), then verify it"
        )
    signature = None
    if key_path is not None:
        signature = check_signature(r.source, key_path)
    statement = None
    if oms_path is not None and pub_path is not None:
        from snaparc.airgap.oms.sign import open_statement, read_bundle

        # The bundle's signature is checked before the archive is read.
        statement = open_statement(
            read_bundle(oms_path), pub_path, max_resources=r.limits.max_files
        )
    with r.open(progress) as (opened, meter):
        report = read_archive(opened, None, threads=r.threads, limits=r.limits, progress=meter)
    oms = None
    if statement is not None:
        from snaparc.airgap.oms.sign import check_statement
        from snaparc.airgap.oms.tree import manifest_tree

        checked = check_statement(
            statement[0],
            manifest_tree(report.manifest),
            hint=statement[1],
            ignore=ignore,
            ignore_git_paths=bool(oms_ignore_git_paths),
        )
        oms = {
            "bundle": str(oms_path),
            "model_name": checked.model_name,
            "subject_digest": checked.subject_digest,
            "hash_type": checked.hash_type,
            "files": checked.files,
            "key_hint": checked.key_hint,
        }
    return Verified(report, signature, oms)


def check_signature(source: Source, key: Path) -> dict[str, str]:
    """Verify the minisign signature beside a local archive (or its split index)."""
    from snaparc.airgap import signature_target
    from snaparc.airgap.minisign import verify_file

    assert source.path is not None
    verified = verify_file(signature_target(source.path), key)
    return {"key_id": verified.key_id, "trusted_comment": verified.trusted_comment}


def ls(
    archive: str | os.PathLike[str],
    *,
    limits: Limits | None = None,
    s3: S3Settings | None = None,
    allow_http: bool = False,
) -> Listed:
    """The archive id, files and metadata, from the archive's head only."""
    from snaparc.archive.listing import read_listing

    r = Reading.check(archive, limits=limits, s3=s3, allow_http=allow_http)
    with r.open() as (opened, _):
        return Listed(read_listing(opened, limits=r.limits))


def cat(
    archive: str | os.PathLike[str],
    path: str,
    out: BinaryIO,
    *,
    threads: int = 0,
    limits: Limits | None = None,
    s3: S3Settings | None = None,
    allow_http: bool = False,
    tensor: str | None = None,
) -> Catted:
    """Write one file's bytes to `out`, after both digests of them matched; with
    `tensor`, only that tensor's bytes (its range from the tensor index)."""
    from snaparc.archive.catfile import cat_file

    r = Reading.check(archive, threads=threads, limits=limits, s3=s3, allow_http=allow_http)
    if not isinstance(path, str) or not path:
        raise UsageError("PATH is empty: name a file inside the archive (`snaparc ls` lists them)")
    if tensor is not None and (not isinstance(tensor, str) or not tensor):
        raise UsageError(
            "--tensor is empty: name a tensor of the file (`snaparc ls --tensors` lists them)"
        )
    with r.open() as (opened, _):
        entry, found = cat_file(
            opened, path, out, limits=r.limits, threads=r.threads, tensor=tensor
        )
    if found is None:
        return Catted(entry.path, entry.size, entry.blob)
    return Catted(entry.path, found.end - found.begin, entry.blob, found.name)


# --- unpack ---------------------------------------------------------------------------


def unpack(
    archive: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    force: bool = False,
    threads: int = 0,
    limits: Limits | None = None,
    base: str | os.PathLike[str] | None = None,
    s3: S3Settings | None = None,
    resume: bool = True,
    allow_http: bool = False,
    progress: ProgressFactory | None = None,
) -> Unpacked:
    """Verify an archive and publish its tree at `dest`, complete or not at all.

    From a mirror, an unpack of the same archive beside `dest` that was
    killed is resumed: the parts it had fetched are not fetched again
    (`resume=False`: start afresh; spec/MIRROR.md, section 12)."""
    from snaparc.archive.unpack import unpack_archive

    r = Reading.check(
        archive, threads=threads, limits=limits, base=base, s3=s3, allow_http=allow_http
    )
    target = check_path(dest, option="-C/--directory")
    r = r.resume_in(Path(os.path.abspath(target)).parent, resume=resume)
    result, transfer = r.publish_with(unpack_archive, progress, target, force=force)
    return Unpacked(result.target, result.report, transfer)
