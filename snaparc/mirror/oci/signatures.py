"""OMS bundles travelling with an OCI artifact, as referrers (spec/OCI.md,
section 4a "Signatures").

A bundle of kind KIND (`oms.json`, `hub.oms.json`: spec/MIRROR.md,
`signatures/<ID>/<KIND>`) is an OCI image manifest whose `subject` is the
archive's OCI manifest:

    {"artifactType": "application/vnd.snaparc.signature.v1+json",
     "config": <the OCI empty descriptor>,
     "layers": [{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                 "annotations": {"org.opencontainers.image.title": KIND}, ...}],
     "annotations": {"org.snaparc.signature.kind": KIND,
                     "org.snaparc.archive.id": ID,
                     "org.opencontainers.image.created": <RFC 3339, UTC, microseconds>},
     "subject": <the archive's OCI manifest descriptor>, ...}

pushed by digest. A registry with the referrers API (distribution spec
1.1: its `PUT` answers with `OCI-Subject`) lists it under
`GET /v2/<repo>/referrers/<digest>`; for one without (CNCF distribution 2.8),
the pusher keeps the *referrers tag* `sha256-<hex>` (the distribution spec's
fallback): an image index of the referrers' descriptors, where a new bundle
replaces the one of the same kind. A reader asks the referrers API and, on a
404, reads the tag. Per kind, the latest (`created`) referrer travels.

Nothing here is trusted: a referrer's manifest is fetched by digest and
checked against it, its subject must be the artifact's manifest, its one
layer is fetched by digest (at most `MAX_SIGNATURE_BYTES`, refused above
that before it is fetched) and checked against it; a failure is a
`SignatureError` (exit 11). The bundle's content is then checked as a
mirror's is (`snaparc.api.oms`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from snaparc.errors import SignatureError
from snaparc.mirror.layout import MAX_SIGNATURE_BYTES, SIGNATURE_KINDS
from snaparc.mirror.oci.client import RegistryClient, RegistryNotFoundError
from snaparc.mirror.oci.layout import (
    ARCHIVE_ID_ANNOTATION,
    OCI_MANIFEST,
    TITLE,
    canonical_json,
    sha256_digest,
)

__all__ = [
    "BUNDLE_LAYER_TYPE",
    "OCI_INDEX",
    "SIGNATURE_TYPE",
    "fetch_signatures",
    "push_signatures",
    "referrers_tag",
]

SIGNATURE_TYPE = "application/vnd.snaparc.signature.v1+json"
BUNDLE_LAYER_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY = b"{}"
KIND_ANNOTATION = "org.snaparc.signature.kind"
CREATED = "org.opencontainers.image.created"
MAX_INDEX_BYTES = 4 * 1024 * 1024
MAX_REFERRERS = 1000  # descriptors of one index looked at, at most
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def referrers_tag(digest: str) -> str:
    """The fallback tag of the referrers of `digest` (`sha256-<hex>`)."""
    return digest.replace(":", "-", 1)


def _descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data), **extra}


def signature_manifest(
    subject: Mapping[str, Any], archive_id: str, kind: str, bundle: bytes, created: str
) -> bytes:
    return canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": SIGNATURE_TYPE,
            "config": _descriptor(EMPTY_TYPE, EMPTY),
            "layers": [_descriptor(BUNDLE_LAYER_TYPE, bundle, annotations={TITLE: kind})],
            "subject": dict(subject),
            "annotations": {
                KIND_ANNOTATION: kind,
                ARCHIVE_ID_ANNOTATION: archive_id,
                CREATED: created,
            },
        }
    )


def push_signatures(
    client: RegistryClient,
    subject: Mapping[str, Any],
    archive_id: str,
    signatures: Mapping[str, bytes],
) -> None:
    """Attach each bundle (kind -> bytes) to the manifest `subject` describes."""
    if not signatures:
        return
    if client.head_blob(sha256_digest(EMPTY)) != len(EMPTY):
        client.upload_small_blob(sha256_digest(EMPTY), EMPTY)
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # sorts as it reads
    pushed: list[dict[str, Any]] = []
    tracked = True  # the registry keeps the referrers list itself
    for kind, bundle in sorted(signatures.items()):
        if kind not in SIGNATURE_KINDS:
            raise ValueError(f"unknown signature kind {kind!r}")
        digest = sha256_digest(bundle)
        if client.head_blob(digest) != len(bundle):
            client.upload_small_blob(digest, bundle)
        data = signature_manifest(subject, archive_id, kind, bundle, created)
        ref = sha256_digest(data)
        _, headers = client.put_manifest_with_headers(ref, data, OCI_MANIFEST)
        tracked = tracked and headers.get("OCI-Subject") == subject["digest"]
        pushed.append(
            _descriptor(
                OCI_MANIFEST,
                data,
                artifactType=SIGNATURE_TYPE,
                annotations={
                    KIND_ANNOTATION: kind,
                    ARCHIVE_ID_ANNOTATION: archive_id,
                    CREATED: created,
                },
            )
        )
    if not tracked:
        _update_referrers_tag(client, str(subject["digest"]), pushed)


def _update_referrers_tag(
    client: RegistryClient, subject: str, pushed: list[dict[str, Any]]
) -> None:
    tag = referrers_tag(subject)
    kinds = {d["annotations"][KIND_ANNOTATION] for d in pushed}
    try:
        data = client.get_manifest_as(tag, MAX_INDEX_BYTES, OCI_INDEX)
        old = _index_entries(data, f"the referrers tag {tag}")
    except RegistryNotFoundError:
        old = []
    except SignatureError:
        old = []  # a damaged index is replaced
    keep = [
        d
        for d in old
        if not (
            d.get("artifactType") == SIGNATURE_TYPE
            and (d.get("annotations") or {}).get(KIND_ANNOTATION) in kinds
        )
    ]
    index = canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": keep + pushed})
    client.put_manifest_with_headers(tag, index, OCI_INDEX)


def _index_entries(data: bytes, what: str) -> list[dict[str, Any]]:
    try:
        obj = json.loads(data)
    except ValueError:
        raise SignatureError(f"{what} is not JSON") from None
    entries = obj.get("manifests") if isinstance(obj, dict) else None
    if not isinstance(entries, list):
        raise SignatureError(f"{what} is not an image index")
    return [e for e in entries[:MAX_REFERRERS] if isinstance(e, dict)]


def _referrers(client: RegistryClient, subject: str) -> list[dict[str, Any]]:
    """The referrer descriptors of `subject`: the referrers API, else its tag."""
    what = f"the referrers of {subject}"
    try:
        data = client.get_referrers(subject, MAX_INDEX_BYTES)
    except RegistryNotFoundError:
        try:
            data = client.get_manifest_as(referrers_tag(subject), MAX_INDEX_BYTES, OCI_INDEX)
        except RegistryNotFoundError:
            return []
        what = f"the referrers tag {referrers_tag(subject)}"
    return _index_entries(data, what)


def _chosen(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per kind, the latest signature referrer (then the greatest digest)."""
    out: dict[str, dict[str, Any]] = {}
    for e in entries:
        notes = e.get("annotations")
        if e.get("artifactType") != SIGNATURE_TYPE or not isinstance(notes, dict):
            continue
        kind = notes.get(KIND_ANNOTATION)
        if kind not in SIGNATURE_KINDS or not DIGEST.match(str(e.get("digest"))):
            continue
        key = (str(notes.get(CREATED, "")), str(e["digest"]))
        best = out.get(kind)
        if best is None or key > (
            str(best["annotations"].get(CREATED, "")),
            str(best["digest"]),
        ):
            out[kind] = e
    return out


def fetch_signatures(
    client: RegistryClient, subject: str, subject_size: int
) -> dict[str, tuple[str, bytes]]:
    """The bundles attached to the manifest `subject` (kind -> (where, bytes)),
    each checked against the digests that name it; unchecked as bundles."""
    out: dict[str, tuple[str, bytes]] = {}
    for kind, entry in sorted(_chosen(_referrers(client, subject)).items()):
        digest = str(entry["digest"])
        where = client.describe("@" + digest)
        data, _ = client.get_manifest(digest, MAX_INDEX_BYTES)
        if sha256_digest(data) != digest:
            raise SignatureError(f"signature manifest {where} is not the bytes its digest names")
        layer = _check_signature_manifest(data, where, subject, subject_size, kind)
        size, blob = layer["size"], layer["digest"]
        if size > MAX_SIGNATURE_BYTES:
            raise SignatureError(
                f"signature {where} claims {size} bytes, more than a signature may "
                f"({MAX_SIGNATURE_BYTES})"
            )
        bundle = client.get_small_blob(blob, MAX_SIGNATURE_BYTES)
        if len(bundle) != size or sha256_digest(bundle) != blob:
            raise SignatureError(
                f"signature {kind} of {subject}: registry blob {client.describe('@' + blob)} is "
                f"damaged or tampered with ({len(bundle)} bytes, {sha256_digest(bundle)})"
            )
        out[kind] = (f"{where} ({kind})", bundle)
    return out


def _check_signature_manifest(
    data: bytes, where: str, subject: str, subject_size: int, kind: str
) -> dict[str, Any]:
    try:
        obj = json.loads(data)
    except ValueError:
        raise SignatureError(f"signature manifest {where} is not JSON") from None
    if not isinstance(obj, dict) or obj.get("artifactType") != SIGNATURE_TYPE:
        raise SignatureError(f"signature manifest {where} is not a snaparc signature")
    sub = obj.get("subject")
    if not isinstance(sub, dict) or sub.get("digest") != subject or sub.get("size") != subject_size:
        raise SignatureError(f"signature manifest {where} is not attached to {subject}")
    notes = obj.get("annotations")
    if not isinstance(notes, dict) or notes.get(KIND_ANNOTATION) != kind:
        raise SignatureError(f"signature manifest {where} is not of kind {kind}")
    layers = obj.get("layers")
    if (
        not isinstance(layers, list)
        or len(layers) != 1
        or not isinstance(layers[0], dict)
        or layers[0].get("mediaType") != BUNDLE_LAYER_TYPE
        or not DIGEST.match(str(layers[0].get("digest")))
        or not isinstance(layers[0].get("size"), int)
        or isinstance(layers[0].get("size"), bool)
        or layers[0]["size"] < 0
    ):
        raise SignatureError(f"signature manifest {where} does not hold one bundle layer")
    return layers[0]
