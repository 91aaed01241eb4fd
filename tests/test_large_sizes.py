"""Sizes of 8 GiB and more: GNU base-256 size fields that stock tools read.

Packing a real >8 GiB blob takes minutes, so this checks the header on its
own: a sparse tar file holding one member of 9 GiB (a hole) is listed with
the right size by GNU tar, bsdtar and Python's tarfile, and snaparc's strict
parser reads back what it wrote and refuses the non-canonical encodings.
"""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

import pytest
from snaparc_testlib import require_tool

from snaparc.errors import NonCanonicalError, UnsafeMemberError
from snaparc.format.constants import TAR_BLOCK, TAR_EOF, USTAR_MAX_OCTAL_SIZE
from snaparc.format.tarheader import build_header, read_header

NAME = "blobs/sha256/" + "ab" * 32
BIG = 9 * 1024**3 + 7


def _sparse_tar(path: Path, size: int) -> Path:
    padded = size + (-size % TAR_BLOCK)
    with open(path, "wb") as f:
        f.write(build_header(NAME, size))
        f.truncate(TAR_BLOCK + padded)
        f.seek(TAR_BLOCK + padded)
        f.write(TAR_EOF)
    return path


def test_octal_up_to_8_gib_minus_1_then_base_256() -> None:
    small = build_header(NAME, USTAR_MAX_OCTAL_SIZE)
    big = build_header(NAME, USTAR_MAX_OCTAL_SIZE + 1)
    assert small[124:136] == b"77777777777\0"
    assert big[124] == 0x80
    assert read_header(small, offset=0) == (NAME, USTAR_MAX_OCTAL_SIZE)
    assert read_header(big, offset=0) == (NAME, USTAR_MAX_OCTAL_SIZE + 1)


def test_base_256_for_a_small_size_is_refused() -> None:
    block = bytearray(build_header(NAME, 5))
    block[124:136] = b"\x80" + (5).to_bytes(11, "big")
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    with pytest.raises(NonCanonicalError):
        read_header(bytes(block), offset=0)


def test_negative_base_256_size_is_refused() -> None:
    block = bytearray(build_header(NAME, 5))
    block[124:136] = b"\xff" * 12
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    with pytest.raises(UnsafeMemberError):
        read_header(bytes(block), offset=0)


def test_python_tarfile_reads_9_gib_member(tmp_path: Path) -> None:
    path = _sparse_tar(tmp_path / "big.tar", BIG)
    with tarfile.open(path) as tf:
        (member,) = tf.getmembers()
    assert (member.name, member.size, member.isreg()) == (NAME, BIG, True)


@pytest.mark.interop
@pytest.mark.parametrize("tool", ["tar", "bsdtar"])
def test_stock_tar_lists_9_gib_member(tool: str, tmp_path: Path) -> None:
    require_tool(tool)
    path = _sparse_tar(tmp_path / "big.tar", BIG)
    proc = subprocess.run([tool, "-tvf", str(path)], capture_output=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert str(BIG).encode() in proc.stdout
    assert NAME.encode() in proc.stdout
