"""OMS bundles travelling with an archive: found, checked, carried along.

A bundle travels beside a local archive (`ARCHIVE.oms.json`, and for an HF
snapshot `ARCHIVE.hub.oms.json`, see `snaparc.airgap.oms`), in a mirror
(`signatures/<ID>/oms.json`, `signatures/<ID>/hub.oms.json`, spec/MIRROR.md)
or in an OCI registry, as a referrer of the artifact (spec/OCI.md, section 4,
"Signatures"; `snaparc.mirror.oci.signatures`).
Whoever moves an archive (materialize, push, pull) carries its bundles and
first checks, without a key, that each lists the files and digests of the
tree it is for: one that does not is refused (exit 11) before anything is
written. Their signatures are the consumer's to check (`model_signing
verify key`, `snaparc verify --oms-signature`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from snaparc.errors import SignatureError, SnaparcError
from snaparc.format.limits import Limits
from snaparc.format.manifest import Digests, Manifest
from snaparc.mirror.url import MirrorTarget, S3Settings

if TYPE_CHECKING:
    from snaparc.airgap.oms.statement import Statement
    from snaparc.api.archive import Reading
    from snaparc.mirror.oci.client import RegistryClient
    from snaparc.mirror.oci.layout import CheckedArtifact
    from snaparc.mirror.store import Store

# Where `materialize --hf-cache` puts the OMS bundle of a revision, in the repo dir.
HUB_SIGNATURES_DIR = "signatures"
# Mirror signature kind -> whether it is the hub-cache snapshot's bundle.
KINDS = {"oms.json": False, "hub.oms.json": True}


def hub_tree(manifest: Manifest) -> dict[str, Digests] | None:
    """The tree of the hub-cache snapshot `materialize --hf-cache` makes of an
    HF snapshot archive (its repo layout: a pure function of the manifest), or
    None for an archive that is no HF snapshot."""
    from snaparc.hf.materialize.checks import check_is_snapshot
    from snaparc.hf.materialize.layout import plan_repo_layout

    try:
        check_is_snapshot(manifest)
    except SnaparcError:
        return None
    blobs = manifest.blob_index()
    layout = plan_repo_layout(manifest.files)
    return {path: blobs[entry.blob].digests for path, entry in layout.files.items()}


@dataclass(frozen=True, slots=True)
class TravellingBundle:
    """A bundle that travels with an archive; `origin` says where it was found."""

    origin: str
    data: bytes
    statement: Statement
    hub: bool = False

    @property
    def kind(self) -> str:
        return "hub.oms.json" if self.hub else "oms.json"

    def check(self, manifest: Manifest) -> None:
        """Refuse (exit 11, naming the files) a bundle that does not list the tree."""
        from snaparc.airgap.oms.sign import check_statement
        from snaparc.airgap.oms.tree import GIT_PATHS, manifest_tree

        tree = hub_tree(manifest) if self.hub else manifest_tree(manifest)
        if tree is None:
            raise SignatureError(f"{self.origin}: a hub-cache bundle, but no HF snapshot archive")
        # Signed with or without the git paths: whichever the bundle says.
        signs_git = any(r.name.split("/")[0] in GIT_PATHS for r in self.statement.resources)
        try:
            check_statement(self.statement, tree, hint="", ignore_git_paths=not signs_git)
        except SignatureError as exc:
            exc.message = f"{self.origin}, travelling with the archive: {exc.message}"
            exc.args = (exc.message,)
            raise


def bundle_of(origin: str, data: bytes, *, hub: bool, limits: Limits) -> TravellingBundle:
    """Parse a travelling bundle (structure only; exit 11 if malformed)."""
    from snaparc.airgap.oms.sign import unsigned_statement

    try:
        statement = unsigned_statement(data, max_resources=limits.max_files)
    except SignatureError as exc:
        exc.message = f"{origin}: {exc.message}"
        exc.args = (exc.message,)
        raise
    return TravellingBundle(origin, data, statement, hub)


def local_bundles(archive_path: Path, limits: Limits) -> list[TravellingBundle]:
    """The bundles beside a local archive (either kind may be missing)."""
    from snaparc.airgap.oms import bundle_path_for
    from snaparc.airgap.oms.sign import read_bundle

    out = []
    for hub in (False, True):
        path = bundle_path_for(archive_path, hub=hub)
        if os.path.lexists(path):
            out.append(bundle_of(str(path), read_bundle(path), hub=hub, limits=limits))
    return out


def mirror_bundles(store: Store, archive_id: str, limits: Limits) -> list[TravellingBundle]:
    """The bundles a mirror carries for `archive_id`."""
    from snaparc.mirror.layout import signature_key
    from snaparc.mirror.pull import fetch_signatures

    return [
        bundle_of(
            store.describe(signature_key(archive_id, kind)), data, hub=KINDS[kind], limits=limits
        )
        for kind, data in fetch_signatures(store, archive_id).items()
    ]


def oci_bundles(
    client: RegistryClient, art: CheckedArtifact, limits: Limits
) -> list[TravellingBundle]:
    """The bundles attached to the OCI artifact `art` (its referrers)."""
    from snaparc.mirror.oci.signatures import fetch_signatures

    found = fetch_signatures(client, art.manifest_digest, len(art.oci_manifest))
    return [
        bundle_of(where, data, hub=KINDS[kind], limits=limits)
        for kind, (where, data) in found.items()
    ]


def target_bundles(
    target: MirrorTarget, limits: Limits, s3: S3Settings | None
) -> list[TravellingBundle]:
    from snaparc.mirror.connect import open_store
    from snaparc.mirror.pull import resolve_archive_id

    store = open_store(target.url, settings=s3)
    return mirror_bundles(store, resolve_archive_id(store, target), limits)


def travelling_bundle(reading: Reading, *, hub: bool) -> TravellingBundle | None:
    """The bundle of that kind travelling with what `reading` reads, if any."""
    source = reading.source
    if source.is_local and source.path is not None:
        found = local_bundles(source.path, reading.limits)
    elif source.target is not None:
        found = target_bundles(source.target, reading.limits, reading.s3)
    elif source.oci is not None:
        from snaparc.mirror.oci.pull import check_artifact
        from snaparc.sources.archive import registry_client

        s3 = reading.s3
        client = registry_client(source.oci, reading.allow_http, s3.transfer if s3 else None)
        art = check_artifact(client, source.oci, limits=reading.limits)
        found = oci_bundles(client, art, reading.limits)
    else:
        return None
    return next((b for b in found if b.hub == hub), None)


def publish_bundle(bundle: TravellingBundle, path: Path) -> Path:
    from snaparc.publish import write_file_atomic

    return write_file_atomic(path, bundle.data, mode=0o644, overwrite=True)
