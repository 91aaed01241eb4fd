"""Ed25519 signatures in minisign's exact key and signature file formats.

Files written here verify with `minisign -V`, and `minisign` keys and
signatures work here. The formats (all integers little-endian, base64 is the
standard alphabet with padding):

- public key: ``untrusted comment: <text>\\n`` then
  base64(``"Ed"`` || key id (8) || Ed25519 public key (32)).
- secret key: ``untrusted comment: <text>\\n`` then base64(sig alg ``"Ed"`` ||
  kdf alg (``"Sc"`` scrypt or ``"\\0\\0"`` none) || checksum alg ``"B2"`` ||
  kdf salt (32) || opslimit u64 || memlimit u64 || key id (8) || Ed25519
  secret key (seed 32 || public 32) || checksum (32)), where checksum =
  BLAKE2b-256(sig alg || key id || secret key). For ``"Sc"`` keys the last
  104 bytes are XORed with scrypt(password, salt, N, r, p) derived from
  opslimit/memlimit as libsodium's ``crypto_pwhash_scryptsalsa208sha256`` does.
  ``minisign -G -W`` (unencrypted) writes zeros for salt, limits and checksum.
- signature: ``untrusted comment: <text>\\n``, base64(``"ED"`` || key id ||
  Ed25519 signature of BLAKE2b-512(file)) ``\\n``, ``trusted comment: <text>\\n``,
  base64(Ed25519 signature of (file signature || trusted comment bytes)) ``\\n``.
  Legacy ``"Ed"`` signatures sign the raw file instead; they verify here but
  are never written, and files over 1 GiB are refused for them (as minisign does).

Every failure that concerns a key or a signature raises a `SignatureError`
subclass (exit code 11); a missing input file raises `InputNotFoundError`
(exit 2), one that is not a regular file (a FIFO, a directory) raises
`NotRegularFileError` (exit 2) before it is read (`snaparc.sidefiles`);
an existing key file without `force` raises `DestinationError`.
Files are hashed in 1 MiB reads, so multi-GB archives use constant memory.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import struct
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from snaparc.errors import DestinationError, SignatureError, UsageError
from snaparc.publish import os_error, write_file_atomic
from snaparc.sidefiles import open_regular_file, read_regular_file

SIG_SUFFIX = ".minisig"
UNTRUSTED_PREFIX = "untrusted comment: "
TRUSTED_PREFIX = "trusted comment: "

SIGALG = b"Ed"
SIGALG_HASHED = b"ED"
KDF_SCRYPT = b"Sc"
KDF_NONE = b"\0\0"
CHKALG = b"B2"

KEY_ID_BYTES = 8
PUBLIC_KEY_BYTES = 2 + KEY_ID_BYTES + 32  # 42
SECRET_KEY_BYTES = 2 + 2 + 2 + 32 + 8 + 8 + KEY_ID_BYTES + 64 + 32  # 158
SIGNATURE_BYTES = 2 + KEY_ID_BYTES + 64  # 74
_KEYNUM_SK_OFFSET = 2 + 2 + 2 + 32 + 8 + 8  # 54
_KEYNUM_SK_BYTES = KEY_ID_BYTES + 64 + 32  # 104

TRUSTED_COMMENT_MAX_BYTES = 8192 - len(TRUSTED_PREFIX) - 1  # minisign's buffer
COMMENT_MAX_BYTES = 1024 - len(UNTRUSTED_PREFIX) - 1
LEGACY_MAX_FILE_BYTES = 1 << 30
_MAX_TEXT_FILE_BYTES = 64 * 1024  # key and signature files are far smaller
_READ_SIZE = 1 << 20
_SCRYPT_MAXMEM_LIMIT = (1 << 31) - 1  # hashlib.scrypt's maxmem must fit an int


class MalformedKeyError(SignatureError):
    """A key file or key string that is not in minisign's format."""


class MalformedSignatureError(SignatureError):
    """A signature file that is not in minisign's format."""


class MissingSignatureError(SignatureError, FileNotFoundError):
    """The signature file does not exist."""


class KeyMismatchError(SignatureError):
    """The signature was made by a different key than the one given."""


class BadSignatureError(SignatureError):
    """The file or its trusted comment does not match the signature."""


class SecretKeyPasswordError(SignatureError):
    """An encrypted secret key needs a password, or the password is wrong."""


@dataclass(frozen=True)
class PublicKey:
    """A minisign public key: 8-byte key id and the raw Ed25519 key."""

    key_id: bytes
    public_bytes: bytes

    @property
    def key_id_hex(self) -> str:
        return key_id_hex(self.key_id)

    def to_text(self) -> str:
        """The public key file text, as `minisign -G` writes it."""
        blob = SIGALG + self.key_id + self.public_bytes
        return (
            f"{UNTRUSTED_PREFIX}minisign public key {self.key_id_hex}\n"
            f"{base64.b64encode(blob).decode('ascii')}\n"
        )


@dataclass(frozen=True)
class SecretKey:
    """A decrypted minisign secret key."""

    key_id: bytes
    private_key: Ed25519PrivateKey

    @property
    def key_id_hex(self) -> str:
        return key_id_hex(self.key_id)

    def public_key(self) -> PublicKey:
        raw = self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return PublicKey(self.key_id, raw)


@dataclass(frozen=True)
class VerifiedSignature:
    """What a successful `verify_file` vouches for.

    `key_id` is minisign's display form (16 upper-case hex digits of the
    little-endian key id); `trusted_comment` was covered by the signature;
    `prehashed` is False only for legacy ``"Ed"`` signatures.
    """

    key_id: str
    trusted_comment: str
    prehashed: bool = True


def key_id_hex(key_id: bytes) -> str:
    """minisign's display of a key id: the little-endian u64 in upper-case hex,
    without leading zeros (minisign prints it with `%" PRIX64 "`)."""
    return f"{int.from_bytes(key_id, 'little'):X}"


# --- keys ----------------------------------------------------------------------


def generate_keypair(comment: str = "snaparc secret key (minisign format)") -> tuple[str, str]:
    """Return (public key text, secret key text) for a new, unencrypted key pair.

    The secret key is in the format of `minisign -G -W` (kdf ``"\\0\\0"``) but
    carries a real checksum, which minisign ignores for unencrypted keys and
    this module verifies. `comment` becomes the secret key's untrusted comment.
    """
    _check_comment(comment, "comment")
    private = Ed25519PrivateKey.generate()
    key_id = secrets.token_bytes(KEY_ID_BYTES)
    seed = private.private_bytes_raw()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    sk = seed + public
    chk = _secret_key_checksum(key_id, sk)
    blob = (
        SIGALG
        + KDF_NONE
        + CHKALG
        + bytes(32)  # salt
        + bytes(8)  # opslimit
        + bytes(8)  # memlimit
        + key_id
        + sk
        + chk
    )
    assert len(blob) == SECRET_KEY_BYTES
    secret_text = f"{UNTRUSTED_PREFIX}{comment}\n{base64.b64encode(blob).decode('ascii')}\n"
    return PublicKey(key_id, public).to_text(), secret_text


def write_keypair(
    pub_path: str | os.PathLike[str],
    sec_path: str | os.PathLike[str],
    *,
    force: bool = False,
    comment: str = "snaparc secret key (minisign format)",
) -> str:
    """Generate a key pair, write both files atomically, return the key id (hex).

    The secret key file is created with mode 0600. Without `force`, an existing
    file at either path raises DestinationError and nothing is written.
    """
    pub, sec = Path(pub_path), Path(sec_path)
    if pub.resolve() == sec.resolve():
        raise DestinationError("the public and secret key paths must differ", path=str(pub))
    if not force:
        for p in (pub, sec):
            if p.exists() or p.is_symlink():
                raise DestinationError(
                    f"{p} already exists (use --force to replace it)", path=str(p)
                )
    public_text, secret_text = generate_keypair(comment)
    write_file_atomic(sec, secret_text.encode(), mode=0o600, overwrite=force)
    try:
        write_file_atomic(pub, public_text.encode(), mode=0o644, overwrite=force)
    except BaseException:
        sec.unlink(missing_ok=True)
        raise
    return load_public_key(public_text).key_id_hex


def load_public_key(source: str | os.PathLike[str]) -> PublicKey:
    """Parse a public key from a path, a key file's text, or a bare base64 key.

    A `str` containing a newline is key file text; a `str` that decodes to a
    42-byte ``"Ed"`` key is the bare key (as `minisign -P` takes it); any
    other `str` and every path-like is a file path.
    """
    if isinstance(source, str) and "\n" in source:
        lines = source.splitlines()
        if len(lines) < 2:
            raise MalformedKeyError("public key text needs a comment line and a key line")
        return _parse_public_key_line(lines[1], "public key text")
    if isinstance(source, str):
        bare = source.strip()
        if len(bare) == 56 and not os.path.exists(bare):
            return _parse_public_key_line(bare, "public key string")
    path = Path(source)
    lines = _read_key_lines(path, "public key")
    return _parse_public_key_line(lines[1], str(path))


def is_encrypted_secret_key(path: str | os.PathLike[str]) -> bool:
    """True when the secret key file at `path` is password-protected (kdf ``"Sc"``)."""
    blob = _secret_key_blob(Path(path))
    return blob[2:4] == KDF_SCRYPT


def load_secret_key(
    path: str | os.PathLike[str], *, password: str | bytes | None = None
) -> SecretKey:
    """Read and check a minisign secret key file.

    Unencrypted keys need no password. Encrypted (``"Sc"``) keys are decrypted
    with scrypt (about 1 GiB of memory and a few seconds for minisign's
    defaults) and need `password`; without one, or with a wrong one,
    SecretKeyPasswordError is raised. The key's checksum and the consistency
    of its Ed25519 halves are always checked.
    """
    path = Path(path)
    blob = _secret_key_blob(path)
    sig_alg, kdf_alg, chk_alg = blob[0:2], blob[2:4], blob[4:6]
    if sig_alg != SIGALG:
        raise MalformedKeyError(f"{path}: unsupported signature algorithm {sig_alg!r}")
    if chk_alg != CHKALG:
        raise MalformedKeyError(f"{path}: unsupported checksum algorithm {chk_alg!r}")
    keynum_sk = blob[_KEYNUM_SK_OFFSET:]
    if kdf_alg == KDF_SCRYPT:
        if password is None:
            raise SecretKeyPasswordError(
                f"{path} is encrypted and needs its password "
                "(or use a key made with `minisign -G -W` / `snaparc keygen`)"
            )
        salt = blob[6:38]
        opslimit, memlimit = struct.unpack("<QQ", blob[38:54])
        stream = _scrypt_stream(password, salt, opslimit, memlimit, path)
        keynum_sk = bytes(a ^ b for a, b in zip(keynum_sk, stream, strict=True))
    elif kdf_alg != KDF_NONE:
        raise MalformedKeyError(f"{path}: unsupported key derivation function {kdf_alg!r}")
    key_id = keynum_sk[:KEY_ID_BYTES]
    sk = keynum_sk[KEY_ID_BYTES : KEY_ID_BYTES + 64]
    chk = keynum_sk[KEY_ID_BYTES + 64 :]
    expected = _secret_key_checksum(key_id, sk)
    if kdf_alg == KDF_SCRYPT:
        if not hmac.compare_digest(chk, expected):
            raise SecretKeyPasswordError(f"{path}: wrong password for this secret key")
    elif chk != bytes(32) and not hmac.compare_digest(chk, expected):
        raise MalformedKeyError(f"{path}: secret key checksum mismatch (corrupt key file)")
    private = Ed25519PrivateKey.from_private_bytes(sk[:32])
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    if not hmac.compare_digest(public, sk[32:]):
        raise MalformedKeyError(f"{path}: secret key halves disagree (corrupt key file)")
    return SecretKey(key_id, private)


def scrypt_params(opslimit: int, memlimit: int) -> tuple[int, int, int]:
    """(N, r, p) for libsodium's scryptsalsa208sha256 limits (its `pickparams`)."""
    opslimit = max(opslimit, 32768)
    r = 8
    if opslimit < memlimit // 32:
        p = 1
        max_n = opslimit // (r * 4)
        n_log2 = 1
        while n_log2 < 63 and (1 << n_log2) <= max_n // 2:
            n_log2 += 1
    else:
        max_n = memlimit // (r * 128)
        n_log2 = 1
        while n_log2 < 63 and (1 << n_log2) <= max_n // 2:
            n_log2 += 1
        max_rp = min((opslimit // 4) // (1 << n_log2), 0x3FFFFFFF)
        p = max_rp // r
    return 1 << n_log2, r, p


def _scrypt_stream(
    password: str | bytes, salt: bytes, opslimit: int, memlimit: int, path: Path
) -> bytes:
    n, r, p = scrypt_params(opslimit, memlimit)
    if p < 1:
        raise MalformedKeyError(f"{path}: invalid scrypt limits in the secret key")
    needed = 128 * r * (n + p + 2) + (1 << 20)
    if needed > _SCRYPT_MAXMEM_LIMIT:
        raise SecretKeyPasswordError(
            f"{path}: its scrypt parameters need {needed >> 20} MiB, more than supported; "
            "remove the password with `minisign -C -W -s KEY` and retry"
        )
    pw = password.encode() if isinstance(password, str) else password
    try:
        return hashlib.scrypt(pw, salt=salt, n=n, r=r, p=p, maxmem=needed, dklen=_KEYNUM_SK_BYTES)
    except (ValueError, MemoryError) as exc:
        raise SecretKeyPasswordError(f"{path}: cannot derive the key: {exc}") from exc


def _secret_key_checksum(key_id: bytes, sk: bytes) -> bytes:
    return hashlib.blake2b(SIGALG + key_id + sk, digest_size=32).digest()


def _secret_key_blob(path: Path) -> bytes:
    lines = _read_key_lines(path, "secret key")
    blob = _b64(lines[1], MalformedKeyError, f"{path}: secret key is not valid base64")
    if len(blob) != SECRET_KEY_BYTES:
        raise MalformedKeyError(
            f"{path}: not a minisign secret key ({len(blob)} bytes, want {SECRET_KEY_BYTES})"
        )
    return blob


def _parse_public_key_line(line: str, where: str) -> PublicKey:
    blob = _b64(line, MalformedKeyError, f"{where}: public key is not valid base64")
    if len(blob) != PUBLIC_KEY_BYTES:
        raise MalformedKeyError(
            f"{where}: not a minisign public key ({len(blob)} bytes, want {PUBLIC_KEY_BYTES})"
        )
    if blob[:2] != SIGALG:
        raise MalformedKeyError(f"{where}: unsupported signature algorithm {blob[:2]!r}")
    return PublicKey(blob[2 : 2 + KEY_ID_BYTES], blob[2 + KEY_ID_BYTES :])


def _read_key_lines(path: Path, what: str) -> list[str]:
    data = read_regular_file(
        path, limit=_MAX_TEXT_FILE_BYTES, what=f"{what} file", too_large=MalformedKeyError
    )
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        # The comment line may hold any bytes; only the key line must be ASCII.
        text = data.decode("latin-1")
    lines = text.splitlines()
    if len(lines) < 2:
        raise MalformedKeyError(f"{path}: a {what} file has a comment line and a key line")
    return lines


def read_password_file(path: str | os.PathLike[str]) -> str:
    """The password of an encrypted secret key: the first line of the regular
    file `path`, without its line end (empty for an empty file)."""
    data = read_regular_file(path, limit=_MAX_TEXT_FILE_BYTES, what="password file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"password file {path} is not UTF-8 text", path=str(path)) from None
    lines = text.splitlines()
    return lines[0] if lines else ""


def _b64(text: str, error: type[SignatureError], message: str) -> bytes:
    try:
        return base64.b64decode(text.strip().encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise error(message) from None


def _check_comment(text: str, what: str, limit: int = COMMENT_MAX_BYTES) -> None:
    if "\n" in text or "\r" in text:
        raise SignatureError(f"the {what} must be a single line")
    if len(text.encode()) > limit:
        raise SignatureError(f"the {what} is longer than {limit} bytes")


# --- signing and verification --------------------------------------------------


def sign_file(
    path: str | os.PathLike[str],
    secret_key_path: str | os.PathLike[str],
    trusted_comment: str | None = None,
    *,
    password: str | bytes | None = None,
    untrusted_comment: str = "signature from snaparc (minisign format)",
    sig_path: str | os.PathLike[str] | None = None,
) -> Path:
    """Sign `path` (prehashed ``"ED"``), atomically writing `path + ".minisig"`.

    The default trusted comment is minisign's: ``timestamp:<unix>\\tfile:<name>\\thashed``.
    An existing signature file is replaced. Returns the signature path.
    """
    path = Path(path)
    key = load_secret_key(secret_key_path, password=password)
    if trusted_comment is None:
        trusted_comment = f"timestamp:{int(time.time())}\tfile:{path.name}\thashed"
    _check_comment(trusted_comment, "trusted comment", TRUSTED_COMMENT_MAX_BYTES)
    _check_comment(untrusted_comment, "untrusted comment")
    digest = _blake2b_file(path, "file to sign")
    signature = key.private_key.sign(digest)
    global_sig = key.private_key.sign(signature + trusted_comment.encode())
    text = (
        f"{UNTRUSTED_PREFIX}{untrusted_comment}\n"
        f"{base64.b64encode(SIGALG_HASHED + key.key_id + signature).decode('ascii')}\n"
        f"{TRUSTED_PREFIX}{trusted_comment}\n"
        f"{base64.b64encode(global_sig).decode('ascii')}\n"
    )
    out = Path(sig_path) if sig_path is not None else path.with_name(path.name + SIG_SUFFIX)
    return write_file_atomic(out, text.encode(), mode=0o644, overwrite=True)


def verify_file(
    path: str | os.PathLike[str],
    public_key: str | os.PathLike[str] | PublicKey,
    sig_path: str | os.PathLike[str] | None = None,
    *,
    allow_legacy: bool = True,
) -> VerifiedSignature:
    """Verify `path` against its minisign signature (default `path + ".minisig"`).

    `public_key` is a PublicKey, a key file path, key file text or a bare
    base64 key (see `load_public_key`). Both the file signature and the global
    signature over the trusted comment must verify; otherwise a SignatureError
    subclass says why (missing signature file, malformed key or signature, key
    id mismatch, bad signature). The signature file is parsed and the key ids
    compared before the (possibly multi-GB) file is hashed.
    """
    path = Path(path)
    sig_file = Path(sig_path) if sig_path is not None else path.with_name(path.name + SIG_SUFFIX)
    key = public_key if isinstance(public_key, PublicKey) else load_public_key(public_key)
    sig = _parse_signature_file(sig_file)
    if sig.algorithm == SIGALG and not allow_legacy:
        raise BadSignatureError(f"{sig_file}: legacy (non-prehashed) signature refused")
    if sig.key_id != key.key_id:
        raise KeyMismatchError(
            f"{sig_file} was made by key {key_id_hex(sig.key_id)}, "
            f"but the public key is {key.key_id_hex}"
        )
    hashed = sig.algorithm == SIGALG_HASHED
    message = _blake2b_file(path, "file to verify") if hashed else _read_legacy_file(path)
    verifier = Ed25519PublicKey.from_public_bytes(key.public_bytes)
    try:
        verifier.verify(sig.signature, message)
    except InvalidSignature:
        raise BadSignatureError(
            f"signature verification failed for {path}: the file does not match {sig_file}"
        ) from None
    try:
        verifier.verify(sig.global_signature, sig.signature + sig.trusted_comment)
    except InvalidSignature:
        raise BadSignatureError(
            f"trusted comment signature verification failed in {sig_file}"
        ) from None
    return VerifiedSignature(
        key_id=key.key_id_hex,
        trusted_comment=sig.trusted_comment.decode("utf-8", errors="replace"),
        prehashed=sig.algorithm == SIGALG_HASHED,
    )


@dataclass(frozen=True)
class _ParsedSignature:
    algorithm: bytes
    key_id: bytes
    signature: bytes
    trusted_comment: bytes
    global_signature: bytes


def _parse_signature_file(sig_file: Path) -> _ParsedSignature:
    data = read_regular_file(
        sig_file,
        limit=_MAX_TEXT_FILE_BYTES,
        what="signature file",
        missing=MissingSignatureError,
        too_large=MalformedSignatureError,
    )
    lines = [line.rstrip(b"\r") for line in data.split(b"\n")]
    if len(lines) < 4:
        raise MalformedSignatureError(f"{sig_file}: a minisign signature has four lines")
    untrusted, sig_line, trusted, global_line = lines[:4]
    if not untrusted.startswith(UNTRUSTED_PREFIX.encode()):
        raise MalformedSignatureError(
            f"{sig_file}: the first line must start with {UNTRUSTED_PREFIX!r}"
        )
    if not trusted.startswith(TRUSTED_PREFIX.encode()):
        raise MalformedSignatureError(
            f"{sig_file}: the third line must start with {TRUSTED_PREFIX!r}"
        )
    comment = trusted[len(TRUSTED_PREFIX) :]
    if len(comment) > TRUSTED_COMMENT_MAX_BYTES:
        raise MalformedSignatureError(f"{sig_file}: trusted comment too long")
    bad = f"{sig_file}: signature is not valid base64"
    blob = _b64(sig_line.decode("latin-1"), MalformedSignatureError, bad)
    global_sig = _b64(global_line.decode("latin-1"), MalformedSignatureError, bad)
    if len(blob) != SIGNATURE_BYTES or len(global_sig) != 64:
        raise MalformedSignatureError(f"{sig_file}: signature has the wrong length")
    algorithm = blob[:2]
    if algorithm not in (SIGALG, SIGALG_HASHED):
        raise MalformedSignatureError(f"{sig_file}: unsupported signature algorithm {algorithm!r}")
    return _ParsedSignature(
        algorithm=algorithm,
        key_id=blob[2 : 2 + KEY_ID_BYTES],
        signature=blob[2 + KEY_ID_BYTES :],
        trusted_comment=comment,
        global_signature=global_sig,
    )


def _blake2b_file(path: Path, what: str) -> bytes:
    """BLAKE2b-512 of the regular file `path`, read in 1 MiB chunks."""
    h = hashlib.blake2b(digest_size=64)
    buf = bytearray(_READ_SIZE)
    view = memoryview(buf)
    with open_regular_file(path, what=what) as f:
        try:
            while n := f.readinto(buf):
                h.update(view[:n])
        except OSError as exc:
            raise os_error(exc, f"reading {path}", path=path) from exc
    return h.digest()


def _read_legacy_file(path: Path) -> bytes:
    """The whole file a legacy ``"Ed"`` signature signs (at most 1 GiB, as minisign)."""

    def too_large(message: str, *, path: str) -> BadSignatureError:
        return BadSignatureError(
            f"{path}: legacy (non-prehashed) signatures are refused for files over 1 GiB",
            path=path,
        )

    return read_regular_file(
        path, limit=LEGACY_MAX_FILE_BYTES, what="file to verify", too_large=too_large
    )
