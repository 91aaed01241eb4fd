"""`snaparc verify ARCHIVE` (`-` reads stdin)"""

from __future__ import annotations

import argparse

from snaparc.commands._common import (
    add_limits,
    add_progress,
    add_threads,
    close_progress,
    limits_from,
    make_progress,
    print_json,
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("verify", help="check every blob against both digests; writes nothing")
    p.add_argument("archive", metavar="ARCHIVE", help="archive path, or - for stdin")
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.add_argument(
        "--key", metavar="PUB", help="minisign public key the signature must verify with"
    )
    p.add_argument(
        "--require-signature",
        action="store_true",
        help="fail unless ARCHIVE.minisig verifies (with --key)",
    )
    add_threads(p)
    add_progress(p)
    add_limits(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from snaparc.operations import verify_path

    result = verify_path(
        args.archive,
        threads=args.threads,
        limits=limits_from(args),
        key=args.key,
        require_signature=args.require_signature,
        progress_factory=lambda total: make_progress(args, "verify", total),
    )
    close_progress(result.progress)
    r = result.report
    if args.json:
        print_json(
            {
                "ok": True,
                "archive_id": r.archive_id,
                "format_version": r.manifest.format_version,
                "created_by": r.manifest.created_by,
                "files": len(r.manifest.files),
                "blobs": len(r.manifest.blobs),
                "blobs_verified": r.blobs_verified,
                "bytes_verified": r.bytes_verified,
                "compressed_bytes": r.compressed_bytes,
                "frames": r.frames,
                "digests": ["sha256", "blake3"],
                "signature": result.signature,
                "base": r.manifest.base,
                "external_blobs": len(r.manifest.blobs) - len(r.manifest.stored_blobs),
                "metadata": r.manifest.metadata,
            }
        )
    elif not args.quiet:
        sig = f"; signature by key {result.signature['key_id']}" if result.signature else ""
        print(
            f"OK {r.archive_id}\n"
            f"{len(r.manifest.files)} files, {r.blobs_verified} blobs, {r.bytes_verified} bytes "
            f"verified (sha256 + blake3), {r.frames} frames, seek table and structure intact{sig}"
        )
        external = len(r.manifest.blobs) - len(r.manifest.stored_blobs)
        if external:
            print(
                f"thin archive: {external} more blobs live in base archive {r.manifest.base} "
                "(checked when unpacking with --base)"
            )
    return 0
