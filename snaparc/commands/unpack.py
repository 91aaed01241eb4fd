"""`snaparc unpack ARCHIVE -C DEST`"""

from __future__ import annotations

import argparse
from pathlib import Path

from snaparc.commands._common import (
    add_limits,
    add_progress,
    add_threads,
    close_progress,
    limits_from,
    make_progress,
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "unpack", help="verify and recreate the tree; DEST appears complete or not at all"
    )
    p.add_argument("archive", metavar="ARCHIVE", help="archive path, or - for stdin")
    p.add_argument("-C", "--directory", dest="dest", type=Path, required=True, metavar="DEST")
    p.add_argument("--force", action="store_true", help="replace a non-empty DEST atomically")
    p.add_argument(
        "--base", metavar="OLD", help="base archive of a thin archive (file or mirror URL:REF)"
    )
    add_threads(p)
    add_progress(p)
    add_limits(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from snaparc.operations import unpack_path

    result = unpack_path(
        args.archive,
        args.dest,
        force=args.force,
        threads=args.threads,
        limits=limits_from(args),
        base=args.base,
        progress_factory=lambda total: make_progress(args, "unpack", total),
    )
    close_progress(result.progress)
    if not args.quiet:
        r = result.report
        print(
            f"unpacked {len(r.manifest.files)} files ({r.manifest.total_size} bytes) "
            f"into {args.dest}\narchive id {r.archive_id}"
        )
    return 0
