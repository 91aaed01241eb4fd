"""push, pull, mirror_ls: the mirror commands of the public API.

A mirror is a directory, `file:///path` or `s3://bucket/prefix`
(spec/MIRROR.md). `s3` settings default to the AWS environment
(`snaparc.mirror.url.s3_settings`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from snaparc.api.archive import ProgressFactory, _meter
from snaparc.api.args import check_jobs, check_limits, check_path, check_ref, check_threads
from snaparc.api.results import MirrorListed, Pulled, Pushed
from snaparc.errors import UsageError
from snaparc.format.limits import Limits
from snaparc.mirror.url import S3Settings
from snaparc.progress import Progress, human_bytes

if TYPE_CHECKING:
    from snaparc.mirror.store import TransferStats
from snaparc.sources.archive import classify_source, mirror_target, mirror_url, open_source


def push(
    archive: str | os.PathLike[str],
    url: str,
    *,
    ref: str | None = None,
    jobs: int = 4,
    threads: int = 0,
    limits: Limits | None = None,
    s3: S3Settings | None = None,
    progress: ProgressFactory | None = None,
) -> Pushed:
    """Verify a local archive, upload the part objects the mirror lacks, then
    its record, then (last) point `ref` at it. `url` may end with `:REF`."""
    from snaparc.mirror.push import push_archive
    from snaparc.mirror.store import open_store

    source = classify_source(archive)
    if not source.is_local:
        raise UsageError(f"push takes an archive file (or split volumes), not {source}")
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
    with open_source(source) as opened:
        store = open_store(target.url, settings=s3, create=True)
        meter = _meter(progress, opened.size)
        advance: Callable[[int], None] | None = meter.advance if meter is not None else None
        if meter is not None:
            meter.detail = partial(_sent, meter, store.stats)
        report = push_archive(
            opened, store, ref=ref, jobs=jobs, threads=threads, limits=limits, progress=advance
        )
    return Pushed(report, str(target.url))


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
    progress: ProgressFactory | None = None,
) -> Pulled:
    """Rebuild the archive `target` (`URL:REF` or `URL@ID`) as a byte-identical,
    verified file at `output`; nothing carries that name unless every check,
    the archive's identity included, passed. With `resume` (the default), a
    pull of the same `output` that was killed is resumed: the parts its temp
    file holds are not fetched again (spec/MIRROR.md, section 11)."""
    from snaparc.mirror.pull import pull_archive

    if not isinstance(target, str) or not target:
        raise UsageError("URL:REF|URL@ID is empty: name a mirror and an archive")
    where = mirror_target(target, option="URL:REF|URL@ID")
    out = check_path(output, option="-o/--output")
    jobs = check_jobs(jobs)
    threads = check_threads(threads)
    limits = check_limits(limits)
    report = pull_archive(
        where,
        out,
        settings=s3,
        jobs=jobs,
        threads=threads,
        limits=limits,
        force=force,
        resume=bool(resume),
        progress=_meter(progress, None),
    )
    return Pulled(report)


def mirror_ls(url: str, *, s3: S3Settings | None = None) -> MirrorListed:
    """The refs and archive ids of a mirror."""
    from snaparc.mirror.pull import list_mirror
    from snaparc.mirror.store import open_store

    target = mirror_url(url)
    return MirrorListed(list_mirror(open_store(target.url, settings=s3)))
