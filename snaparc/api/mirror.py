"""push, pull, mirror_ls, mirror_rm, mirror_gc, mirror_check: the mirror
commands of the public API.

A mirror is a directory, `file:///path` or `s3://bucket/prefix`
(spec/MIRROR.md). `s3` settings default to the AWS environment
(`snaparc.mirror.url.s3_settings`). `push` and `pull` also take an OCI
registry, `oci://HOST[:PORT]/REPO:TAG` (spec/OCI.md); `allow_http` lets them
speak plain http to a registry that is not a loopback address.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from snaparc.api.archive import ProgressFactory, _meter
from snaparc.api.args import (
    check_flag,
    check_jobs,
    check_limits,
    check_path,
    check_ref,
    check_threads,
)
from snaparc.api.oms import (
    TravellingBundle,
    local_bundles,
    mirror_bundles,
    oci_bundles,
    publish_bundle,
)
from snaparc.api.results import (
    MirrorChecked,
    MirrorCollected,
    MirrorListed,
    MirrorRemoved,
    OCIListed,
    Pulled,
    Pushed,
)
from snaparc.errors import UsageError
from snaparc.format.limits import Limits
from snaparc.mirror.lock import DEFAULT_LEASE, MIN_LEASE, LockTiming
from snaparc.mirror.oci.url import is_oci_url
from snaparc.mirror.url import MirrorTarget, S3Settings
from snaparc.progress import Progress, human_bytes
from snaparc.sources.archive import (
    Source,
    classify_source,
    mirror_target,
    mirror_url,
    oci_target,
    open_source,
    registry_client,
)

if TYPE_CHECKING:
    from snaparc.mirror.retry import TransferStats


def push(
    archive: str | os.PathLike[str],
    url: str,
    *,
    ref: str | None = None,
    jobs: int = 4,
    threads: int = 0,
    limits: Limits | None = None,
    s3: S3Settings | None = None,
    allow_http: bool = False,
    mount_from: str | None = None,
    progress: ProgressFactory | None = None,
    lease: float = DEFAULT_LEASE,
) -> Pushed:
    """Verify a local archive, upload the part objects the mirror lacks, then
    its record, then (last) point `ref` at it. `url` may end with `:REF`
    (for `oci://`, `:TAG`; `ref` is then the tag; `mount_from` names another
    repository of the same registry to mount blobs from). Waits while a gc or
    `mirror_rm` of a record runs (`lease`: seconds of the push lock's lease,
    spec/MIRROR.md section 10)."""
    from snaparc.mirror.connect import open_store
    from snaparc.mirror.push import push_archive

    source = classify_source(archive)
    if not source.is_local:
        raise UsageError(f"push takes an archive file (or split volumes), not {source}")
    allow_http = check_flag(allow_http, "--allow-http")
    if isinstance(url, str) and is_oci_url(url):
        return _push_oci(
            source, url, ref, jobs, threads, limits, allow_http, mount_from, progress, s3
        )
    if mount_from is not None:
        raise UsageError("--mount-from is for oci:// registries only")
    target = mirror_url(url)
    if target.archive_id:
        raise UsageError(
            f"URL: {url!r} names an archive id (URL@ID is for pull); use URL, URL:REF or --ref NAME"
        )
    if ref is not None:
        ref = check_ref(ref)
    if target.ref and ref and target.ref != ref:
        raise UsageError(f"push: ref given twice ({target.ref!r} and --ref {ref!r})")
    ref = ref or target.ref
    jobs = check_jobs(jobs)
    threads = check_threads(threads)
    limits = check_limits(limits)
    timing = _timing(lease)
    bundles = _checked_bundles(source, limits)
    with open_source(source) as opened:
        store = open_store(target.url, settings=s3, create=True)
        meter = _meter(progress, opened.size)
        advance: Callable[[int], None] | None = meter.advance if meter is not None else None
        if meter is not None:
            meter.detail = partial(_sent, meter, store.stats)
        report = push_archive(
            opened,
            store,
            ref=ref,
            jobs=jobs,
            threads=threads,
            limits=limits,
            progress=advance,
            signatures={b.kind: b.data for b in bundles},
            lock_timing=timing,
        )
    return Pushed(report, str(target.url), tuple(b.kind for b in bundles))


def _checked_bundles(source: Source, limits: Limits) -> list[TravellingBundle]:
    """The signing bundles beside the archive that travel with a push (to a
    mirror or a registry), each checked against the archive's manifest: a
    bundle that does not fit it is never pushed."""
    assert source.path is not None
    bundles = local_bundles(source.path, limits)
    if bundles:
        from snaparc.archive.listing import read_listing

        with open_source(source) as opened:
            manifest = read_listing(opened, limits=limits).manifest
        for bundle in bundles:
            bundle.check(manifest)
    return bundles


def _push_oci(
    source: Source,
    url: str,
    ref: str | None,
    jobs: int,
    threads: int,
    limits: Limits | None,
    allow_http: bool,
    mount_from: str | None,
    progress: ProgressFactory | None,
    s3: S3Settings | None,
) -> Pushed:
    from snaparc.mirror.oci.push import chunk_size_from_env, push_oci
    from snaparc.mirror.oci.sessions import UploadSessions
    from snaparc.mirror.oci.url import check_repository, check_tag, parse_oci_target

    target = parse_oci_target(url, option="URL")
    if target.digest:
        raise UsageError(
            f"URL: {url!r} names a manifest digest (@sha256:... is for pull); "
            "use oci://HOST/REPO:TAG or --ref TAG"
        )
    if ref is not None:
        ref = check_tag(ref, option="--ref")
    if target.tag and ref and target.tag != ref:
        raise UsageError(f"push: tag given twice ({target.tag!r} and --ref {ref!r})")
    tag = ref or target.tag
    if mount_from is not None:
        mount_from = check_repository(mount_from, option="--mount-from")
    jobs = check_jobs(jobs)
    threads = check_threads(threads)
    limits = check_limits(limits)
    chunk_size = chunk_size_from_env()
    assert source.path is not None  # a local file: push takes no other source
    bundles = _checked_bundles(source, limits)
    with open_source(source) as opened:
        meter = _meter(progress, opened.size)
        advance: Callable[[int], None] | None = meter.advance if meter is not None else None
        report = push_oci(
            opened,
            registry_client(target, allow_http, s3.transfer if s3 else None),
            tag=tag,
            jobs=jobs,
            threads=threads,
            limits=limits,
            progress=advance,
            mount_from=mount_from,
            chunk_size=chunk_size,
            sessions=UploadSessions(source.path, target.netloc, target.repository),
            signatures={b.kind: b.data for b in bundles},
        )
    return Pushed(report, target.repository_url, tuple(b.kind for b in bundles))


def _sent(meter: Progress, stats: TransferStats) -> str:
    skipped = max(0, meter.done - stats.bytes_sent)
    return (
        f"sent {human_bytes(stats.bytes_sent)}, skipped {human_bytes(skipped)}, "
        f"{stats.retries} retried"
    )


def pull(
    target: str,
    output: str | os.PathLike[str],
    *,
    force: bool = False,
    resume: bool = True,
    jobs: int = 4,
    threads: int = 0,
    limits: Limits | None = None,
    s3: S3Settings | None = None,
    allow_http: bool = False,
    progress: ProgressFactory | None = None,
) -> Pulled:
    """Rebuild the archive `target` (`URL:REF` or `URL@ID`) as a byte-identical,
    verified file at `output`; nothing carries that name unless every check,
    the archive's identity included, passed. OMS bundles the mirror carries
    for it are checked against its manifest first and written beside it
    (`OUTPUT.oms.json`, `OUTPUT.hub.oms.json`). With `resume` (the default), a
    pull of the same `output` that was killed is resumed: the parts its temp
    file holds are not fetched again (spec/MIRROR.md, section 12)."""
    from snaparc.mirror.connect import open_store
    from snaparc.mirror.pull import pull_archive, resolve_archive_id

    if not isinstance(target, str) or not target:
        raise UsageError("URL:REF|URL@ID is empty: name a mirror and an archive")
    if is_oci_url(target):
        oci = oci_target(target, option="URL:REF|URL@ID")
        out = check_path(output, option="-o/--output")
        jobs = check_jobs(jobs)
        threads = check_threads(threads)
        limits = check_limits(limits)
        allow_http = check_flag(allow_http, "--allow-http")
        from snaparc.mirror.oci.pull import check_artifact, pull_oci

        client = registry_client(oci, allow_http, s3.transfer if s3 else None)
        art = check_artifact(client, oci, limits=limits)
        bundles = oci_bundles(client, art, limits)
        outs = _bundle_outputs(bundles, out, force=force)
        for bundle in bundles:
            bundle.check(art.manifest)
        at_digest = replace(oci, tag=None, digest=art.manifest_digest)  # the bundles' artifact
        report = pull_oci(
            at_digest,
            out,
            client=client,
            jobs=jobs,
            threads=threads,
            limits=limits,
            force=force,
            resume=bool(resume),
            progress=_meter(progress, None),
        )
        return Pulled(report, tuple(publish_bundle(b, outs[b.kind]) for b in bundles))
    where = mirror_target(target, option="URL:REF|URL@ID")
    out = check_path(output, option="-o/--output")
    jobs = check_jobs(jobs)
    threads = check_threads(threads)
    limits = check_limits(limits)
    store = open_store(where.url, settings=s3)
    aid = resolve_archive_id(store, where)
    pinned = MirrorTarget(where.url, archive_id=aid)  # the bundles are this archive's
    bundles = mirror_bundles(store, aid, limits)
    outs = _bundle_outputs(bundles, out, force=force)
    if bundles:
        from snaparc.archive.listing import read_listing
        from snaparc.mirror.pull import open_mirror_input

        with open_mirror_input(pinned, store=store, jobs=jobs) as opened:
            manifest = read_listing(opened, limits=limits).manifest
        for bundle in bundles:
            bundle.check(manifest)
    report = pull_archive(
        pinned,
        out,
        store=store,
        settings=s3,
        jobs=jobs,
        threads=threads,
        limits=limits,
        force=force,
        resume=bool(resume),
        progress=_meter(progress, None),
    )
    written = tuple(publish_bundle(b, outs[b.kind]) for b in bundles)
    return Pulled(report, written)


def _bundle_outputs(bundles: list[TravellingBundle], out: Path, *, force: bool) -> dict[str, Path]:
    from snaparc.airgap.oms import bundle_path_for
    from snaparc.publish import check_target

    outs = {}
    for bundle in bundles:
        path = bundle_path_for(os.path.abspath(out), hub=bundle.hub)
        check_target(path, force=force, kind="file")
        outs[bundle.kind] = path
    return outs


def mirror_ls(
    url: str, *, s3: S3Settings | None = None, allow_http: bool = False
) -> MirrorListed | OCIListed:
    """The refs and archive ids of a mirror; per archive its size and the bytes
    it shares with others; logical bytes (the archives) against stored bytes.
    For `oci://HOST/REPO` (`OCIListed`): every tag, its manifest digest and
    the archive id its artifact carries (`allow_http`: plain http to a
    registry that is not loopback)."""
    from snaparc.mirror.connect import open_store
    from snaparc.mirror.pull import list_mirror
    from snaparc.mirror.usage import mirror_usage

    allow_http = check_flag(allow_http, "--allow-http")
    if isinstance(url, str) and is_oci_url(url):
        from snaparc.mirror.oci.listing import list_oci
        from snaparc.mirror.oci.url import parse_oci_target

        oci = parse_oci_target(url, option="URL")
        if oci.reference is not None:
            raise UsageError(
                f"URL: {url!r} names an artifact; mirror ls takes the repository alone "
                "(oci://HOST/REPO)"
            )
        client = registry_client(oci, allow_http, s3.transfer if s3 else None)
        return OCIListed(list_oci(client))
    target = mirror_url(url)
    store = open_store(target.url, settings=s3)
    return MirrorListed(list_mirror(store), mirror_usage(store))


def mirror_rm(
    target: str,
    *,
    force: bool = False,
    s3: S3Settings | None = None,
    lease: float = DEFAULT_LEASE,
) -> MirrorRemoved:
    """Drop a ref (`URL:REF`) or an archive record (`URL@ID`). A record that refs
    still name is refused (`ArchiveInUseError`, naming them) unless `force`,
    which removes those refs too. Parts stay until `mirror_gc`."""
    from snaparc.mirror.connect import open_store
    from snaparc.mirror.remove import remove_archive, remove_ref

    if not isinstance(target, str) or not target:
        raise UsageError("URL:REF|URL@ID is empty: name a mirror and a ref or archive")
    where = mirror_target(target, option="URL:REF|URL@ID")
    if not isinstance(force, bool):
        raise UsageError(f"--force must be true or false; got {force!r}")
    timing = _timing(lease)
    store = open_store(where.url, settings=s3)
    if where.ref is not None:
        return MirrorRemoved(remove_ref(store, where.ref), str(where.url))
    assert where.archive_id is not None
    report = remove_archive(store, where.archive_id, force=force, lock_timing=timing)
    return MirrorRemoved(report, str(where.url))


def mirror_gc(
    url: str,
    *,
    dry_run: bool = False,
    s3: S3Settings | None = None,
    lease: float = DEFAULT_LEASE,
) -> MirrorCollected:
    """Delete every part no archive record reaches, safely beside pushes and
    pulls on other machines (spec/MIRROR.md section 10). `dry_run` lists what
    would go and changes nothing."""
    from snaparc.mirror.connect import open_store
    from snaparc.mirror.gc import collect_garbage

    where = _plain_url(url)
    timing = _timing(lease)
    store = open_store(where.url, settings=s3)
    return MirrorCollected(collect_garbage(store, dry_run=dry_run, lock_timing=timing), url)


def mirror_check(
    url: str,
    *,
    read_data: bool = False,
    jobs: int = 4,
    threads: int = 0,
    limits: Limits | None = None,
    s3: S3Settings | None = None,
    progress: ProgressFactory | None = None,
) -> MirrorChecked:
    """Check a mirror's structure (and, `read_data`, every byte). The result's
    `ok` is False, and `report.problems` names each damaged archive and
    object, when anything is damaged (the CLI then exits 1)."""
    from snaparc.mirror.check import check_mirror
    from snaparc.mirror.connect import open_store

    where = _plain_url(url)
    jobs = check_jobs(jobs)
    threads = check_threads(threads)
    limits = check_limits(limits)
    store = open_store(where.url, settings=s3)
    meter = _meter(progress, None) if read_data else None
    report = check_mirror(
        store,
        read_data=read_data,
        jobs=jobs,
        threads=threads,
        limits=limits,
        progress=meter.advance if meter is not None else None,
    )
    return MirrorChecked(report, url)


def _plain_url(url: str) -> MirrorTarget:
    target = mirror_url(url)
    if target.ref is not None or target.archive_id is not None:
        raise UsageError(
            f"URL: {url!r} names an archive; this command takes the mirror alone (URL)"
        )
    return target


def _timing(lease: float) -> LockTiming:
    ok = isinstance(lease, int | float) and not isinstance(lease, bool)
    if not ok or not MIN_LEASE <= lease <= 86_400:
        raise UsageError(
            f"lease must be a number of seconds from {MIN_LEASE} to 86400; got {lease!r}"
        )
    return LockTiming(lease=float(lease))
