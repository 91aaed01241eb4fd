"""`snaparc unpack ARCHIVE -C DEST`"""

from __future__ import annotations

import argparse

from snaparc.commands._common import (
    Meter,
    add_allow_http,
    add_limits,
    add_no_resume,
    add_progress,
    add_threads,
    limits_from,
    print_transfer,
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "unpack", help="verify and recreate the tree; DEST appears complete or not at all"
    )
    p.add_argument(
        "archive", metavar="ARCHIVE", help="archive path, - for stdin, or a mirror URL:REF"
    )
    p.add_argument("-C", "--directory", dest="dest", required=True, metavar="DEST")
    p.add_argument("--force", action="store_true", help="replace a non-empty DEST atomically")
    p.add_argument(
        "--base", metavar="OLD", help="base archive of a thin archive (file or mirror URL:REF)"
    )
    add_no_resume(p, "this unpack (a mirror or oci:// ARCHIVE)")
    add_threads(p)
    add_progress(p)
    add_limits(p)
    add_allow_http(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from snaparc.api import unpack

    with Meter(args, "unpack") as meter:
        result = unpack(
            args.archive,
            args.dest,
            force=args.force,
            threads=args.threads,
            limits=limits_from(args),
            allow_http=args.allow_http,
            base=args.base,
            resume=not args.no_resume,
            progress=meter,
        )
    if not args.quiet:
        m = result.report.manifest
        print(
            f"unpacked {len(m.files)} files ({m.total_size} bytes) "
            f"into {args.dest}\narchive id {result.archive_id}"
        )
        print_transfer(result)
    return 0
