"""keygen, sign, sums: the air-gap commands of the public API."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from snaparc.api.args import check_limits, check_oms_ignore, check_path
from snaparc.api.results import KeysWritten, Signed, SumsWritten
from snaparc.errors import SignatureError, UsageError
from snaparc.format.limits import Limits
from snaparc.sources.archive import Source, classify_source

if TYPE_CHECKING:
    from snaparc.airgap.oms.statement import Statement


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
    oms: bool = False,
    oms_ignore: Iterable[str] = (),
    oms_ignore_git_paths: bool = True,
    limits: Limits | None = None,
) -> Signed:
    """Write ARCHIVE.minisig (a split archive is signed through its index), or
    with `oms` an OpenSSF model signing bundle ARCHIVE.oms.json.

    An encrypted secret key needs `password`, the first line of
    `password_file`, or `ask_password(key_path)` (the CLI prompts on a terminal).

    With `oms`, `secret_key` is a PEM EC private key (P-256, P-384, P-521, as
    `model_signing sign key` takes); the bundle covers the snapshot tree the
    archive holds, made from its manifest alone, and verifies with
    `model_signing verify key DIR --signature ARCHIVE.oms.json` on the
    directory `snaparc materialize` writes. For an HF snapshot archive a
    second bundle, ARCHIVE.hub.oms.json, covers the hub-cache snapshot
    `materialize --hf-cache` makes of it (another layout of the same files).
    `oms_ignore` (paths relative to the snapshot root; a directory ignores all
    below it) and the git paths (unless `oms_ignore_git_paths` is false) are
    left out, as model_signing does.
    """
    from snaparc.airgap import signature_target
    from snaparc.airgap.minisign import is_encrypted_secret_key, read_password_file, sign_file

    source = _local_archive(archive, "sign")
    sec = check_path(secret_key, option="-s/--secret-key")
    pw_file = None if password_file is None else check_path(password_file, option="--password-file")
    if password is not None and pw_file is not None:
        raise UsageError("give a password or --password-file, not both")
    assert source.path is not None
    if oms:
        if trusted_comment is not None:
            raise UsageError("-t/--trusted-comment is for minisign signatures, not --oms")
        ignore = check_oms_ignore(oms_ignore)
        checked_limits = check_limits(limits)
        if password is None and pw_file is not None:
            password = read_password_file(pw_file)
        return _sign_oms(
            source,
            sec,
            ignore=ignore,
            ignore_git_paths=bool(oms_ignore_git_paths),
            password=password,
            ask_password=ask_password,
            limits=checked_limits,
        )
    if oms_ignore:
        raise UsageError("--oms-ignore needs --oms")
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


def _sign_oms(
    source: Source,
    key: Path,
    *,
    ignore: tuple[str, ...],
    ignore_git_paths: bool,
    password: str | None,
    ask_password: Callable[[Path], str] | None,
    limits: Limits,
) -> Signed:
    from snaparc.airgap.oms import BUNDLE_SUFFIX, bundle_path_for
    from snaparc.airgap.oms.keys import is_encrypted_private_key
    from snaparc.airgap.oms.sign import write_bundle
    from snaparc.airgap.oms.tree import Tree, manifest_tree
    from snaparc.api.oms import hub_tree
    from snaparc.archive.listing import read_listing
    from snaparc.sources.archive import open_source

    assert source.path is not None
    if password is None and ask_password is not None and is_encrypted_private_key(key):
        password = ask_password(key)
    with open_source(source) as opened:
        listing = read_listing(opened, limits=limits)
    manifest = listing.manifest
    out = bundle_path_for(source.path)
    name = out.name[: -len(BUNDLE_SUFFIX)]
    model_name = (name[: -len(".dlmsnap")] if name.endswith(".dlmsnap") else name) or "model"

    def write(tree: Tree, path: Path) -> Statement:
        return write_bundle(
            tree,
            key,
            path,
            model_name=model_name,
            ignore=ignore,
            ignore_git_paths=ignore_git_paths,
            password=password,
        )

    statement = write(manifest_tree(manifest), out)
    hub_out = bundle_path_for(source.path, hub=True)
    hub = hub_tree(manifest)
    if hub is not None:
        write(hub, hub_out)
    else:  # one left from an archive of that name that was an HF snapshot
        hub_out.unlink(missing_ok=True)
    return Signed(
        source.path,
        out,
        kind="oms",
        files=len(statement.resources),
        subject_digest=statement.subject_digest,
        hub_signature=hub_out if hub is not None else None,
    )


def sums(archive: str | os.PathLike[str]) -> SumsWritten:
    """Write ARCHIVE.sha256 and ARCHIVE.b3 (one line per volume and the index
    for a split archive) for `sha256sum -c` / `b3sum -c`."""
    from snaparc.airgap.sums import write_sums

    source = _local_archive(archive, "sums")
    assert source.path is not None
    return SumsWritten(tuple(write_sums(source.path)))
