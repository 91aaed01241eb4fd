"""Arguments are validated before anything touches a file or a mirror.

Each test here is a defect found by trying snaparc as a new user would; the
option matrix in test_argument_matrix.py covers the class.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from snaparc_testlib import tree_state

from snaparc.cli import main


def _usage(code: int, capsys: pytest.CaptureFixture[str], option: str) -> None:
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and "internal error" not in err
    assert option in err, err


def test_a_bad_level_does_not_delete_an_existing_split_set(
    sample_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "s.dlmsnap"
    assert main(["pack", str(sample_tree), "-o", str(out), "--split", "1M", "-q"]) == 0
    before = tree_state(tmp_path)
    capsys.readouterr()
    for level in ("0", "99"):
        code = main(
            ["pack", str(sample_tree), "-o", str(out), "--split", "1M", "--force", "--level", level]
        )
        _usage(code, capsys, "--level")
        assert tree_state(tmp_path) == before


@pytest.mark.parametrize("command", ["pack", "verify", "unpack", "cat"])
def test_negative_threads_is_a_usage_error(
    command: str,
    packed: Path,
    sample_tree: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = {
        "pack": ["pack", str(sample_tree), "-o", str(tmp_path / "new.dlmsnap")],
        "verify": ["verify", str(packed)],
        "unpack": ["unpack", str(packed), "-C", str(tmp_path / "dest")],
        "cat": ["cat", str(packed), "empty.txt"],
    }[command]
    before = tree_state(tmp_path)
    _usage(main([*args, "--threads", "-1"]), capsys, "--threads")
    assert tree_state(tmp_path) == before


@pytest.mark.parametrize("limit", ["--max-files", "--max-manifest-bytes", "--max-total-bytes"])
def test_a_negative_limit_is_a_usage_error_not_unsafe(
    limit: str, packed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _usage(main(["verify", str(packed), limit, "-1"]), capsys, limit)


def test_push_and_pull_refuse_negative_jobs(
    packed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mirror = tmp_path / "mirror"
    _usage(main(["push", str(packed), str(mirror), "--jobs", "-1"]), capsys, "--jobs")
    assert not mirror.exists()
    assert main(["push", str(packed), str(mirror), "--ref", "r", "-q"]) == 0
    out = tmp_path / "pulled.dlmsnap"
    _usage(main(["pull", f"{mirror}:r", "-o", str(out), "--jobs", "-1"]), capsys, "--jobs")
    assert not out.exists()


def test_push_refuses_an_empty_ref(
    packed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mirror = tmp_path / "mirror"
    _usage(main(["push", str(packed), str(mirror), "--ref", ""]), capsys, "--ref")
    assert not mirror.exists()


@pytest.mark.parametrize("suffix", [":", "@xyz", "@" + "A" * 64])
def test_pull_refuses_a_malformed_ref_or_id(
    suffix: str, packed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mirror = tmp_path / "mirror"
    assert main(["push", str(packed), str(mirror), "--ref", "r", "-q"]) == 0
    before = tree_state(tmp_path)
    out = tmp_path / "pulled.dlmsnap"
    _usage(main(["pull", f"{mirror}{suffix}", "-o", str(out)]), capsys, "URL:REF")
    assert tree_state(tmp_path) == before
