"""The Sigstore bundle v0.3 and its DSSE envelope, as `model_signing` writes them.

    {"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
     "verificationMaterial": {"publicKey": {"hint": HINT}, "tlogEntries": []},
     "dsseEnvelope": {"payload": BASE64(STATEMENT),
                      "payloadType": "application/vnd.in-toto+json",
                      "signatures": [{"sig": BASE64(DER ECDSA), "keyid": ""}]}}

The signature is over DSSE's pre-authentication encoding
``"DSSEv1" SP len(type) SP type SP len(payload) SP payload``. The bundle is
compact JSON with no final newline (what `model_signing` writes).

`open_bundle` takes untrusted bytes and returns the payload only once the
signature verified; a bundle with certificates (a `certificate` or
`x509CertificateChain`), a message signature instead of an envelope,
another media or payload type, several signatures or base64 that is not
strict is refused (`MalformedBundleError`), before any signature check.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec

from snaparc.airgap.oms.errors import (
    MalformedBundleError,
    OmsBadSignatureError,
    OmsKeyMismatchError,
)
from snaparc.airgap.oms.keys import ecdsa_for, key_hint
from snaparc.airgap.oms.statement import load_json, quoted

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
# A statement lists one resource per file (about 150 bytes each): 64 MiB
# holds far more files than an archive may (format/limits.py).
MAX_BUNDLE_BYTES = 64 * 1024 * 1024


def pae(payload: bytes, payload_type: str = PAYLOAD_TYPE) -> bytes:
    """DSSE v1 pre-authentication encoding."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def seal(payload: bytes, key: ec.EllipticCurvePrivateKey) -> bytes:
    """The bundle (bytes) signing `payload` with `key`."""
    public = key.public_key()
    signature = key.sign(pae(payload), ecdsa_for(public))
    bundle = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": key_hint(public)}, "tlogEntries": []},
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode("ascii"),
            "payloadType": PAYLOAD_TYPE,
            "signatures": [{"sig": base64.b64encode(signature).decode("ascii"), "keyid": ""}],
        },
    }
    return json.dumps(bundle, separators=(",", ":")).encode("utf-8")


def _fail(message: str) -> MalformedBundleError:
    return MalformedBundleError(f"OMS bundle: {message}")


def _obj(parent: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = parent.get(key)
    if not isinstance(value, dict):
        raise _fail(f"{where}{key} must be an object")
    return value


def _b64(value: Any, where: str) -> bytes:
    if not isinstance(value, str):
        raise _fail(f"{where} must be a base64 string")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise _fail(f"{where} is not valid base64") from None


@dataclass(frozen=True, slots=True)
class _Parsed:
    hint: str | None
    payload: bytes
    signature: bytes


def payload_of(data: bytes) -> bytes:
    """The payload of a well-formed key-signed bundle, its signature NOT checked."""
    return _parse(data).payload


def open_bundle(data: bytes, public_key: ec.EllipticCurvePublicKey) -> bytes:
    """The payload of a key-signed bundle, once its signature verified with `public_key`."""
    parsed = _parse(data)
    hint, payload, signature = parsed.hint, parsed.payload, parsed.signature
    expected_hint = key_hint(public_key)
    if hint and hint != expected_hint:
        raise OmsKeyMismatchError(
            f"the OMS bundle was signed by another key (hint {quoted(hint)[:72]}), "
            f"not by the public key given (hint {expected_hint})"
        )
    try:
        public_key.verify(signature, pae(payload), ecdsa_for(public_key))
    except InvalidSignature:
        raise OmsBadSignatureError(
            "the OMS bundle's signature does not verify with the public key given"
        ) from None
    return payload


def _parse(data: bytes) -> _Parsed:
    if len(data) > MAX_BUNDLE_BYTES:
        raise _fail(f"{len(data)} bytes, more than the limit of {MAX_BUNDLE_BYTES}")
    doc = load_json(data, "OMS bundle")
    if not isinstance(doc, dict):
        raise _fail("not a JSON object")
    media_type = doc.get("mediaType")
    if media_type != BUNDLE_MEDIA_TYPE:
        raise _fail(
            f"media type {quoted(str(media_type))}; snaparc reads {BUNDLE_MEDIA_TYPE!r} "
            "(what `model_signing sign key` writes)"
        )
    material = _obj(doc, "verificationMaterial", "")
    if "certificate" in material or "x509CertificateChain" in material:
        raise _fail(
            "it is certificate-based (its verification material holds certificates), but a "
            "public key was given; snaparc checks bundles made with `model_signing sign key`"
        )
    if "publicKey" not in material:
        raise _fail("verificationMaterial.publicKey is missing: not a key-signed bundle")
    hint = _obj(material, "publicKey", "verificationMaterial.").get("hint")
    if hint is not None and not isinstance(hint, str):
        raise _fail("verificationMaterial.publicKey.hint must be a string")
    if "messageSignature" in doc:
        raise _fail("it holds a message signature; OMS bundles hold a DSSE envelope")
    envelope = _obj(doc, "dsseEnvelope", "")
    if envelope.get("payloadType") != PAYLOAD_TYPE:
        raise _fail(
            f"payload type {quoted(str(envelope.get('payloadType')))}, want {PAYLOAD_TYPE!r}"
        )
    payload = _b64(envelope.get("payload"), "dsseEnvelope.payload")
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or len(signatures) != 1:
        raise _fail("dsseEnvelope.signatures must hold exactly one signature")
    if not isinstance(signatures[0], dict):
        raise _fail("dsseEnvelope.signatures[0] must be an object")
    signature = _b64(signatures[0].get("sig"), "dsseEnvelope.signatures[0].sig")
    return _Parsed(hint, payload, signature)
