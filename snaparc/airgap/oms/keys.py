"""PEM EC keys, as `model_signing sign key` / `verify key` take them.

Curves P-256, P-384 and P-521, each with its hash (SHA-256, SHA-384,
SHA-512) for ECDSA; a private key may be encrypted (PKCS#8 or traditional
PEM) and needs its password. The bundle names its key by a hint: the
sha256 (hex) of the public key's PEM SubjectPublicKeyInfo.
"""

from __future__ import annotations

import hashlib
import os

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from snaparc.airgap.oms.errors import OmsKeyError
from snaparc.sidefiles import read_regular_file

_MAX_KEY_BYTES = 64 * 1024
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "secp256r1": hashes.SHA256,
    "secp384r1": hashes.SHA384,
    "secp521r1": hashes.SHA512,
}


def _read(path: str | os.PathLike[str], what: str) -> bytes:
    return read_regular_file(path, limit=_MAX_KEY_BYTES, what=what, too_large=OmsKeyError)


def ecdsa_for(key: ec.EllipticCurvePublicKey) -> ec.ECDSA:
    """The ECDSA scheme model_signing pairs with the key's curve."""
    hash_class = _HASHES.get(key.curve.name)
    if hash_class is None:
        raise OmsKeyError(
            f"EC curve {key.curve.name} is not supported (model_signing takes P-256, P-384, P-521)"
        )
    return ec.ECDSA(hash_class())


def key_hint(key: ec.EllipticCurvePublicKey) -> str:
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(pem).hexdigest()


def is_encrypted_private_key(path: str | os.PathLike[str]) -> bool:
    """True when the PEM private key at `path` needs a password (PKCS#8 or traditional)."""
    data = _read(path, "private key file")
    return b"ENCRYPTED" in data.split(b"-----END", 1)[0]


def load_private_key(
    path: str | os.PathLike[str], *, password: str | None = None
) -> ec.EllipticCurvePrivateKey:
    data = _read(path, "private key file")
    try:
        key = serialization.load_pem_private_key(
            data, None if password is None else password.encode("utf-8")
        )
    except TypeError:
        if password is None:
            raise OmsKeyError(
                f"{path} is encrypted: pass --password-file (or run on a terminal)"
            ) from None
        raise OmsKeyError(f"{path} is not encrypted: leave out the password") from None
    except (ValueError, UnsupportedAlgorithm):
        raise OmsKeyError(
            f"{path} is not a PEM private key (or the password is wrong); OMS signing takes "
            "an EC key such as `openssl ecparam -name prime256v1 -genkey -noout -out key.pem`"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise OmsKeyError(
            f"{path} is a {type(key).__name__.lstrip('_')}; OMS signing (model_signing "
            "`sign key`) takes an EC key on P-256, P-384 or P-521"
        )
    ecdsa_for(key.public_key())
    return key


def load_public_key(path: str | os.PathLike[str]) -> ec.EllipticCurvePublicKey:
    data = _read(path, "public key file")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise OmsKeyError(
            f"{path} is not a PEM public key (`openssl ec -in key.pem -pubout` writes one)"
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise OmsKeyError(
            f"{path} is not an EC public key; OMS bundles are verified with an EC key "
            "on P-256, P-384 or P-521"
        )
    ecdsa_for(key)
    return key
