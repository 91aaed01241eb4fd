"""push, pull, mirror_ls: the mirror commands of the public API.

A mirror is a directory, `file:///path` or `s3://bucket/prefix`
(spec/MIRROR.md). `s3` settings default to the AWS environment
(`snaparc.mirror.url.s3_settings`). `push` and `pull` also take an OCI
registry, `oci://HOST[:PORT]/REPO:TAG` (spec/OCI.md); `allow_http` lets them
speak plain http to a registry that is not a loopback address.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from snaparc.api.archive import ProgressFactory, _meter
from snaparc.api.args import check_jobs, check_limits, check_path, check_ref, check_threads
from snaparc.api.oms import TravellingBundle, local_bundles, mirror_bundles, publish_bundle
from snaparc.api.results import MirrorListed, Pulled, Pushed
from snaparc.errors import UsageError
from snaparc.format.limits import Limits
from snaparc.mirror.oci.url import is_oci_url
from snaparc.mirror.url import MirrorTarget, S3Settings
from snaparc.sources.archive import (
    Source,
    classify_source,
    mirror_target,
    mirror_url,
    oci_target,
    open_source,
    registry_client,
)


def _check_bool(value: object, option: str) -> bool:
    if not isinstance(value, bool):
        raise UsageError(f"{option} must be True or False; got {value!r}")
    return value


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
) -> Pushed:
    """Verify a local archive, upload the part objects the mirror lacks, then
    its record, then (last) point `ref` at it. `url` may end with `:REF`
    (for `oci://`, `:TAG`; `ref` is then the tag; `mount_from` names another
    repository of the same registry to mount blobs from)."""
    from snaparc.mirror.push import push_archive
    from snaparc.mirror.store import open_store

    source = classify_source(archive)
    if not source.is_local:
        raise UsageError(f"push takes an archive file (or split volumes), not {source}")
    allow_http = _check_bool(allow_http, "--allow-http")
    if isinstance(url, str) and is_oci_url(url):
        return _push_oci(source, url, ref, jobs, threads, limits, allow_http, mount_from, progress)
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
    assert source.path is not None
    bundles = local_bundles(source.path, limits)
    if bundles:  # a bundle that does not fit the archive is never pushed
        from snaparc.archive.listing import read_listing

        with open_source(source) as opened:
            manifest = read_listing(opened, limits=limits).manifest
        for bundle in bundles:
            bundle.check(manifest)
    with open_source(source) as opened:
        store = open_store(target.url, settings=s3, create=True)
        meter = _meter(progress, opened.size)
        advance: Callable[[int], None] | None = meter.advance if meter is not None else None
        report = push_archive(
            opened,
            store,
            ref=ref,
            jobs=jobs,
            threads=threads,
            limits=limits,
            progress=advance,
            signatures={b.kind: b.data for b in bundles},
        )
    return Pushed(report, str(target.url), tuple(b.kind for b in bundles))


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
) -> Pushed:
    from snaparc.mirror.oci.push import push_oci
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
    with open_source(source) as opened:
        meter = _meter(progress, opened.size)
        advance: Callable[[int], None] | None = meter.advance if meter is not None else None
        report = push_oci(
            opened,
            registry_client(target, allow_http),
            tag=tag,
            jobs=jobs,
            threads=threads,
            limits=limits,
            progress=advance,
            mount_from=mount_from,
        )
    return Pushed(report, target.repository_url)


def pull(
    target: str,
    output: str | os.PathLike[str],
    *,
    force: bool = False,
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
    (`OUTPUT.oms.json`, `OUTPUT.hub.oms.json`)."""
    from snaparc.mirror.pull import pull_archive, resolve_archive_id
    from snaparc.mirror.store import open_store

    if not isinstance(target, str) or not target:
        raise UsageError("URL:REF|URL@ID is empty: name a mirror and an archive")
    if is_oci_url(target):
        oci = oci_target(target, option="URL:REF|URL@ID")
        out = check_path(output, option="-o/--output")
        jobs = check_jobs(jobs)
        threads = check_threads(threads)
        limits = check_limits(limits)
        allow_http = _check_bool(allow_http, "--allow-http")
        from snaparc.mirror.oci.pull import pull_oci

        return Pulled(
            pull_oci(
                oci,
                out,
                client=registry_client(oci, allow_http),
                jobs=jobs,
                threads=threads,
                limits=limits,
                force=force,
                progress=_meter(progress, None),
            )
        )
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


def mirror_ls(url: str, *, s3: S3Settings | None = None) -> MirrorListed:
    """The refs and archive ids of a mirror."""
    from snaparc.mirror.pull import list_mirror
    from snaparc.mirror.store import open_store

    if isinstance(url, str) and is_oci_url(url):
        raise UsageError(f"URL: mirror ls does not list OCI registries yet ({url!r})")
    target = mirror_url(url)
    return MirrorListed(list_mirror(open_store(target.url, settings=s3)))
