"""`snaparc mirror push|pull|ls`: archives to and from a directory or S3 mirror.

Imports of the mirror machinery (and obstore, for s3:// URLs) happen inside
the command functions, so `snaparc --help` stays light.
"""

from __future__ import annotations

import argparse

from snaparc.commands._common import (
    Meter,
    add_limits,
    add_progress,
    add_s3,
    add_threads,
    limits_from,
    print_json,
    s3_from,
)


def _add_remote(p: argparse.ArgumentParser, *, jobs: bool = True) -> None:
    add_s3(p)
    if jobs:
        p.add_argument(
            "--jobs",
            type=int,
            default=4,
            metavar="N",
            help="objects transferred in parallel, 1 or more (default 4; memory about N x 36 MiB)",
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
    _add_remote(ls, jobs=False)
    ls.set_defaults(func=run_ls)


def _add_push(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    push = sub.add_parser("push", help="verify ARCHIVE, upload what the mirror lacks, set a ref")
    push.add_argument("archive", metavar="ARCHIVE")
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
    pull.add_argument("-o", "--output", required=True, metavar="FILE")
    pull.add_argument("--force", action="store_true", help="replace FILE if it exists")
    pull.add_argument(
        "--no-resume",
        action="store_true",
        help="start afresh: do not reuse what a killed pull of FILE had fetched",
    )
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


def _human(n: int) -> str:
    from snaparc.progress import human_bytes

    return human_bytes(n)


def run_push(args: argparse.Namespace) -> int:
    from snaparc.api import push

    with Meter(args, "push") as meter:
        done = push(
            args.archive,
            args.url,
            ref=args.ref,
            jobs=args.jobs,
            threads=args.threads,
            limits=limits_from(args),
            s3=s3_from(args),
            progress=meter,
        )
    if args.json:
        print_json(done.to_json())
        return 0
    if args.quiet:
        return 0
    r = done.report
    print(f"pushed {r.archive_id} to {done.url}" + (f" as {r.ref}" if r.ref else ""))
    print(
        f"sent {_human(r.bytes_sent)} ({r.bytes_sent} bytes, {r.objects_sent} objects), "
        f"skipped {_human(r.bytes_skipped)} already in the mirror "
        f"({r.bytes_skipped} bytes, {r.objects_skipped} objects)"
        + (f", {r.retries} requests retried" if r.retries else "")
    )
    if r.kept_other_encoding:
        print(
            "note: the mirror already holds this archive id compressed differently; "
            "pulls rebuild that file (same content, other bytes)"
        )
    return 0


def run_pull(args: argparse.Namespace) -> int:
    from snaparc.api import pull

    with Meter(args, "pull") as meter:
        done = pull(
            args.target,
            args.output,
            force=args.force,
            resume=not args.no_resume,
            jobs=args.jobs,
            threads=args.threads,
            limits=limits_from(args),
            s3=s3_from(args),
            progress=meter,
        )
    if args.json:
        print_json(done.to_json())
    elif not args.quiet:
        r = done.report
        print(
            f"pulled {r.archive_id} to {r.output} ({_human(r.bytes_received)}, "
            f"{r.blobs_verified} blobs verified with sha256 + blake3"
            + (f"; {r.retries} requests retried" if r.retries else "")
            + (f"; resumed, {_human(r.bytes_skipped)} not fetched again" if r.bytes_skipped else "")
            + ")"
        )
    return 0


def run_ls(args: argparse.Namespace) -> int:
    from snaparc.api import mirror_ls

    done = mirror_ls(args.url, s3=s3_from(args))
    if args.json:
        print_json(done.to_json())
        return 0
    listing = done.listing
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
