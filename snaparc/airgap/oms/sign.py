"""Make an OMS bundle from a manifest, and check one against a manifest.

Neither reads a byte of the payload: the manifest holds every file's
sha256 and blake3. A bundle made here verifies with
``model_signing verify key DIR --public_key PUB --signature BUNDLE`` on the
directory `snaparc materialize` (or `unpack`) writes; a bundle
`model_signing sign key` made over the snapshot directory checks here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from snaparc.airgap.oms.envelope import MAX_BUNDLE_BYTES, open_bundle, seal
from snaparc.airgap.oms.errors import MalformedBundleError
from snaparc.airgap.oms.keys import key_hint, load_private_key, load_public_key
from snaparc.airgap.oms.statement import Statement, build_statement, parse_statement
from snaparc.airgap.oms.tree import Tree, compare, ignore_set, tree_resources
from snaparc.errors import SignatureError
from snaparc.publish import write_file_atomic
from snaparc.sidefiles import read_regular_file


@dataclass(frozen=True, slots=True)
class CheckedBundle:
    """What a bundle that matched the manifest vouches for."""

    model_name: str
    subject_digest: str
    hash_type: str
    files: int
    key_hint: str


def bundle_for(
    tree: Tree,
    key_path: str | os.PathLike[str],
    *,
    model_name: str,
    ignore: tuple[str, ...] = (),
    ignore_git_paths: bool = True,
    password: str | None = None,
) -> tuple[Statement, bytes]:
    """The statement over the tree's files and the signed bundle's bytes."""
    key = load_private_key(key_path, password=password)
    ignored = ignore_set(ignore, ignore_git_paths=ignore_git_paths)
    resources = tree_resources(tree, ignored)
    statement, payload = build_statement(model_name, resources, ignore_paths=ignored)
    return statement, seal(payload, key)


def write_bundle(
    tree: Tree,
    key_path: str | os.PathLike[str],
    out: Path,
    *,
    model_name: str,
    ignore: tuple[str, ...] = (),
    ignore_git_paths: bool = True,
    password: str | None = None,
) -> Statement:
    """Sign the tree and publish the bundle at `out` (atomically, replacing)."""
    statement, data = bundle_for(
        tree,
        key_path,
        model_name=model_name,
        ignore=ignore,
        ignore_git_paths=ignore_git_paths,
        password=password,
    )
    write_file_atomic(out, data, mode=0o644, overwrite=True)
    return statement


def read_bundle(path: str | os.PathLike[str]) -> bytes:
    """A bundle file's bytes (a regular file, at most MAX_BUNDLE_BYTES)."""

    def too_large(message: str, *, path: str) -> SignatureError:
        return MalformedBundleError(f"OMS bundle {message}", path=path)

    return read_regular_file(path, limit=MAX_BUNDLE_BYTES, what="OMS bundle", too_large=too_large)


def open_statement(
    bundle: bytes, public_key_path: str | os.PathLike[str], *, max_resources: int
) -> tuple[Statement, str]:
    """The statement of a bundle whose signature verified, and the key's hint."""
    key = load_public_key(public_key_path)
    payload = open_bundle(bundle, key)
    return parse_statement(payload, max_resources=max_resources), key_hint(key)


def check_statement(
    statement: Statement,
    tree: Tree,
    *,
    hint: str,
    ignore: tuple[str, ...] = (),
    ignore_git_paths: bool = True,
) -> CheckedBundle:
    """Refuse (exit 11, naming the files) unless the statement covers the
    tree's files exactly, with their digests."""
    ignored = ignore_set(ignore, ignore_git_paths=ignore_git_paths, bundle=statement.ignore_paths)
    files = compare(statement, tree, ignored)
    return CheckedBundle(
        statement.model_name, statement.subject_digest, statement.hash_type, files, hint
    )


def unsigned_statement(bundle: bytes, *, max_resources: int) -> Statement:
    """The statement of a bundle without checking its signature (no key at hand):
    for checking that a bundle travelling with an archive belongs to it."""
    from snaparc.airgap.oms.envelope import payload_of

    return parse_statement(payload_of(bundle), max_resources=max_resources)
