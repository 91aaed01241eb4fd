"""The ways an OMS bundle is refused; each is a `SignatureError` (exit 11)."""

from __future__ import annotations

from snaparc.errors import SignatureError


class MalformedBundleError(SignatureError):
    """Not a model_signing bundle snaparc can check: bad JSON, a wrong media
    or payload type, an unknown predicate, a size over the limits, a
    certificate where a key was asked for."""


class OmsKeyError(SignatureError):
    """A PEM key that cannot be used: unreadable, encrypted without a
    password, or not an EC key on P-256, P-384 or P-521."""


class OmsKeyMismatchError(SignatureError):
    """The bundle names (by its public-key hint) another key than the one given."""


class OmsBadSignatureError(SignatureError):
    """The envelope's signature does not verify with the public key."""


class OmsMismatchError(SignatureError):
    """The bundle and the archive's manifest disagree: a file missing on one
    side, or a different digest. `files` names them."""

    def __init__(self, message: str, *, files: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.files = files
