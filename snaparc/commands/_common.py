"""Arguments and output helpers shared by the subcommands (light imports only)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from snaparc.format.limits import DEFAULT_LIMITS, Limits


def add_threads(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="worker threads (default: the cores available)",
    )


def add_progress(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quiet", "-q", action="store_true", help="no progress and no summary")
    g.add_argument("--progress", action="store_true", help="show progress even if not a terminal")


def add_limits(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("limits (hostile-input protection; raise only for trusted input)")
    g.add_argument("--max-manifest-bytes", type=int, default=DEFAULT_LIMITS.max_manifest_bytes)
    g.add_argument("--max-files", type=int, default=DEFAULT_LIMITS.max_files)
    g.add_argument("--max-total-bytes", type=int, default=DEFAULT_LIMITS.max_total_bytes)


def limits_from(args: argparse.Namespace) -> Limits:
    return Limits(
        max_manifest_bytes=args.max_manifest_bytes,
        max_files=args.max_files,
        max_total_bytes=args.max_total_bytes,
    )


def make_progress(args: argparse.Namespace, label: str, total: int | None) -> Any:
    if getattr(args, "quiet", False):
        return None
    if getattr(args, "progress", False) or sys.stderr.isatty():
        from snaparc.progress import Progress

        return Progress(label, total)
    return None


def close_progress(progress: Any) -> None:
    if progress is not None:
        progress.close()


def print_json(obj: Any, *, stream: Any = None) -> None:
    out = stream if stream is not None else sys.stdout
    out.write(json.dumps(obj, indent=2, sort_keys=True) + "\n")
