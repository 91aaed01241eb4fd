"""keygen / sign / sums through `snaparc.cli.main`, checking exit codes."""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from snaparc.airgap import minisign as ms
from snaparc.airgap.volumes import SplitWriter
from snaparc.cli import main

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    pub, sec = tmp_path / "snaparc.pub", tmp_path / "snaparc.key"
    assert main(["keygen", "-p", str(pub), "-s", str(sec)]) == 0
    return pub, sec


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    p = tmp_path / "a.dlmsnap"
    p.write_bytes(os.urandom(100_000))
    return p


def test_keygen_defaults_and_refusal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["keygen"]) == 0
    assert "key id" in capsys.readouterr().out
    assert (tmp_path / "snaparc.pub").is_file()
    assert (tmp_path / "snaparc.key").stat().st_mode & 0o777 == 0o600
    before = (tmp_path / "snaparc.key").read_bytes()
    assert main(["keygen"]) == 5  # DestinationError: exists
    assert "--force" in capsys.readouterr().err
    assert (tmp_path / "snaparc.key").read_bytes() == before
    assert main(["keygen", "--force"]) == 0
    assert (tmp_path / "snaparc.key").read_bytes() != before


@pytest.mark.parametrize("missing", ["pub", "sec"])
def test_keygen_into_a_missing_directory_is_a_destination_error(
    missing: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 5 as for every other output (it was 8, an I/O failure), and the key
    of the pair that could be written is not left behind alone."""
    pub, sec = tmp_path / "k.pub", tmp_path / "k.key"
    gone = tmp_path / "no" / "such"
    args = {"pub": ["-p", str(gone / "k.pub"), "-s", str(sec)],
            "sec": ["-p", str(pub), "-s", str(gone / "k.key")]}[missing]  # fmt: skip
    assert main(["keygen", *args]) == 5
    assert f"parent directory {gone} does not exist" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_sign_then_verify(keys: tuple[Path, Path], archive: Path, minisign: str, run: Run) -> None:
    pub, sec = keys
    assert main(["sign", str(archive), "-s", str(sec), "-t", "release 7"]) == 0
    assert ms.verify_file(archive, pub).trusted_comment == "release 7"
    assert run([minisign, "-Vm", archive, "-p", pub]).returncode == 0


def test_sign_split_archive_signs_the_index(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    pub, sec = keys
    out = tmp_path / "s.dlmsnap"
    with SplitWriter(out, 1000, min_volume_size=1) as w:
        w.write(os.urandom(2500))
    assert main(["sign", str(tmp_path / "s.dlmsnap.001"), "-s", str(sec)]) == 0
    index = tmp_path / "s.dlmsnap.index.json"
    assert ms.verify_file(index, pub).key_id == ms.load_public_key(pub).key_id_hex


def test_sign_usage_errors_exit_2(tmp_path: Path, keys: tuple[Path, Path], archive: Path) -> None:
    _, sec = keys
    assert main(["sign"]) == 2
    assert main(["sign", str(tmp_path / "missing.dlmsnap"), "-s", str(sec)]) == 2
    assert main(["sign", str(archive), "-s", str(tmp_path / "missing.key")]) == 2
    assert main(["sign", str(archive), "-s", str(sec), "--bogus"]) == 2
    assert main(["sums"]) == 2


def test_sign_key_problems_exit_11(tmp_path: Path, keys: tuple[Path, Path], archive: Path) -> None:
    pub, sec = keys
    (tmp_path / "bad.key").write_text("untrusted comment: x\nnot a key\n")
    assert main(["sign", str(archive), "-s", str(tmp_path / "bad.key")]) == 11
    assert main(["sign", str(archive), "-s", str(pub)]) == 11  # a public key is no secret key
    assert main(["sign", str(archive), "-s", str(sec), "-t", "a\nb"]) == 11
    # An encrypted key with no way to ask for its password (stdin is not a terminal).
    comment, line = sec.read_text().splitlines()
    blob = bytearray(base64.b64decode(line))
    blob[2:4] = b"Sc"
    (tmp_path / "enc.key").write_text(f"{comment}\n{base64.b64encode(blob).decode()}\n")
    assert main(["sign", str(archive), "-s", str(tmp_path / "enc.key")]) == 11
    assert not (tmp_path / "a.dlmsnap.minisig").exists()


def test_sums_command(
    archive: Path, capsys: pytest.CaptureFixture[str], tool: Callable[[str], str], run: Run
) -> None:
    assert main(["sums", str(archive)]) == 0
    assert "a.dlmsnap.sha256" in capsys.readouterr().out
    r = run([tool("sha256sum"), "-c", "a.dlmsnap.sha256"], cwd=archive.parent)
    assert r.returncode == 0
    assert main(["sums", str(archive.with_name("missing.dlmsnap"))]) == 2
