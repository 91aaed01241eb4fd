"""`snaparc ls ARCHIVE`: reads the manifest only."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from snaparc.commands._common import add_allow_http, add_limits, limits_from, print_json

if TYPE_CHECKING:
    from snaparc.api import Listed


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("ls", help="list files, archive id and metadata (reads the head only)")
    p.add_argument(
        "archive", metavar="ARCHIVE", help="archive path, - for stdin, or a mirror URL:REF"
    )
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--tensors",
        action="store_true",
        help="list each safetensors file's tensors: name, dtype, shape, byte range "
        "(from the manifest's tensor index; still the head only)",
    )
    add_limits(p)
    add_allow_http(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from snaparc.api import ls

    result = ls(args.archive, limits=limits_from(args), allow_http=args.allow_http)
    if args.tensors:
        return _print_tensors(result, as_json=args.json)
    if args.json:
        print_json(result.to_json())
        return 0
    listing = result.listing
    m = listing.manifest
    blobs = m.blob_index()
    width = max((len(str(f.size)) for f in m.files), default=1)
    for f in m.files:
        flag = "x" if f.executable else "-"
        blob = blobs[f.blob]
        ext = " (in base)" if blob.external else f" ({blob.codec})" if blob.codec else ""
        print(f"{flag} {f.size:>{width}}  {f.blob[:12]}  {f.path}{ext}")
    for d in m.dirs:
        print(f"d {'':>{width}}  {'':12}  {d}/")
    comp = listing.compressed_size
    ratio = f" ({comp / m.blob_bytes:.3f} of blob bytes)" if comp and m.blob_bytes else ""
    print(f"archive id  {listing.archive_id}")
    print(f"format      {m.format} {m.format_version}, written by {m.created_by}")
    print(
        f"files       {len(m.files)} ({m.total_size} bytes), {len(m.blobs)} distinct blobs "
        f"({m.blob_bytes} bytes)"
    )
    print(f"compressed  {comp if comp is not None else 'unknown (read from a pipe)'} bytes{ratio}")
    for key in sorted(m.metadata):
        print(f"{key:<11} {m.metadata[key]}")
    return 0


def _print_tensors(result: Listed, *, as_json: bool) -> int:
    if as_json:
        print_json(result.tensors_json())
        return 0
    by_file = result.tensors()
    if not by_file:
        print("no tensor index (the archive holds no snapshot safetensors, or predates format 1.1)")
        return 0
    for path, tensors in by_file.items():
        print(f"{path}: {len(tensors)} tensors")
        for t in tensors:
            shape = "x".join(str(d) for d in t["shape"]) or "scalar"
            begin, end = t["offsets"]
            print(f"  {t['dtype']:<8} {shape:<16} {begin:>12}-{end:<12} {t['name']}")
    return 0
