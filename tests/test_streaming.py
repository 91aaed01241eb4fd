"""Pipes work: pack to stdout, verify/unpack/ls/cat from stdin."""

from __future__ import annotations

from pathlib import Path

from snaparc_testlib import run_snaparc

from snaparc.archive.listing import read_listing
from snaparc.sources.archive import open_source as open_archive_input


def test_pack_to_stdout_equals_pack_to_file(sample_tree: Path, packed: Path) -> None:
    proc = run_snaparc("pack", str(sample_tree), "-o", "-")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == packed.read_bytes()


def test_verify_from_stdin(packed: Path) -> None:
    proc = run_snaparc("verify", "-", stdin=packed.read_bytes())
    assert proc.returncode == 0, proc.stderr
    with open_archive_input(packed) as f:
        aid = read_listing(f).archive_id
    assert aid in proc.stdout.decode()


def test_unpack_from_stdin(packed: Path, sample_tree: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    proc = run_snaparc("unpack", "-", "-C", str(dest), stdin=packed.read_bytes())
    assert proc.returncode == 0, proc.stderr
    for p in sample_tree.rglob("*"):
        if p.is_file():
            assert (dest / p.relative_to(sample_tree)).read_bytes() == p.read_bytes()


def test_ls_and_cat_from_stdin(packed: Path, sample_tree: Path) -> None:
    data = packed.read_bytes()
    proc = run_snaparc("ls", "-", stdin=data)
    assert proc.returncode == 0 and b"adapter/tokenizer.json" in proc.stdout
    assert b"unknown (read from a pipe)" in proc.stdout
    proc = run_snaparc("cat", "-", "scripts/run.sh", stdin=data)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (sample_tree / "scripts/run.sh").read_bytes()


def test_pipe_verify_rejects_trailing_garbage(packed: Path) -> None:
    proc = run_snaparc("verify", "-", stdin=packed.read_bytes() + b"junk")
    assert proc.returncode == 3
    assert b"trail" in proc.stderr
