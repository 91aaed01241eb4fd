"""`ls` and `cat` on a large archive read only a small part of it (bytes, not time)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from snaparc_testlib import CountingReader, write_tree

from snaparc.api import pack as pack_directory
from snaparc.archive.catfile import cat_file
from snaparc.archive.listing import read_listing

BIG = 320 * 1024 * 1024


@pytest.fixture(scope="module")
def big_archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    base = tmp_path_factory.mktemp("big")
    small = b'{"lora_alpha": 16, "r": 8}\n'
    big = base / "src" / "adapter" / "adapter_model.safetensors"
    big.parent.mkdir(parents=True)
    with open(big, "wb") as f:
        for _ in range(BIG // (16 * 1024 * 1024)):
            f.write(os.urandom(16 * 1024 * 1024))
    write_tree(base / "src", {"adapter/adapter_config.json": small, "zz/last.json": small + b"!"})
    out = base / "big.dlmsnap"
    pack_directory(base / "src", out, level=1)
    assert out.stat().st_size > BIG
    return out, small


def test_ls_reads_only_the_head_and_tail(big_archive: tuple[Path, bytes]) -> None:
    path, _ = big_archive
    reader = CountingReader(path)
    listing = read_listing(reader)  # type: ignore[arg-type]
    assert {f.path for f in listing.manifest.files} >= {"adapter/adapter_config.json"}
    assert listing.compressed_size == path.stat().st_size
    assert reader.bytes_read < 256 * 1024, reader.bytes_read


@pytest.mark.parametrize("name", ["adapter/adapter_config.json", "zz/last.json"])
def test_cat_of_small_file_reads_only_its_frames(
    big_archive: tuple[Path, bytes], name: str
) -> None:
    path, small = big_archive
    reader = CountingReader(path)
    out = io.BytesIO()
    cat_file(reader, name, out)  # type: ignore[arg-type]
    assert out.getvalue() == (small if name.startswith("adapter") else small + b"!")
    assert reader.bytes_read < 512 * 1024, reader.bytes_read
