"""`snaparc cat ARCHIVE PATH`: one file's bytes to stdout, verified first."""

from __future__ import annotations

import argparse
import sys

from snaparc.commands._common import add_allow_http, add_limits, add_threads, limits_from


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("cat", help="write one file's verified bytes to stdout")
    p.add_argument(
        "archive", metavar="ARCHIVE", help="archive path, - for stdin, or a mirror URL:REF"
    )
    p.add_argument("path", metavar="PATH", help="the file's path inside the archive")
    p.add_argument(
        "--tensor",
        metavar="NAME",
        help="write only this tensor's bytes (a safetensors file with a tensor index; "
        "`snaparc ls --tensors` lists them)",
    )
    add_threads(p)
    add_limits(p)
    add_allow_http(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from snaparc.api import cat

    cat(
        args.archive,
        args.path,
        sys.stdout.buffer,
        limits=limits_from(args),
        allow_http=args.allow_http,
        threads=args.threads,
        tensor=args.tensor,
    )
    return 0
