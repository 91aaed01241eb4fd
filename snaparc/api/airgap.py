"""keygen, sign, sums: the air-gap commands of the public API."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from snaparc.api.args import check_path
from snaparc.api.results import KeysWritten, Signed, SumsWritten
from snaparc.errors import SignatureError, UsageError
from snaparc.sources.archive import Source, classify_source


def keygen(
    public_key: str | os.PathLike[str] = "snaparc.pub",
    secret_key: str | os.PathLike[str] = "snaparc.key",
    *,
    comment: str | None = None,
    force: bool = False,
) -> KeysWritten:
    """A minisign-format Ed25519 key pair; the secret key unencrypted, mode 0600."""
    from snaparc.airgap.minisign import write_keypair

    pub = check_path(public_key, option="-p/--public-key")
    sec = check_path(secret_key, option="-s/--secret-key")
    kwargs = {} if comment is None else {"comment": comment}
    key_id = write_keypair(pub, sec, force=force, **kwargs)
    return KeysWritten(key_id, pub, sec)


def _local_archive(archive: str | os.PathLike[str], command: str) -> Source:
    source = classify_source(archive)
    if not source.is_local:
        raise UsageError(f"{command} works on an archive file (or split volumes), not {source}")
    return source


def sign(
    archive: str | os.PathLike[str],
    secret_key: str | os.PathLike[str] = "snaparc.key",
    *,
    trusted_comment: str | None = None,
    password: str | None = None,
    password_file: str | os.PathLike[str] | None = None,
    ask_password: Callable[[Path], str] | None = None,
) -> Signed:
    """Write ARCHIVE.minisig (a split archive is signed through its index).

    An encrypted secret key needs `password`, the first line of
    `password_file`, or `ask_password(key_path)` (the CLI prompts on a terminal).
    """
    from snaparc.airgap import signature_target
    from snaparc.airgap.minisign import is_encrypted_secret_key, read_password_file, sign_file

    source = _local_archive(archive, "sign")
    sec = check_path(secret_key, option="-s/--secret-key")
    pw_file = None if password_file is None else check_path(password_file, option="--password-file")
    if password is not None and pw_file is not None:
        raise UsageError("give a password or --password-file, not both")
    assert source.path is not None
    target = signature_target(source.path)
    if password is None and is_encrypted_secret_key(sec):
        if pw_file is not None:
            password = read_password_file(pw_file)
        elif ask_password is not None:
            password = ask_password(sec)
        else:
            raise SignatureError(
                f"{sec} is encrypted: pass --password-file, run on a terminal, "
                "or use an unencrypted key (`snaparc keygen`, `minisign -G -W`)"
            )
    signature = sign_file(target, sec, trusted_comment, password=password)
    return Signed(target, signature)


def sums(archive: str | os.PathLike[str]) -> SumsWritten:
    """Write ARCHIVE.sha256 and ARCHIVE.b3 (one line per volume and the index
    for a split archive) for `sha256sum -c` / `b3sum -c`."""
    from snaparc.airgap.sums import write_sums

    source = _local_archive(archive, "sums")
    assert source.path is not None
    return SumsWritten(tuple(write_sums(source.path)))
