"""`keygen`, `sign` and `sums`: the air-gap half of snaparc's command line.

- ``snaparc keygen [-p snaparc.pub] [-s snaparc.key] [--force]``: a minisign
  key pair (unencrypted secret key, mode 0600).
- ``snaparc sign ARCHIVE [-s snaparc.key] [-t COMMENT]``: writes
  ``ARCHIVE.minisig`` (for a split archive, ``<index>.minisig``), which
  ``minisign -Vm`` verifies.
- ``snaparc sums ARCHIVE``: writes ``ARCHIVE.sha256`` and ``ARCHIVE.b3``.

Only argparse is imported at module level; the work happens in
`snaparc.airgap`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    """Add the keygen, sign and sums subcommands to the `sub` subparsers."""
    p = sub.add_parser(
        "keygen",
        help="create a minisign-compatible signing key pair",
        description="Create an Ed25519 key pair in minisign's formats. The secret key is "
        "unencrypted (like `minisign -G -W`) and written with mode 0600.",
    )
    p.add_argument("-p", "--public-key", default="snaparc.pub", metavar="PUB")
    p.add_argument("-s", "--secret-key", default="snaparc.key", metavar="SEC")
    p.add_argument("-c", "--comment", default=None, help="untrusted comment for the secret key")
    p.add_argument("--force", action="store_true", help="replace existing key files")
    p.set_defaults(func=_keygen)

    p = sub.add_parser(
        "sign",
        help="sign an archive (minisign format)",
        description="Write ARCHIVE.minisig, verifiable with `minisign -Vm ARCHIVE -p PUB`. "
        "A split archive is signed through its index, which lists every volume's sha256.",
    )
    p.add_argument("archive", metavar="ARCHIVE")
    p.add_argument("-s", "--secret-key", default="snaparc.key", metavar="SEC")
    p.add_argument("-t", "--trusted-comment", default=None, metavar="TRUSTED_COMMENT")
    p.add_argument(
        "--password-file",
        default=None,
        metavar="FILE",
        help="password of an encrypted minisign key (first line); prompts on a terminal",
    )
    p.set_defaults(func=_sign)

    p = sub.add_parser(
        "sums",
        help="write ARCHIVE.sha256 and ARCHIVE.b3 for sha256sum -c / b3sum -c",
        description="Write detached checksums beside the archive (one line per volume and "
        "the index for a split archive). Check with `sha256sum -c` / `b3sum -c` in that "
        "directory.",
    )
    p.add_argument("archive", metavar="ARCHIVE")
    p.set_defaults(func=_sums)


def _keygen(args: argparse.Namespace) -> int:
    from snaparc.airgap.minisign import write_keypair

    kwargs = {} if args.comment is None else {"comment": args.comment}
    key_id = write_keypair(args.public_key, args.secret_key, force=args.force, **kwargs)
    print(f"key id {key_id}")
    print(f"public key: {args.public_key}")
    print(f"secret key: {args.secret_key} (unencrypted; keep it secret)")
    print(f"verify with: minisign -Vm ARCHIVE -p {args.public_key}")
    return 0


def _sign(args: argparse.Namespace) -> int:
    from snaparc.airgap import signature_target
    from snaparc.airgap.minisign import is_encrypted_secret_key, read_password_file, sign_file
    from snaparc.errors import InputNotFoundError, SignatureError

    target = signature_target(args.archive)
    if not target.is_file():
        raise InputNotFoundError(f"archive not found: {args.archive}", path=str(args.archive))
    password: str | None = None
    if is_encrypted_secret_key(args.secret_key):
        if args.password_file is not None:
            password = read_password_file(args.password_file)
        elif sys.stdin.isatty():
            import getpass

            password = getpass.getpass(f"Password for {args.secret_key}: ")
        else:
            raise SignatureError(
                f"{args.secret_key} is encrypted: pass --password-file, run on a terminal, "
                "or use an unencrypted key (`snaparc keygen`, `minisign -G -W`)"
            )
    sig = sign_file(target, args.secret_key, args.trusted_comment, password=password)
    print(f"signed {target} -> {sig}")
    return 0


def _sums(args: argparse.Namespace) -> int:
    from snaparc.airgap.sums import write_sums

    for path in write_sums(args.archive):
        print(f"wrote {path}")
    return 0
