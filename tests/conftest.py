"""Fixtures shared by the top-level tests; helpers live in snaparc_testlib."""

from __future__ import annotations

from pathlib import Path

import pytest
from snaparc_testlib import sample_files, write_tree

from snaparc.cli import main


@pytest.fixture
def sample_tree(tmp_path: Path) -> Path:
    return write_tree(
        tmp_path / "src", sample_files(), executable={"scripts/run.sh"}, empty_dirs=("logs/empty",)
    )


@pytest.fixture
def packed(sample_tree: Path, tmp_path: Path) -> Path:
    out = tmp_path / "a.dlmsnap"
    assert main(["pack", str(sample_tree), "-o", str(out), "--quiet"]) == 0
    return out
