"""Side files (signatures, keys, indexes, specs, pointers, password files,
mirror objects) must be regular files: anything else is refused at once.

A FIFO opened for reading blocks until a writer appears, so every test here
runs under a timeout: before `snaparc.sidefiles`, each FIFO case hung.
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest
from snaparc_testlib import SNAPARC, sample_files, write_tree

from snaparc.airgap import minisign as ms
from snaparc.airgap.volumes import SplitWriter, read_index
from snaparc.cli import main
from snaparc.errors import InputNotFoundError, IOFailure, NotRegularFileError, SignatureError
from snaparc.sidefiles import open_regular_file, read_regular_file

pytestmark = pytest.mark.timeout(20)

KINDS = ("fifo", "directory")


def _make(path: Path, kind: str) -> Path:
    """Put a FIFO or a directory at `path`, replacing a file there."""
    if path.is_file():
        path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()
    return path


def _named(kind: str) -> str:
    return "FIFO" if kind == "fifo" else "directory"


def _refused(exc: BaseException, path: Path, kind: str) -> None:
    assert isinstance(exc, NotRegularFileError), repr(exc)
    assert exc.exit_code == 2
    assert exc.path == str(path)
    assert str(path) in str(exc) and _named(kind) in str(exc), str(exc)


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI in a subprocess, killed if it blocks."""
    return subprocess.run(
        [*SNAPARC, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        timeout=15,
        check=False,
    )


def _cli_refused(proc: subprocess.CompletedProcess[str], path: Path, kind: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert f"{path} is a {_named(kind)}, not a regular file" in proc.stderr, proc.stderr


# --- the mechanism -----------------------------------------------------------


def test_regular_file_is_read_and_opened(tmp_path: Path) -> None:
    p = tmp_path / "f"
    p.write_bytes(b"hello")
    assert read_regular_file(p, limit=5, what="test file") == b"hello"
    with open_regular_file(p, what="test file") as f:
        assert f.read() == b"hello"
    link = tmp_path / "link"
    link.symlink_to(p)
    assert read_regular_file(link, limit=5, what="test file") == b"hello"


@pytest.mark.parametrize("kind", KINDS)
def test_fifo_and_directory_are_refused(tmp_path: Path, kind: str) -> None:
    p = _make(tmp_path / "side", kind)
    with pytest.raises(NotRegularFileError) as info:
        read_regular_file(p, limit=100, what="side file")
    _refused(info.value, p, kind)
    assert "side file" in str(info.value)
    assert info.value.kind == _named(kind)
    with pytest.raises(NotRegularFileError):
        open_regular_file(p, what="side file")


def test_symlink_to_a_fifo_is_refused(tmp_path: Path) -> None:
    fifo = _make(tmp_path / "pipe", "fifo")
    link = tmp_path / "link"
    link.symlink_to(fifo)
    with pytest.raises(NotRegularFileError, match="FIFO"):
        read_regular_file(link, limit=100, what="side file")


def test_socket_and_device_are_refused(tmp_path: Path) -> None:
    sock_path = tmp_path / "s"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(str(sock_path))
        with pytest.raises(NotRegularFileError, match="socket") as info:
            read_regular_file(sock_path, limit=100, what="side file")
        assert str(sock_path) in str(info.value)
    with pytest.raises(NotRegularFileError, match="character device"):
        read_regular_file("/dev/null", limit=100, what="side file")


def test_missing_file_default_and_custom_error(tmp_path: Path) -> None:
    p = tmp_path / "absent"
    with pytest.raises(InputNotFoundError, match="absent") as info:
        read_regular_file(p, limit=100, what="side file")
    assert info.value.exit_code == 2
    with pytest.raises(InputNotFoundError):
        open_regular_file(tmp_path / "absent" / "below", what="side file")
    with pytest.raises(ms.MissingSignatureError, match="side file"):
        read_regular_file(p, limit=100, what="side file", missing=ms.MissingSignatureError)


def test_too_large_is_refused_with_the_callers_error(tmp_path: Path) -> None:
    p = tmp_path / "big"
    p.write_bytes(b"x" * 101)
    assert read_regular_file(p, limit=101, what="side file") == b"x" * 101
    with pytest.raises(ms.MalformedKeyError, match="larger than 100 bytes"):
        read_regular_file(p, limit=100, what="side file", too_large=ms.MalformedKeyError)


def test_unreadable_file_is_an_io_failure(tmp_path: Path) -> None:
    p = tmp_path / "loop"
    p.symlink_to(p)  # ELOOP: refused by open, whoever runs the test
    with pytest.raises(IOFailure, match="loop"):
        read_regular_file(p, limit=100, what="side file")


def test_not_regular_file_error_is_documented() -> None:
    from snaparc.errors import ALL_ERROR_CLASSES

    assert NotRegularFileError in ALL_ERROR_CLASSES
    spec = (Path(__file__).parent.parent / "spec" / "FORMAT.md").read_text(encoding="utf-8")
    assert "`NotRegularFileError`" in spec


# --- minisign: signature, keys, the signed file ------------------------------


@pytest.fixture
def signed(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(archive, public key, secret key) with a valid archive.minisig."""
    pub, sec = tmp_path / "k.pub", tmp_path / "k.key"
    ms.write_keypair(pub, sec)
    archive = write_tree(tmp_path / "src", sample_files()).parent / "a.dlmsnap"
    assert main(["pack", str(tmp_path / "src"), "-o", str(archive), "--quiet"]) == 0
    ms.sign_file(archive, sec)
    return archive, pub, sec


@pytest.mark.parametrize("kind", KINDS)
def test_verify_file_refuses_non_regular_signature(
    signed: tuple[Path, Path, Path], kind: str
) -> None:
    archive, pub, _ = signed
    sig = _make(archive.with_name(archive.name + ".minisig"), kind)
    with pytest.raises(NotRegularFileError) as info:
        ms.verify_file(archive, pub)
    _refused(info.value, sig, kind)


@pytest.mark.parametrize("kind", KINDS)
def test_keys_must_be_regular_files(signed: tuple[Path, Path, Path], kind: str) -> None:
    archive, pub, sec = signed
    for key in (pub, sec):
        _make(key, kind)
    with pytest.raises(NotRegularFileError) as info:
        ms.verify_file(archive, pub)
    _refused(info.value, pub, kind)
    with pytest.raises(NotRegularFileError) as info:
        ms.load_public_key(str(pub))
    _refused(info.value, pub, kind)
    before = archive.with_name(archive.name + ".minisig").read_bytes()
    with pytest.raises(NotRegularFileError) as info:
        ms.sign_file(archive, sec)
    _refused(info.value, sec, kind)
    with pytest.raises(NotRegularFileError):
        ms.is_encrypted_secret_key(sec)
    assert archive.with_name(archive.name + ".minisig").read_bytes() == before


@pytest.mark.parametrize("kind", KINDS)
def test_signed_and_verified_file_must_be_regular(tmp_path: Path, kind: str) -> None:
    pub, sec = tmp_path / "k.pub", tmp_path / "k.key"
    ms.write_keypair(pub, sec)
    target = tmp_path / "t.dlmsnap"
    target.write_bytes(b"payload")
    ms.sign_file(target, sec)
    _make(target, kind)
    with pytest.raises(NotRegularFileError) as info:
        ms.verify_file(target, pub)  # the signature is fine: the file is not
    _refused(info.value, target, kind)
    other = _make(tmp_path / "o.dlmsnap", kind)
    with pytest.raises(NotRegularFileError) as info:
        ms.sign_file(other, sec)
    _refused(info.value, other, kind)
    assert not (tmp_path / "o.dlmsnap.minisig").exists()


@pytest.mark.parametrize("kind", KINDS)
def test_cli_verify_with_non_regular_minisig_exits_2(
    signed: tuple[Path, Path, Path], kind: str
) -> None:
    archive, pub, _ = signed
    sig = _make(archive.with_name(archive.name + ".minisig"), kind)
    proc = _cli("verify", str(archive), "--key", str(pub))
    _cli_refused(proc, sig, kind)


@pytest.mark.parametrize("kind", KINDS)
def test_cli_verify_with_non_regular_key_exits_2(
    signed: tuple[Path, Path, Path], kind: str
) -> None:
    archive, pub, _ = signed
    _make(pub, kind)
    proc = _cli("verify", str(archive), "--key", str(pub))
    _cli_refused(proc, pub, kind)


@pytest.fixture
def encrypted_key(tmp_path: Path) -> Path:
    """An "Sc" (password-protected) secret key with cheap scrypt limits."""
    import base64
    import hashlib
    import secrets
    import struct

    ms.write_keypair(tmp_path / "plain.pub", tmp_path / "plain.key")
    comment, line = (tmp_path / "plain.key").read_text().splitlines()
    blob = bytearray(base64.b64decode(line))
    salt = secrets.token_bytes(32)
    opslimit, memlimit = 524288, 16777216
    n, r, p = ms.scrypt_params(opslimit, memlimit)
    stream = hashlib.scrypt(b"hunter2", salt=salt, n=n, r=r, p=p, maxmem=1 << 30, dklen=104)
    blob[2:4] = b"Sc"
    blob[6:54] = salt + struct.pack("<QQ", opslimit, memlimit)
    blob[54:] = bytes(a ^ b for a, b in zip(blob[54:], stream, strict=True))
    out = tmp_path / "enc.key"
    out.write_text(f"{comment}\n{base64.b64encode(blob).decode()}\n")
    return out


def test_read_password_file_takes_the_first_line(tmp_path: Path) -> None:
    p = tmp_path / "pw"
    p.write_text("hunter2\r\nsecond line\n")
    assert ms.read_password_file(p) == "hunter2"
    p.write_text("")
    assert ms.read_password_file(p) == ""
    with pytest.raises(InputNotFoundError, match="password file"):
        ms.read_password_file(tmp_path / "absent")


@pytest.mark.parametrize("kind", KINDS)
def test_read_password_file_refuses_non_regular(tmp_path: Path, kind: str) -> None:
    p = _make(tmp_path / "pw", kind)
    with pytest.raises(NotRegularFileError) as info:
        ms.read_password_file(p)
    _refused(info.value, p, kind)


@pytest.mark.parametrize("kind", KINDS)
def test_cli_sign_with_non_regular_password_file_exits_2_and_writes_nothing(
    tmp_path: Path, encrypted_key: Path, kind: str
) -> None:
    archive = tmp_path / "a.dlmsnap"
    archive.write_bytes(os.urandom(1000))
    pw = _make(tmp_path / "pw", kind)
    before = sorted(p.name for p in tmp_path.iterdir())
    proc = _cli("sign", str(archive), "-s", str(encrypted_key), "--password-file", str(pw))
    _cli_refused(proc, pw, kind)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no .minisig, no temp


def test_cli_sign_with_password_file_still_signs(tmp_path: Path, encrypted_key: Path) -> None:
    archive = tmp_path / "a.dlmsnap"
    archive.write_bytes(os.urandom(1000))
    (tmp_path / "pw").write_text("hunter2\n")
    proc = _cli(
        "sign", str(archive), "-s", str(encrypted_key), "--password-file", "pw", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert ms.verify_file(archive, tmp_path / "plain.pub").prehashed


@pytest.mark.parametrize("kind", KINDS)
def test_cli_sign_with_non_regular_secret_key_exits_2(tmp_path: Path, kind: str) -> None:
    archive = tmp_path / "a.dlmsnap"
    archive.write_bytes(os.urandom(1000))
    sec = _make(tmp_path / "k.key", kind)
    proc = _cli("sign", str(archive), "-s", str(sec))
    _cli_refused(proc, sec, kind)
    assert not (tmp_path / "a.dlmsnap.minisig").exists()


def test_signature_errors_keep_their_classes(signed: tuple[Path, Path, Path]) -> None:
    archive, pub, _ = signed
    sig = archive.with_name(archive.name + ".minisig")
    sig.write_bytes(b"x" * (70 * 1024))
    with pytest.raises(ms.MalformedSignatureError, match="larger than"):
        ms.verify_file(archive, pub)
    sig.unlink()
    with pytest.raises(ms.MissingSignatureError) as info:
        ms.verify_file(archive, pub)
    assert isinstance(info.value, SignatureError) and info.value.exit_code == 11


# --- split-volume index ----------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_split_index_must_be_a_regular_file(tmp_path: Path, kind: str) -> None:
    out = tmp_path / "s.dlmsnap"
    with SplitWriter(out, 1000, min_volume_size=1) as w:
        w.write(os.urandom(2500))
    index = _make(tmp_path / "s.dlmsnap.index.json", kind)
    with pytest.raises(NotRegularFileError) as info:
        read_index(index)
    _refused(info.value, index, kind)


# --- mirror objects in a directory mirror ------------------------------------------


def _push(tmp_path: Path) -> Path:
    src = write_tree(tmp_path / "src", sample_files())
    archive = tmp_path / "a.dlmsnap"
    assert main(["pack", str(src), "-o", str(archive), "--quiet"]) == 0
    mirror = tmp_path / "mirror"
    assert main(["mirror", "push", str(archive), str(mirror), "--ref", "v1", "-q"]) == 0
    return mirror


def test_dir_store_refuses_a_fifo_object_promptly(tmp_path: Path) -> None:
    from snaparc.errors import RemoteError
    from snaparc.mirror.store import DirStore, MirrorObjectTypeError, ObjectNotFoundError

    store = DirStore(tmp_path / "m", create=True)
    store.put("refs/v1", b"x" * 64, mode="create")
    fifo = _make(tmp_path / "m" / "refs" / "v1", "fifo")
    for read in (lambda: store.get("refs/v1"), lambda: store.get_range("refs/v1", 0, 10)):
        with pytest.raises(MirrorObjectTypeError) as info:
            read()
        assert isinstance(info.value, RemoteError) and info.value.exit_code == 10
        assert not isinstance(info.value, ObjectNotFoundError)
        assert str(fifo) in str(info.value) and "FIFO" in str(info.value)
    # A directory at a key is a prefix, not an object: absent, as in every store.
    (tmp_path / "m" / "refs" / "dir").mkdir()
    with pytest.raises(ObjectNotFoundError):
        store.get("refs/dir")
    with pytest.raises(ObjectNotFoundError):
        store.get_range("refs/dir", 0, 1)


def test_dir_store_refuses_a_device_or_socket_object(tmp_path: Path) -> None:
    from snaparc.mirror.store import DirStore, MirrorObjectTypeError

    store = DirStore(tmp_path / "m", create=True)
    (tmp_path / "m" / "refs").mkdir()
    (tmp_path / "m" / "refs" / "dev").symlink_to("/dev/zero")
    with pytest.raises(MirrorObjectTypeError, match="character device"):
        store.get("refs/dev")  # /dev/zero never ends: reading it would never return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(str(tmp_path / "m" / "refs" / "sock"))
        with pytest.raises(MirrorObjectTypeError, match="socket"):
            store.get("refs/sock")


def test_cli_verify_from_mirror_with_fifo_ref_exits_10(tmp_path: Path) -> None:
    mirror = _push(tmp_path)
    fifo = _make(mirror / "refs" / "v1", "fifo")
    proc = _cli("verify", f"{mirror}:v1")
    assert proc.returncode == 10, proc.stderr
    assert str(fifo) in proc.stderr and "FIFO" in proc.stderr


def test_cli_unpack_from_mirror_with_fifo_record_exits_10(tmp_path: Path) -> None:
    mirror = _push(tmp_path)
    (record,) = (mirror / "archives").iterdir()
    _make(record, "fifo")
    dest = tmp_path / "out"
    proc = _cli("unpack", f"{mirror}:v1", "-C", str(dest), "-q")
    assert proc.returncode == 10, proc.stderr
    assert str(record) in proc.stderr
    assert not dest.exists()


# --- HF: base model spec, store pointer --------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_base_model_spec_file_must_be_regular(tmp_path: Path, kind: str) -> None:
    from snaparc.hf.export import load_base_spec

    spec = _make(tmp_path / "base.json", kind)
    with pytest.raises(NotRegularFileError) as info:
        load_base_spec(str(spec))
    _refused(info.value, spec, kind)
    with pytest.raises(NotRegularFileError):
        load_base_spec(spec)


@pytest.fixture
def store_root(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    (root / "adapter" / "versions" / "v0001").mkdir(parents=True)
    (root / "adapter" / "voice").mkdir()
    return root


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", [None, "voice"])
def test_store_pointer_must_be_regular(store_root: Path, kind: str, name: str | None) -> None:
    from snaparc.hf.export import Store, resolve_adapter

    store = Store(store_root)
    pointer = _make(store.current_pointer(name), kind)
    with pytest.raises(NotRegularFileError) as info:
        resolve_adapter(store, adapter_name=name)
    _refused(info.value, pointer, kind)


def test_cli_export_with_fifo_pointer_or_spec_exits_2(store_root: Path) -> None:
    pointer = _make(store_root / "adapter" / "current.txt", "fifo")
    proc = _cli("export", "--store", str(store_root), "--base", "qwen2-audio-7b-instruct")
    _cli_refused(proc, pointer, "fifo")
    spec = _make(store_root / "base.json", "fifo")
    proc = _cli("export", "--store", str(store_root), "--base", str(spec))
    _cli_refused(proc, spec, "fifo")
    assert not (store_root / "exports").exists()
