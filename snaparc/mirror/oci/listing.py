"""`mirror ls oci://HOST/REPO`: the tags of a repository and what they name.

For every tag (`GET /v2/<repo>/tags/list`, every page), the OCI manifest is
fetched once (at most 4 MiB) and read as far as a listing needs: its digest
(sha256 of the bytes received), the archive id snaparc's artifact carries
(the archive manifest layer's digest, which must agree with the
`org.snaparc.archive.id` annotation), and the sizes of its blobs. Nothing is
verified beyond that: the sizes are what the registry's manifest claims, and
`verify oci://…` checks an artifact whole. A tag whose manifest is not a
snaparc artifact (a container image, another tool's artifact, a manifest
that cannot be parsed) is listed as such, not refused; a tag removed between
the listing and its manifest's GET is left out. Referrers tags
(`sha256-<HEX>`, where signatures are listed for a registry without the
referrers API, `snaparc.mirror.oci.signatures`) name no artifact and are
left out too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from snaparc.mirror.oci.client import RegistryClient, RegistryNotFoundError
from snaparc.mirror.oci.layout import (
    ARCHIVE_ID_ANNOTATION,
    MAX_OCI_MANIFEST_BYTES,
    OCIArtifactError,
    find_snaparc_layers,
    sha256_digest,
)


@dataclass(frozen=True, slots=True)
class OCITagEntry:
    tag: str
    digest: str  # of the OCI manifest
    archive_id: str | None  # None: not a snaparc artifact
    blobs: tuple[tuple[str, int], ...] = ()  # (digest, size) of the config and every layer
    problem: str = ""  # why it is not a snaparc artifact

    @property
    def layer_bytes(self) -> int:
        return sum(dict(self.blobs).values())  # a blob two layers share counts once


@dataclass(slots=True)
class OCIListing:
    repository: str
    tags: list[OCITagEntry] = field(default_factory=list)

    @property
    def refs(self) -> dict[str, str]:
        """Tag -> archive id, for the tags that name a snaparc artifact."""
        return {t.tag: t.archive_id for t in self.tags if t.archive_id is not None}

    @property
    def archives(self) -> dict[str, OCITagEntry]:
        """Archive id -> the first tag's entry that names it."""
        out: dict[str, OCITagEntry] = {}
        for t in self.tags:
            if t.archive_id is not None:
                out.setdefault(t.archive_id, t)
        return out

    def shared_bytes(self, archive_id: str) -> int:
        """Bytes of the archive's blobs that another listed archive names too."""
        mine = dict(self.archives[archive_id].blobs)
        others: set[str] = set()
        for aid, entry in self.archives.items():
            if aid != archive_id:
                others.update(d for d, _ in entry.blobs)
        return sum(size for d, size in mine.items() if d in others)

    @property
    def logical_bytes(self) -> int:
        return sum(e.layer_bytes for e in self.archives.values())

    @property
    def stored_bytes(self) -> int:
        """Distinct blob bytes of the listed archives (the registry stores each once)."""
        blobs: dict[str, int] = {}
        for e in self.archives.values():
            blobs.update(e.blobs)
        return sum(blobs.values())


def _entry(tag: str, data: bytes) -> OCITagEntry:
    digest = sha256_digest(data)
    try:
        layers = find_snaparc_layers(data)
        obj = json.loads(data)
        blobs = [obj["config"], *obj["layers"]]
        sizes = tuple((str(b["digest"]), int(b["size"])) for b in blobs)
        noted = (obj.get("annotations") or {}).get(ARCHIVE_ID_ANNOTATION)
    except OCIArtifactError as exc:
        return OCITagEntry(tag, digest, None, problem=str(exc))
    except (ValueError, TypeError, KeyError, AttributeError):
        return OCITagEntry(tag, digest, None, problem="OCI manifest: malformed descriptors")
    if noted != layers.archive_id:
        return OCITagEntry(
            tag, digest, None, problem=f"OCI manifest: annotation {ARCHIVE_ID_ANNOTATION} differs"
        )
    return OCITagEntry(tag, digest, layers.archive_id, sizes)


REFERRERS_TAG = re.compile(r"^sha256-[0-9a-f]{64}$")


def list_oci(client: RegistryClient) -> OCIListing:
    """Every tag of the client's repository, in tag order, with what it names."""
    out = OCIListing(client.target.repository_url)
    for tag in client.list_tags():
        if REFERRERS_TAG.match(tag):
            continue  # the referrers of an artifact (signatures), not one
        try:
            data, _ = client.get_manifest(tag, MAX_OCI_MANIFEST_BYTES)
        except RegistryNotFoundError:
            continue  # removed since the listing
        out.tags.append(_entry(tag, data))
    return out
