"""`snaparc pack SRC_DIR -o OUT.dlmsnap`"""

from __future__ import annotations

import argparse
import sys

from snaparc.commands._common import Meter, add_allow_http, add_progress, add_threads, print_json


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("pack", help="pack a directory (an HF snapshot export) into a .dlmsnap")
    p.add_argument("src", metavar="SRC_DIR")
    p.add_argument(
        "-o", "--output", required=True, metavar="OUT", help="archive path, or - for stdout"
    )
    p.add_argument(
        "--level", type=int, help="zstd level 1-19 (default 3; 1 with --codec bytegroup)"
    )
    p.add_argument(
        "--codec",
        default="none",
        metavar="{none,bytegroup}",
        help="bytegroup: store the BF16/F16/F32 tensors of a snapshot export's safetensors "
        "files as byte planes (smaller; format 1.2, stock tar -x then gives the planes; "
        "default level 1); none (default): as before",
    )
    p.add_argument("--force", action="store_true", help="replace an existing output file")
    p.add_argument(
        "--allow-undeclared",
        action="store_true",
        help="pack files a snapshot_manifest.json does not declare",
    )
    p.add_argument(
        "--allow-base-weights",
        action="store_true",
        help="pack safetensors tensors of a snapshot export that are not adapter parameters",
    )
    p.add_argument(
        "--split",
        metavar="SIZE",
        help="write volumes of SIZE (at least 1M; e.g. 700M, 2G; 'fat32' = 4 GiB - 1) "
        "plus an index",
    )
    p.add_argument("--sums", action="store_true", help="also write OUT.sha256 and OUT.b3")
    p.add_argument(
        "--base",
        metavar="OLD",
        help="thin archive: store only blobs that OLD lacks (a file or a mirror URL:REF)",
    )
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    add_threads(p)
    add_allow_http(p)
    add_progress(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from snaparc.api import pack

    with Meter(args, "pack") as meter:
        result = pack(
            args.src,
            args.output,
            level=args.level,
            codec=args.codec,
            threads=args.threads,
            allow_http=args.allow_http,
            force=args.force,
            allow_undeclared=args.allow_undeclared,
            allow_base_weights=args.allow_base_weights,
            split=args.split,
            sums=args.sums,
            base=args.base,
            progress=meter,
        )
    info = sys.stderr if args.output == "-" else sys.stdout
    if args.json:
        print_json(result.to_json(), stream=info)
    elif not args.quiet:
        m = result.written.manifest
        print(
            f"packed {len(m.files)} files ({m.total_size} bytes, {len(m.blobs)} distinct blobs) "
            f"into {args.output}: {result.written.compressed_bytes} bytes\n"
            f"archive id {result.archive_id}",
            file=info,
        )
    return 0
