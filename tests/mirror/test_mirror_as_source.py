"""Every reading command accepts a mirror target (URL:REF / URL@ID) in place of a file."""

from __future__ import annotations

from pathlib import Path

import pytest

from snaparc.cli import main


def _push(archive: Path, url: str, ref: str) -> None:
    assert main(["mirror", "push", str(archive), url, "--ref", ref, "-q"]) == 0


def test_verify_ls_cat_unpack_from_mirror(
    mirror_url: str,
    archive_v1: Path,
    v1_files: dict[str, bytes],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _push(archive_v1, mirror_url, "v1")
    target = f"{mirror_url}:v1"
    assert main(["verify", target, "--json"]) == 0
    assert '"ok": true' in capsys.readouterr().out
    assert main(["ls", target]) == 0
    assert "archive id" in capsys.readouterr().out
    dest = tmp_path / "out"
    assert main(["unpack", target, "-C", str(dest), "-q"]) == 0
    for rel, data in v1_files.items():
        assert (dest / rel).read_bytes() == data


def test_unknown_ref_in_mirror_exits_10(mirror_url: str, archive_v1: Path, tmp_path: Path) -> None:
    _push(archive_v1, mirror_url, "v1")
    dest = tmp_path / "never"
    assert main(["unpack", f"{mirror_url}:nope", "-C", str(dest), "-q"]) == 10
    assert not dest.exists()


def test_thin_archive_takes_its_base_blobs_from_a_mirror(
    mirror_url: str, archive_v1: Path, v1_files: dict[str, bytes], tmp_path: Path
) -> None:
    _push(archive_v1, mirror_url, "v1")
    v2 = dict(v1_files, **{"adapter_config.json": b'{"r": 16}\n'})
    src = tmp_path / "src_v2"
    for rel, data in v2.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    delta = tmp_path / "delta.dlmsnap"
    assert main(["pack", str(src), "-o", str(delta), "--base", f"{mirror_url}:v1", "-q"]) == 0
    assert delta.stat().st_size < archive_v1.stat().st_size / 2
    dest = tmp_path / "out"
    assert main(["unpack", str(delta), "-C", str(dest), "--base", f"{mirror_url}:v1", "-q"]) == 0
    for rel, data in v2.items():
        assert (dest / rel).read_bytes() == data


def test_top_level_push_and_pull_are_the_mirror_commands(
    mirror_url: str, archive_v1: Path, tmp_path: Path
) -> None:
    assert main(["push", str(archive_v1), mirror_url, "--ref", "top", "-q"]) == 0
    out = tmp_path / "pulled.dlmsnap"
    assert main(["pull", f"{mirror_url}:top", "-o", str(out), "-q"]) == 0
    assert out.read_bytes() == archive_v1.read_bytes()
    assert main(["pull", f"{mirror_url}:missing", "-o", str(tmp_path / "x"), "-q"]) == 10
