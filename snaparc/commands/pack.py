"""`snaparc pack SRC_DIR -o OUT.dlmsnap`"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from snaparc.commands._common import add_progress, add_threads, close_progress, make_progress


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("pack", help="pack a directory (an HF snapshot export) into a .dlmsnap")
    p.add_argument("src", type=Path, metavar="SRC_DIR")
    p.add_argument(
        "-o", "--output", required=True, metavar="OUT", help="archive path, or - for stdout"
    )
    p.add_argument("--level", type=int, default=3, help="zstd level 1-19 (default 3)")
    p.add_argument("--force", action="store_true", help="replace an existing output file")
    p.add_argument(
        "--allow-undeclared",
        action="store_true",
        help="pack files a snapshot_manifest.json does not declare",
    )
    p.add_argument(
        "--split",
        metavar="SIZE",
        help="write volumes of SIZE (e.g. 700M, 2G; 'fat32' = 4 GiB - 1) plus an index",
    )
    p.add_argument("--sums", action="store_true", help="also write OUT.sha256 and OUT.b3")
    p.add_argument(
        "--base",
        metavar="OLD",
        help="thin archive: store only blobs that OLD lacks (a file or a mirror URL:REF)",
    )
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    add_threads(p)
    add_progress(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from snaparc.operations import pack_directory

    to_stdout = args.output == "-"
    progress_total: list[int] = []

    def progress_factory(total: int) -> object:
        progress_total.append(total)
        return make_progress(args, "pack", total)

    split = None
    if args.split:
        from snaparc.airgap.volumes import parse_size

        split = parse_size(args.split)
    result = pack_directory(
        args.src,
        None if to_stdout else Path(args.output),
        level=args.level,
        threads=args.threads,
        force=args.force,
        allow_undeclared=args.allow_undeclared,
        progress_factory=progress_factory,
        split=split,
        sums=args.sums,
        base=args.base,
    )
    close_progress(result.progress)
    info = sys.stderr if to_stdout else sys.stdout
    m = result.pack.manifest
    if args.json:
        from snaparc.commands._common import print_json

        print_json(
            {
                "archive_id": result.pack.archive_id,
                "output": args.output,
                "files": len(m.files),
                "blobs": len(m.blobs),
                "tree_bytes": m.total_size,
                "blob_bytes": m.blob_bytes,
                "compressed_bytes": result.pack.compressed_bytes,
                "frames": result.pack.frames,
                "metadata": m.metadata,
            },
            stream=info,
        )
    elif not args.quiet:
        print(
            f"packed {len(m.files)} files ({m.total_size} bytes, {len(m.blobs)} distinct blobs) "
            f"into {args.output}: {result.pack.compressed_bytes} bytes\n"
            f"archive id {result.pack.archive_id}",
            file=info,
        )
    return 0
