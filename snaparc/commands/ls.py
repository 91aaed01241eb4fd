"""`snaparc ls ARCHIVE`: reads the manifest only."""

from __future__ import annotations

import argparse

from snaparc.commands._common import add_limits, limits_from, print_json


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("ls", help="list files, archive id and metadata (reads the head only)")
    p.add_argument("archive", metavar="ARCHIVE", help="archive path, or - for stdin")
    p.add_argument("--json", action="store_true")
    add_limits(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from snaparc.archive.listing import read_listing
    from snaparc.inputs import open_archive_input

    with open_archive_input(args.archive) as stream:
        listing = read_listing(stream, limits=limits_from(args))
    m = listing.manifest
    blobs = m.blob_index()
    if args.json:
        print_json(
            {
                "archive_id": listing.archive_id,
                "format_version": m.format_version,
                "created_by": m.created_by,
                "compressed_bytes": listing.compressed_size,
                "tree_bytes": m.total_size,
                "blob_bytes": m.blob_bytes,
                "metadata": m.metadata,
                "base": m.base,
                "dirs": m.dirs,
                "files": [
                    {
                        "path": f.path,
                        "size": f.size,
                        "executable": f.executable,
                        "sha256": f.blob,
                        "blake3": blobs[f.blob].blake3,
                        "external": blobs[f.blob].external,
                    }
                    for f in m.files
                ],
            }
        )
        return 0
    width = max((len(str(f.size)) for f in m.files), default=1)
    for f in m.files:
        flag = "x" if f.executable else "-"
        ext = " (in base)" if blobs[f.blob].external else ""
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
