"""`keygen`, `sign` and `sums`: the air-gap half of snaparc's command line.

- ``snaparc keygen [-p snaparc.pub] [-s snaparc.key] [--force]``: a minisign
  key pair (unencrypted secret key, mode 0600).
- ``snaparc sign ARCHIVE [-s snaparc.key] [-t COMMENT]``: writes
  ``ARCHIVE.minisig`` (for a split archive, ``<index>.minisig``), which
  ``minisign -Vm`` verifies.
- ``snaparc sign ARCHIVE --oms -s KEY.pem [--oms-ignore PATH]…``: writes
  ``ARCHIVE.oms.json``, an OpenSSF model signing bundle of the snapshot tree
  (from the manifest alone), which ``model_signing verify key DIR`` verifies
  on the materialized directory.
- ``snaparc sums ARCHIVE``: writes ``ARCHIVE.sha256`` and ``ARCHIVE.b3``.

Only argparse is imported at module level; the work happens in
`snaparc.airgap`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from snaparc.commands._common import add_oms_ignore


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
        help="sign an archive (minisign format, or an OpenSSF model signing bundle)",
        description="Write ARCHIVE.minisig, verifiable with `minisign -Vm ARCHIVE -p PUB`. "
        "A split archive is signed through its index, which lists every volume's sha256. "
        "With --oms, write ARCHIVE.oms.json instead: an OpenSSF model signing (OMS) bundle "
        "of the snapshot tree, made from the manifest alone (no payload is read), which "
        "`model_signing verify key DIR --public_key PUB --signature ARCHIVE.oms.json` "
        "verifies on the directory `snaparc materialize` writes.",
    )
    p.add_argument("archive", metavar="ARCHIVE")
    p.add_argument(
        "-s",
        "--secret-key",
        default="snaparc.key",
        metavar="SEC",
        help="minisign secret key; with --oms a PEM EC private key (P-256, P-384, P-521)",
    )
    p.add_argument("-t", "--trusted-comment", default=None, metavar="TRUSTED_COMMENT")
    p.add_argument(
        "--password-file",
        default=None,
        metavar="FILE",
        help="password of an encrypted key (first line); prompts on a terminal",
    )
    p.add_argument(
        "--oms",
        action="store_true",
        help="write an OpenSSF model signing bundle ARCHIVE.oms.json (model_signing's format)",
    )
    add_oms_ignore(p)
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
    from snaparc.api import keygen

    done = keygen(args.public_key, args.secret_key, comment=args.comment, force=args.force)
    print(f"key id {done.key_id}")
    print(f"public key: {done.public_key}")
    print(f"secret key: {done.secret_key} (unencrypted; keep it secret)")
    print(f"verify with: minisign -Vm ARCHIVE -p {done.public_key}")
    return 0


def _ask_password(key: Path) -> str:
    import getpass

    return getpass.getpass(f"Password for {key}: ")


def _sign(args: argparse.Namespace) -> int:
    from snaparc.api import sign

    done = sign(
        args.archive,
        args.secret_key,
        trusted_comment=args.trusted_comment,
        password_file=args.password_file,
        ask_password=_ask_password if sys.stdin.isatty() else None,
        oms=args.oms,
        oms_ignore=args.oms_ignore,
        oms_ignore_git_paths=not args.oms_include_git_paths,
    )
    if done.kind == "oms":
        print(
            f"signed the tree of {done.target} ({done.files} files, subject sha256 "
            f"{done.subject_digest}) -> {done.signature}"
        )
        if done.hub_signature is not None:
            print(f"signed its hub-cache snapshot layout -> {done.hub_signature}")
        print(
            "check with: model_signing verify key DIR --public_key PUB --signature BUNDLE "
            "(DIR: what `snaparc materialize` writes)"
        )
        return 0
    print(f"signed {done.target} -> {done.signature}")
    return 0


def _sums(args: argparse.Namespace) -> int:
    from snaparc.api import sums

    for path in sums(args.archive).paths:
        print(f"wrote {path}")
    return 0
