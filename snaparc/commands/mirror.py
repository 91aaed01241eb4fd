"""`snaparc mirror push|pull|ls`: archives to and from a directory or S3 mirror.

Imports of the mirror machinery (and obstore, for s3:// URLs) happen inside
the command functions, so `snaparc --help` stays light.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from snaparc.commands._common import (
    add_limits,
    add_progress,
    add_threads,
    close_progress,
    limits_from,
    make_progress,
    print_json,
)

if TYPE_CHECKING:
    from snaparc.mirror.url import S3Settings


def _add_remote(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "S3 (also from AWS_ENDPOINT_URL, AWS_REGION/AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID, "
        "AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN)"
    )
    g.add_argument("--endpoint", metavar="URL", help="S3 endpoint URL (e.g. a MinIO server)")
    g.add_argument("--region", help="S3 region")
    g.add_argument(
        "--allow-http",
        action="store_true",
        help="allow a plain-http endpoint that is not a loopback address",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=4,
        metavar="N",
        help="objects transferred in parallel (default 4; memory about N x 36 MiB)",
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "mirror",
        help="push archives to / pull them from a directory or S3 mirror",
        description="Content-addressed mirrors of .dlmsnap archives (spec/MIRROR.md). "
        "URL: a directory path, file:///path or s3://bucket/prefix; "
        "append :REF for a ref or @ID for an archive id.",
    )
    msub = p.add_subparsers(dest="mirror_command", metavar="ACTION", parser_class=type(p))
    p.set_defaults(func=lambda args: _help(p))
    for parsers in (sub, msub):  # `snaparc push` and `snaparc mirror push` alike
        _add_push(parsers)
        _add_pull(parsers)

    ls = msub.add_parser("ls", help="list the refs and archive ids of a mirror")
    ls.add_argument("url", metavar="URL")
    ls.add_argument("--json", action="store_true", help="machine-readable listing")
    _add_remote(ls)
    ls.set_defaults(func=run_ls)


def _add_push(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    push = sub.add_parser("push", help="verify ARCHIVE, upload what the mirror lacks, set a ref")
    push.add_argument("archive", metavar="ARCHIVE", type=Path)
    push.add_argument("url", metavar="URL[:REF]")
    push.add_argument("--ref", metavar="NAME", help="point ref NAME at the archive (last step)")
    push.add_argument("--json", action="store_true", help="machine-readable report")
    _add_remote(push)
    add_progress(push)
    add_threads(push)
    add_limits(push)
    push.set_defaults(func=run_push)


def _add_pull(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    pull = sub.add_parser("pull", help="rebuild a byte-identical, verified archive file")
    pull.add_argument("target", metavar="URL:REF|URL@ID")
    pull.add_argument("-o", "--output", required=True, type=Path, metavar="FILE")
    pull.add_argument("--force", action="store_true", help="replace FILE if it exists")
    pull.add_argument("--json", action="store_true", help="machine-readable report")
    _add_remote(pull)
    add_progress(pull)
    add_threads(pull)
    add_limits(pull)
    pull.set_defaults(func=run_pull)


def _help(p: argparse.ArgumentParser) -> int:
    import sys

    p.print_help(sys.stderr)
    return 2


def _settings(args: argparse.Namespace) -> S3Settings:
    from snaparc.mirror.url import s3_settings

    return s3_settings(endpoint=args.endpoint, region=args.region, allow_http=args.allow_http)


def _human(n: int) -> str:
    from snaparc.progress import human_bytes

    return human_bytes(n)


def run_push(args: argparse.Namespace) -> int:
    from snaparc.errors import UsageError
    from snaparc.mirror.push import push_archive
    from snaparc.mirror.store import open_store
    from snaparc.mirror.url import parse_target

    target = parse_target(args.url)
    if target.archive_id:
        raise UsageError("push: URL@ID is for pull; use URL, URL:REF or --ref NAME")
    if target.ref and args.ref and target.ref != args.ref:
        raise UsageError(f"push: ref given twice ({target.ref!r} and --ref {args.ref!r})")
    ref = args.ref or target.ref
    settings = _settings(args)
    store = open_store(target.url, settings=settings, create=True)
    size = args.archive.stat().st_size if args.archive.is_file() else None
    progress = make_progress(args, "push", size)
    try:
        r = push_archive(
            args.archive,
            store,
            ref=ref,
            jobs=args.jobs,
            threads=args.threads,
            limits=limits_from(args),
            progress=progress.advance if progress is not None else None,
        )
    finally:
        close_progress(progress)
    if args.json:
        print_json(
            {
                "archive_id": r.archive_id,
                "ref": r.ref,
                "bytes_sent": r.bytes_sent,
                "bytes_skipped": r.bytes_skipped,
                "objects_sent": r.objects_sent,
                "objects_skipped": r.objects_skipped,
                "record_written": r.record_written,
                "kept_other_encoding": r.kept_other_encoding,
            }
        )
        return 0
    if args.quiet:
        return 0
    print(f"pushed {r.archive_id} to {target.url}" + (f" as {r.ref}" if r.ref else ""))
    print(
        f"sent {_human(r.bytes_sent)} ({r.bytes_sent} bytes, {r.objects_sent} objects), "
        f"skipped {_human(r.bytes_skipped)} already in the mirror "
        f"({r.bytes_skipped} bytes, {r.objects_skipped} objects)"
    )
    if r.kept_other_encoding:
        print(
            "note: the mirror already holds this archive id compressed differently; "
            "pulls rebuild that file (same content, other bytes)"
        )
    return 0


def run_pull(args: argparse.Namespace) -> int:
    from snaparc.mirror.pull import pull_archive
    from snaparc.mirror.store import open_store
    from snaparc.mirror.url import parse_target

    target = parse_target(args.target)
    settings = _settings(args)
    store = open_store(target.url, settings=settings)
    progress = make_progress(args, "pull", None)
    try:
        r = pull_archive(
            target,
            args.output,
            store=store,
            jobs=args.jobs,
            threads=args.threads,
            limits=limits_from(args),
            force=args.force,
            progress=progress,
        )
    finally:
        close_progress(progress)
    if args.json:
        print_json(
            {
                "archive_id": r.archive_id,
                "output": str(r.output),
                "bytes": r.bytes_received,
                "blobs_verified": r.blobs_verified,
            }
        )
    elif not args.quiet:
        print(
            f"pulled {r.archive_id} to {r.output} ({_human(r.bytes_received)}, "
            f"{r.blobs_verified} blobs verified with sha256 + blake3)"
        )
    return 0


def run_ls(args: argparse.Namespace) -> int:
    from snaparc.mirror.pull import list_mirror
    from snaparc.mirror.store import open_store
    from snaparc.mirror.url import parse_target

    target = parse_target(args.url)
    settings = _settings(args)
    listing = list_mirror(open_store(target.url, settings=settings))
    if args.json:
        print_json({"refs": listing.refs, "archives": sorted(listing.archives)})
        return 0
    by_id: dict[str, list[str]] = {}
    for name, aid in listing.refs.items():
        by_id.setdefault(aid, []).append(name)
    for name, aid in sorted(listing.refs.items()):
        flag = "" if aid in listing.archives else "  (archive record missing)"
        print(f"ref {name} -> {aid}{flag}")
    for name in listing.bad_refs:
        print(f"ref {name} -> (not an archive id)")
    for aid in sorted(listing.archives):
        names = ",".join(sorted(by_id.get(aid, [])))
        print(f"archive {aid}" + (f"  refs: {names}" if names else ""))
    return 0
