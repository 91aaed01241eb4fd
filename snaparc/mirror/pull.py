"""Read archives back from a mirror.

- `resolve_archive_id` turns `URL:REF` / `URL@ID` into an archive id.
- `load_record` fetches and checks an archive record.
- `MirrorArchiveStream` (`snaparc.mirror.fetch`) yields the rebuilt
  `.dlmsnap` bytes in order, fetched in bounded ranges with at most `jobs`
  in flight; every part is checked against its size and the sha256 its key
  names, the whole stream against the record's file size and sha256. A bad
  part raises `MirrorDigestError` (exit 1) naming the blob and the object.
- `open_mirror_input(target)` opens such a stream as an `ArchiveInput`
  that carries the archive id the target names, for any reader (every
  reader checks that id against the manifest it rebuilds).
- `pull_archive` streams the rebuilt bytes through `read_archive` (the one
  verified reader: both digests of every blob, frames, seek table) into a
  temp file and publishes it by rename only when everything checked out.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import BinaryIO, cast

from snaparc.archive.input import ArchiveInput, TransferCounts
from snaparc.errors import IntegrityError, RemoteNotFoundError, SignatureError, UsageError
from snaparc.format.limits import DEFAULT_LIMITS, Limits
from snaparc.mirror.connect import open_store
from snaparc.mirror.fetch import MirrorArchiveStream, MirrorDigestError, MirrorPartMissingError
from snaparc.mirror.layout import (
    MAX_SIGNATURE_BYTES,
    SIGNATURE_KINDS,
    ArchiveRecord,
    decode_record,
    decode_ref,
    record_key,
    ref_key,
    signature_key,
)
from snaparc.mirror.resume import ResumeAt, open_resume_file
from snaparc.mirror.store import (
    ObjectNotFoundError,
    RetryingStore,
    Store,
)
from snaparc.mirror.url import ARCHIVE_ID, REF_NAME, MirrorTarget, S3Settings, parse_target
from snaparc.progress import Progress

__all__ = [
    "ArchiveNotFoundError",
    "ArchiveRemovedError",
    "MirrorArchiveStream",
    "MirrorDigestError",
    "MirrorListing",
    "MirrorPartMissingError",
    "PullReport",
    "RefNotFoundError",
    "list_mirror",
    "load_record",
    "open_mirror_input",
    "publish_pull",
    "pull_archive",
    "resolve_archive_id",
]


class RefNotFoundError(RemoteNotFoundError):
    """The named ref is not in the mirror."""


class ArchiveNotFoundError(RemoteNotFoundError):
    """No archive record for this id in the mirror."""


class ArchiveRemovedError(ArchiveNotFoundError):
    """The archive was removed (and its parts collected) while it was being read."""


def resolve_archive_id(store: Store, target: MirrorTarget) -> str:
    if target.archive_id is not None:
        return target.archive_id
    if target.ref is None:
        raise UsageError(
            f"{target.url}: name a ref (URL:REF) or an archive id (URL@ID); "
            "`snaparc mirror ls URL` lists them"
        )
    key = ref_key(target.ref)
    try:
        data = store.get(key)
    except ObjectNotFoundError:
        raise RefNotFoundError(
            f"ref {target.ref!r} not found in mirror {target.url} ({store.describe(key)})"
        ) from None
    return decode_ref(data, name=target.ref)


def load_record(store: Store, archive_id: str) -> ArchiveRecord:
    key = record_key(archive_id)
    try:
        data = store.get(key)
    except ObjectNotFoundError:
        raise ArchiveNotFoundError(
            f"archive {archive_id} not found in the mirror ({store.describe(key)})"
        ) from None
    return decode_record(data, archive_id=archive_id)


@contextmanager
def open_mirror_input(
    target: MirrorTarget,
    *,
    store: Store | None = None,
    settings: S3Settings | None = None,
    jobs: int = 4,
    resume: ResumeAt | None = None,
) -> Iterator[ArchiveInput]:
    """The archive `target` names (`URL:REF` or `URL@ID`), rebuilt from the mirror.

    `resume`: where the resume file of a killed run is found and this run's
    is kept (`snaparc.mirror.resume`); its matching parts are read instead
    of fetched (`MirrorArchiveStream`). It is removed when the block ends.

    Parts are fetched in bounded ranges, `jobs` at a time, and checked
    against their size and sha256. The input carries the archive id the target names
    (`expected_id`), which every reader checks against the manifest it
    rebuilds; the stream alone does not check blob digests: read it with the
    verified reader. `settings` defaults to the AWS environment.
    """
    store = store or open_store(target.url, settings=settings)
    aid = resolve_archive_id(store, target)
    record = load_record(store, aid)
    with ExitStack() as stack:
        kept = None
        if resume is not None:
            kept = stack.enter_context(open_resume_file(resume, record))
        raw = MirrorArchiveStream(
            store,
            record,
            jobs=jobs,
            cache=None if kept is None else kept.fd,
            keep=None if kept is None else kept.kept,
        )
        stream = stack.enter_context(io.BufferedReader(raw, buffer_size=1 << 20))
        try:
            yield ArchiveInput(
                cast(BinaryIO, stream),
                str(target),
                record.file_size,
                False,
                expected_id=aid,
                transfer=partial(_counts, store, raw),
            )
        except MirrorPartMissingError:
            # A part missing because its record was removed (and gc took the
            # parts) while we read is a mirror-not-found failure (exit 10), for
            # every reading command alike; while the record is there, damage (1).
            if store.head(record_key(aid)) is None:
                raise ArchiveRemovedError(
                    f"{target}: archive {aid} was removed from the mirror while it was read "
                    "(nothing was written)"
                ) from None
            raise


@dataclass(frozen=True, slots=True)
class PullReport:
    archive_id: str
    output: Path
    bytes_received: int  # the archive's size
    blobs_verified: int
    bytes_fetched: int = 0  # payload bytes the store returned, retried requests included
    retries: int = 0
    bytes_skipped: int = 0  # read from a killed pull's temp file instead (resume)


def _counts(store: Store, stream: MirrorArchiveStream) -> TransferCounts:
    stats = store.stats if isinstance(store, RetryingStore) else None
    if stats is None:  # a bare store (tests): what was not skipped was fetched
        return TransferCounts(stream.fetched, stream.skipped, 0)
    return TransferCounts(stats.bytes_received, stream.skipped, stats.retries)


def pull_archive(
    target: str | MirrorTarget,
    output: Path,
    *,
    store: Store | None = None,
    settings: S3Settings | None = None,
    jobs: int = 4,
    threads: int | None = None,
    limits: Limits = DEFAULT_LIMITS,
    force: bool = False,
    resume: bool = True,
    progress: Progress | None = None,
) -> PullReport:
    """Rebuild the archive at `output`, byte-identical to the one pushed.

    Nothing carries the name `output` unless every check passed, the
    archive's identity included. With `resume`, the temp file a killed pull
    of the same `output` left behind is taken over (`snaparc.mirror.resume`:
    the output temp file is the resume file) and its parts that still match
    the record are read from it instead of fetched; it is removed when this
    pull ends, whatever the outcome.
    """
    if isinstance(target, str):
        target = parse_target(target)
    store = store or open_store(target.url, settings=settings)
    mirror = target

    def opener(at: ResumeAt) -> AbstractContextManager[ArchiveInput]:
        return open_mirror_input(mirror, store=store, jobs=jobs, resume=at)

    return publish_pull(
        opener, Path(output), threads=threads, limits=limits, force=force, resume=resume,
        progress=progress,
    )  # fmt: skip


def publish_pull(
    open_input: Callable[[ResumeAt], AbstractContextManager[ArchiveInput]],
    output: Path,
    *,
    threads: int | None,
    limits: Limits,
    force: bool,
    resume: bool,
    progress: Progress | None,
) -> PullReport:
    """The one pull of every remote source (a mirror, an OCI registry): the
    input `open_input` opens, resumable from the temp file of `output` (the
    output temp file is the resume file), copied while the verified reader
    checks it, published at `output` only if every check passed."""
    from snaparc.archive.copy import copy_verified
    from snaparc.publish import AtomicFile, check_target

    if resume:
        check_target(output, force=force, kind="file")  # before taking anything over
    at = ResumeAt(Path(os.path.abspath(output.parent)), output.name, keep=False, adopt=resume)
    with open_input(at) as source, AtomicFile(output, force=force) as out:
        counts = source.transfer
        assert counts is not None
        if progress is not None:
            progress.detail = lambda: counts().describe()
        report, copied = copy_verified(
            source, out.file, threads=threads, limits=limits, progress=progress
        )
        done = counts()
    return PullReport(
        report.archive_id,
        output,
        copied,
        report.blobs_verified,
        bytes_fetched=done.fetched,
        retries=done.retries,
        bytes_skipped=done.skipped,
    )


@dataclass(slots=True)
class MirrorListing:
    refs: dict[str, str] = field(default_factory=dict)  # name -> archive id
    archives: dict[str, int] = field(default_factory=dict)  # archive id -> record size
    bad_refs: list[str] = field(default_factory=list)


def fetch_signatures(store: Store, archive_id: str) -> dict[str, bytes]:
    """The signatures travelling with `archive_id` in the mirror (kind -> bytes);
    unchecked: they are the caller's to check. One over MAX_SIGNATURE_BYTES
    is refused (exit 11) before it is fetched."""
    out: dict[str, bytes] = {}
    for kind in SIGNATURE_KINDS:
        key = signature_key(archive_id, kind)
        info = store.head(key)
        if info is None:
            continue
        if info.size > MAX_SIGNATURE_BYTES:
            raise SignatureError(
                f"mirror object {store.describe(key)} holds {info.size} bytes, more than a "
                f"signature may ({MAX_SIGNATURE_BYTES})"
            )
        data = store.get(key)
        if len(data) > MAX_SIGNATURE_BYTES:
            raise SignatureError(f"mirror object {store.describe(key)} grew past the limit")
        out[kind] = data
    return out


def list_mirror(store: Store) -> MirrorListing:
    """Refs and archive ids; a ref whose content is not an id is listed as bad."""
    out = MirrorListing()
    for info in store.list("archives"):
        name = info.key.removeprefix("archives/")
        if name.endswith(".json") and ARCHIVE_ID.match(name[:-5]):
            out.archives[name[:-5]] = info.size
    for info in sorted(store.list("refs"), key=lambda i: i.key):
        name = info.key.removeprefix("refs/")
        if not REF_NAME.match(name):
            continue
        try:
            out.refs[name] = decode_ref(store.get(info.key), name=name)
        except (IntegrityError, ObjectNotFoundError):
            out.bad_refs.append(name)
    return out
