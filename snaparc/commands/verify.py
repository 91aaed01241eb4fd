"""`snaparc verify ARCHIVE` (`-` reads stdin)"""

from __future__ import annotations

import argparse

from snaparc.commands._common import (
    Meter,
    add_allow_http,
    add_limits,
    add_oms_ignore,
    add_progress,
    add_threads,
    limits_from,
    print_json,
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("verify", help="check every blob against both digests; writes nothing")
    p.add_argument(
        "archive", metavar="ARCHIVE", help="archive path, - for stdin, or a mirror URL:REF"
    )
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.add_argument(
        "--key", metavar="PUB", help="minisign public key the signature must verify with"
    )
    p.add_argument(
        "--require-signature",
        action="store_true",
        help="fail unless ARCHIVE.minisig verifies (with --key)",
    )
    p.add_argument(
        "--oms-signature",
        metavar="SIG",
        help="an OpenSSF model signing bundle (e.g. from `model_signing sign key` over the "
        "snapshot directory) to check against the archive's manifest; needs --public-key",
    )
    p.add_argument(
        "-p",
        "--public-key",
        metavar="PUB",
        help="PEM EC public key the OMS bundle must verify with",
    )
    add_oms_ignore(p)
    add_threads(p)
    add_progress(p)
    add_limits(p)
    add_allow_http(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from snaparc.api import verify

    with Meter(args, "verify") as meter:
        result = verify(
            args.archive,
            threads=args.threads,
            limits=limits_from(args),
            allow_http=args.allow_http,
            key=args.key,
            require_signature=args.require_signature,
            oms_signature=args.oms_signature,
            public_key=args.public_key,
            oms_ignore=args.oms_ignore,
            oms_ignore_git_paths=not args.oms_include_git_paths,
            progress=meter,
        )
    r = result.report
    if args.json:
        print_json(result.to_json())
    elif not args.quiet:
        sig = f"; signature by key {result.signature['key_id']}" if result.signature else ""
        if result.oms:
            o = result.oms
            sig += (
                f"; OMS signature matches ({o['files']} files, {o['hash_type']}, "
                f"key {o['key_hint'][:16]})"
            )
        print(
            f"OK {r.archive_id}\n"
            f"{len(r.manifest.files)} files, {r.blobs_verified} blobs, {r.bytes_verified} bytes "
            f"verified (sha256 + blake3), {r.frames} frames, seek table and structure intact{sig}"
        )
        if result.external_blobs:
            print(
                f"thin archive: {result.external_blobs} more blobs live in base archive "
                f"{r.manifest.base} (checked when unpacking with --base)"
            )
    return 0
