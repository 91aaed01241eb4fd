"""OpenSSF model signing (OMS) bundles, made and checked from an archive's manifest.

An OMS signature (`sigstore/model-transparency`, CLI `model_signing`) is a
Sigstore bundle v0.3 holding a DSSE envelope whose payload is an in-toto
Statement v1 with predicate type ``https://model_signing/signature/v1.0``:
the predicate lists every file of the model directory with its digest (the
``files`` serialization), and the subject digest is the sha256 over those
digests in order. The manifest already holds every file's sha256 and
blake3, so a bundle is made and checked here without reading the payload.

- `snaparc.airgap.oms.statement`: the in-toto statement, built and parsed
  (pure: bytes in, bytes out; a hostile statement raises `MalformedBundleError`).
- `snaparc.airgap.oms.envelope`: the bundle and its DSSE envelope (PAE,
  ECDSA), built and opened.
- `snaparc.airgap.oms.keys`: PEM EC keys (P-256, P-384, P-521, as
  `model_signing sign key` takes them).
- `snaparc.airgap.oms.tree`: which manifest files a bundle covers
  (model_signing's ignore rules) and the comparison with a bundle.
- `snaparc.airgap.oms.sign`: `write_bundle` and `check_bundle`, the two
  operations the API calls.

Every failure is a `SignatureError` subclass (exit 11), see `errors`.
"""

from __future__ import annotations

import os
from pathlib import Path

BUNDLE_SUFFIX = ".oms.json"
HUB_BUNDLE_SUFFIX = ".hub.oms.json"


def bundle_path_for(archive_path: str | os.PathLike[str], *, hub: bool = False) -> Path:
    """Where the OMS bundle of an archive lives: ``X.dlmsnap.oms.json`` (the
    archive's tree), ``X.dlmsnap.hub.oms.json`` with `hub` (the tree of the
    hub-cache snapshot `materialize --hf-cache` makes of it).

    A split archive (named by its base name, its index or any volume) has its
    bundles beside its volumes, named after its base name.
    """
    from snaparc.airgap.volumes import INDEX_SUFFIX, split_index_path

    p = Path(archive_path)
    index = split_index_path(p)
    if index is not None and index.is_file():
        p = index.with_name(index.name[: -len(INDEX_SUFFIX)])
    return p.with_name(p.name + (HUB_BUNDLE_SUFFIX if hub else BUNDLE_SUFFIX))
