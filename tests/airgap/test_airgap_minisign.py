"""minisign key/signature formats: interop with the real binary, both ways."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import stat
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from snaparc.airgap import minisign as ms
from snaparc.errors import DestinationError, InputNotFoundError, SignatureError

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    p = tmp_path / "snap.dlmsnap"
    p.write_bytes(os.urandom(3 << 20) + b"tail")  # > one 1 MiB read
    return p


def _minisign_keypair(tmp_path: Path, minisign: str, run: Run) -> tuple[Path, Path]:
    pub, sec = tmp_path / "mpub", tmp_path / "msec"
    r = run([minisign, "-G", "-W", "-p", pub, "-s", sec])
    assert r.returncode == 0, r.stderr
    return pub, sec


def test_minisign_key_signed_by_us_verifies_with_minisign(
    tmp_path: Path, data_file: Path, minisign: str, run: Run
) -> None:
    pub, sec = _minisign_keypair(tmp_path, minisign, run)
    sig = ms.sign_file(data_file, sec, "release 1\twith tab")
    assert sig == tmp_path / "snap.dlmsnap.minisig"
    r = run([minisign, "-Vm", data_file, "-p", pub])
    assert r.returncode == 0, r.stderr
    assert "release 1\twith tab" in r.stdout
    # -H: minisign requires a prehashed signature; ours are.
    assert run([minisign, "-V", "-H", "-m", data_file, "-p", pub]).returncode == 0


def test_our_keypair_and_signature_verify_with_minisign(
    tmp_path: Path, data_file: Path, minisign: str, run: Run
) -> None:
    pub, sec = tmp_path / "k.pub", tmp_path / "k.key"
    key_id = ms.write_keypair(pub, sec)
    assert pub.read_text().startswith(f"untrusted comment: minisign public key {key_id}\n")
    ms.sign_file(data_file, sec)
    r = run([minisign, "-Vm", data_file, "-p", pub])
    assert r.returncode == 0, r.stderr
    assert f"file:{data_file.name}\thashed" in r.stdout
    bare = pub.read_text().splitlines()[1]
    assert run([minisign, "-Vm", data_file, "-P", bare]).returncode == 0
    # minisign can also sign with our secret key, and we verify that.
    r = run([minisign, "-S", "-s", sec, "-m", data_file, "-t", "signed by minisign"])
    assert r.returncode == 0, r.stderr
    assert ms.verify_file(data_file, pub).trusted_comment == "signed by minisign"
    # ... and recreate our public key from our secret key.
    r = run([minisign, "-R", "-s", sec, "-p", tmp_path / "re.pub"])
    assert r.returncode == 0, r.stderr
    assert ms.load_public_key(tmp_path / "re.pub") == ms.load_public_key(pub)


def test_minisign_signature_verifies_with_us(
    tmp_path: Path, data_file: Path, minisign: str, run: Run
) -> None:
    pub, sec = _minisign_keypair(tmp_path, minisign, run)
    r = run([minisign, "-S", "-s", sec, "-m", data_file, "-t", "from minisign"])
    assert r.returncode == 0, r.stderr
    v = ms.verify_file(data_file, pub)
    expected_id = pub.read_text().splitlines()[0].rsplit(" ", 1)[1]
    assert v == ms.VerifiedSignature(key_id=expected_id, trusted_comment="from minisign")
    # The key as text and as a bare base64 string work too.
    assert ms.verify_file(data_file, pub.read_text()) == v
    assert ms.verify_file(data_file, pub.read_text().splitlines()[1]) == v


def test_minisign_legacy_signature_verifies_unless_refused(
    tmp_path: Path, data_file: Path, minisign: str, run: Run
) -> None:
    pub, sec = _minisign_keypair(tmp_path, minisign, run)
    r = run([minisign, "-S", "-l", "-s", sec, "-m", data_file, "-t", "legacy"])
    assert r.returncode == 0, r.stderr
    v = ms.verify_file(data_file, pub)
    assert (v.trusted_comment, v.prehashed) == ("legacy", False)
    with pytest.raises(ms.BadSignatureError, match="legacy"):
        ms.verify_file(data_file, pub, allow_legacy=False)
    data_file.write_bytes(data_file.read_bytes() + b"x")
    with pytest.raises(ms.BadSignatureError):
        ms.verify_file(data_file, pub)


def test_tampered_file_is_rejected_by_us_and_minisign(
    tmp_path: Path, data_file: Path, minisign: str, run: Run
) -> None:
    pub, sec = _minisign_keypair(tmp_path, minisign, run)
    ms.sign_file(data_file, sec)
    with open(data_file, "r+b") as f:
        f.seek(2 << 20)
        byte = f.read(1)
        f.seek(2 << 20)
        f.write(bytes([byte[0] ^ 1]))
    with pytest.raises(ms.BadSignatureError, match="does not match"):
        ms.verify_file(data_file, pub)
    assert run([minisign, "-Vm", data_file, "-p", pub]).returncode != 0


def test_tampered_trusted_comment_is_rejected(
    tmp_path: Path, data_file: Path, minisign: str, run: Run
) -> None:
    pub, sec = _minisign_keypair(tmp_path, minisign, run)
    sig = ms.sign_file(data_file, sec, "version 1")
    sig.write_text(sig.read_text().replace("version 1", "version 2"))
    with pytest.raises(ms.BadSignatureError, match="trusted comment"):
        ms.verify_file(data_file, pub)
    assert run([minisign, "-Vm", data_file, "-p", pub]).returncode != 0
    # The untrusted comment is not covered: changing it is harmless.
    sig2 = ms.sign_file(data_file, sec, "version 1")
    lines = sig2.read_text().splitlines(keepends=True)
    sig2.write_text("untrusted comment: anything at all\n" + "".join(lines[1:]))
    assert ms.verify_file(data_file, pub).trusted_comment == "version 1"


def test_wrong_key_is_rejected(tmp_path: Path, data_file: Path) -> None:
    ms.write_keypair(tmp_path / "a.pub", tmp_path / "a.key")
    ms.write_keypair(tmp_path / "b.pub", tmp_path / "b.key")
    ms.sign_file(data_file, tmp_path / "a.key")
    with pytest.raises(ms.KeyMismatchError, match="made by key"):
        ms.verify_file(data_file, tmp_path / "b.pub")
    # Same key id, different key: the signature itself fails.
    a, b = ms.load_public_key(tmp_path / "a.pub"), ms.load_public_key(tmp_path / "b.pub")
    forged = ms.PublicKey(a.key_id, b.public_bytes)
    with pytest.raises(ms.BadSignatureError):
        ms.verify_file(data_file, forged)
    with pytest.raises(SignatureError):
        ms.verify_file(data_file, forged.to_text())


def test_missing_and_malformed_inputs(tmp_path: Path, data_file: Path) -> None:
    ms.write_keypair(tmp_path / "k.pub", tmp_path / "k.key")
    with pytest.raises(ms.MissingSignatureError):
        ms.verify_file(data_file, tmp_path / "k.pub")
    with pytest.raises(InputNotFoundError):
        ms.verify_file(data_file, tmp_path / "nope.pub")
    with pytest.raises(InputNotFoundError):
        ms.sign_file(tmp_path / "nope", tmp_path / "k.key")
    sig = ms.sign_file(data_file, tmp_path / "k.key")
    good = sig.read_text()
    lines = good.splitlines()
    for broken in (
        "",
        "\n".join(lines[:2]),
        good.replace("untrusted comment:", "comment:"),
        good.replace("trusted comment:", "trusted:"),
        "\n".join([lines[0], lines[1][:-4], *lines[2:]]),
        "\n".join([lines[0], "!!!!" + lines[1][4:], *lines[2:]]),
        "\n".join([lines[0], base64.b64encode(b"XX" + bytes(72)).decode(), *lines[2:]]),
        "\n".join([*lines[:3], lines[3][:-8]]),
        "x" * (70 * 1024),
    ):
        sig.write_text(broken)
        with pytest.raises(ms.MalformedSignatureError):
            ms.verify_file(data_file, tmp_path / "k.pub")
    for bad_key in ("just one line\n", "c\nnot base64!\n", "c\n" + "A" * 56 + "\n"):
        with pytest.raises(ms.MalformedKeyError):
            ms.load_public_key(bad_key)


def test_signature_files_with_crlf_line_ends_verify(tmp_path: Path, data_file: Path) -> None:
    ms.write_keypair(tmp_path / "k.pub", tmp_path / "k.key")
    sig = ms.sign_file(data_file, tmp_path / "k.key", "c")
    sig.write_bytes(sig.read_bytes().replace(b"\n", b"\r\n"))
    assert ms.verify_file(data_file, tmp_path / "k.pub").trusted_comment == "c"


def test_comments_must_be_single_lines(tmp_path: Path, data_file: Path) -> None:
    ms.write_keypair(tmp_path / "k.pub", tmp_path / "k.key")
    with pytest.raises(SignatureError, match="single line"):
        ms.sign_file(data_file, tmp_path / "k.key", "two\nlines")
    with pytest.raises(SignatureError, match="longer"):
        ms.sign_file(data_file, tmp_path / "k.key", "x" * 9000)
    assert not (tmp_path / "snap.dlmsnap.minisig").exists()


def test_write_keypair_is_private_and_refuses_to_overwrite(tmp_path: Path) -> None:
    pub, sec = tmp_path / "k.pub", tmp_path / "k.key"
    key_id = ms.write_keypair(pub, sec)
    assert stat.S_IMODE(sec.stat().st_mode) == 0o600
    before = (pub.read_bytes(), sec.read_bytes())
    with pytest.raises(DestinationError):
        ms.write_keypair(pub, sec)
    with pytest.raises(DestinationError):
        ms.write_keypair(tmp_path / "other.pub", sec)
    assert (pub.read_bytes(), sec.read_bytes()) == before
    assert not (tmp_path / "other.pub").exists()
    assert ms.write_keypair(pub, sec, force=True) != key_id
    assert stat.S_IMODE(sec.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_corrupt_secret_key_is_detected(tmp_path: Path) -> None:
    ms.write_keypair(tmp_path / "k.pub", tmp_path / "k.key")
    comment, line = (tmp_path / "k.key").read_text().splitlines()
    blob = bytearray(base64.b64decode(line))
    blob[70] ^= 1  # inside the secret key
    (tmp_path / "bad.key").write_text(f"{comment}\n{base64.b64encode(blob).decode()}\n")
    with pytest.raises(ms.MalformedKeyError, match="checksum"):
        ms.load_secret_key(tmp_path / "bad.key")
    blob[126:158] = bytes(32)  # as `minisign -G -W` writes: no checksum ...
    (tmp_path / "bad.key").write_text(f"{comment}\n{base64.b64encode(blob).decode()}\n")
    with pytest.raises(ms.MalformedKeyError, match="halves disagree"):  # ... still caught
        ms.load_secret_key(tmp_path / "bad.key")


def test_scrypt_params_match_libsodium() -> None:
    # minisign's defaults (OPSLIMIT/MEMLIMIT_SENSITIVE) and INTERACTIVE.
    assert ms.scrypt_params(33554432, 1073741824) == (1 << 20, 8, 1)
    assert ms.scrypt_params(524288, 16777216) == (1 << 14, 8, 1)
    assert ms.scrypt_params(1, 1 << 30) == (1 << 10, 8, 1)  # opslimit floor 32768


def _encrypt_key(sec: Path, out: Path, password: str, opslimit: int, memlimit: int) -> None:
    """Write `sec` (unencrypted) as an "Sc" key, as minisign's encrypt_key does."""
    comment, line = sec.read_text().splitlines()
    blob = bytearray(base64.b64decode(line))
    salt = secrets.token_bytes(32)
    n, r, p = ms.scrypt_params(opslimit, memlimit)
    stream = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=1 << 30, dklen=104)
    keynum_sk = bytes(a ^ b for a, b in zip(blob[54:], stream, strict=True))
    blob[2:4] = b"Sc"
    blob[6:54] = salt + struct.pack("<QQ", opslimit, memlimit)
    blob[54:] = keynum_sk
    out.write_text(f"{comment}\n{base64.b64encode(blob).decode()}\n")


def test_encrypted_key_interop_with_small_params(
    tmp_path: Path, data_file: Path, minisign: str, run: Run
) -> None:
    ms.write_keypair(tmp_path / "k.pub", tmp_path / "k.key")
    enc = tmp_path / "enc.key"
    _encrypt_key(tmp_path / "k.key", enc, "hunter2", 524288, 16777216)
    assert ms.is_encrypted_secret_key(enc)
    with pytest.raises(ms.SecretKeyPasswordError, match="needs its password"):
        ms.sign_file(data_file, enc)
    with pytest.raises(ms.SecretKeyPasswordError, match="wrong password"):
        ms.load_secret_key(enc, password="hunter3")
    ms.sign_file(data_file, enc, "t", password="hunter2")
    assert run([minisign, "-Vm", data_file, "-p", tmp_path / "k.pub"]).returncode == 0
    # minisign decrypts our encrypted key with the same parameters ...
    r = run([minisign, "-S", "-s", enc, "-m", data_file, "-t", "m"], input="hunter2\n")
    assert r.returncode == 0, r.stdout + r.stderr
    assert ms.verify_file(data_file, tmp_path / "k.pub").trusted_comment == "m"
    # ... and removes its password (leaving a real checksum), which we read.
    r = run([minisign, "-C", "-W", "-s", enc], input="hunter2\n")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not ms.is_encrypted_secret_key(enc)
    assert ms.load_secret_key(enc).public_key() == ms.load_public_key(tmp_path / "k.pub")


@pytest.mark.slow
def test_minisign_encrypted_key_with_default_params(
    tmp_path: Path, data_file: Path, minisign: str, run: Run
) -> None:
    """minisign's own encrypted key (scrypt N=2^20, 1 GiB): a few seconds."""
    pub, sec = tmp_path / "e.pub", tmp_path / "e.key"
    r = run([minisign, "-G", "-p", pub, "-s", sec], input="pw\npw\n")
    assert r.returncode == 0, r.stdout + r.stderr
    ms.sign_file(data_file, sec, password="pw")
    assert run([minisign, "-Vm", data_file, "-p", pub]).returncode == 0


def test_key_id_is_shown_as_minisign_shows_it() -> None:
    """minisign prints the little-endian key id with %PRIX64: no zero padding."""
    assert ms.key_id_hex(bytes([0x74, 0x04, 0xFE, 0xE3, 0x3A, 0xDD, 0xA2, 0x0B])) == (
        "BA2DD3AE3FE0474"
    )
    assert ms.key_id_hex(bytes(8)) == "0"
