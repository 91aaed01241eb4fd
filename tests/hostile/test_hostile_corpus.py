"""Issue #5: every archive is hostile. One test per forged violation.

Each case runs through verify, unpack (fresh and `--force` over an old tree),
cat from a pipe, and, where the command reads the damaged part, ls and cat of
a seekable file: exact exit code from the CLI, exact error class from the
Python API, the canary beside the target byte- and metadata-identical, no
staging or partial file left, an old target untouched, and no byte written
by cat.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from snaparc.api import unpack as unpack_path
from snaparc.api import verify as verify_path
from snaparc.archive.catfile import cat_file
from snaparc.archive.listing import read_listing
from snaparc.cli import main
from tests.hostile import forge as F
from tests.hostile.conftest import Arena, NonSeekable, Rejecter, tree_files
from tests.hostile.gen_corpus import CASES, Case


def _param(c: Case) -> object:
    marks = [pytest.mark.xfail(strict=True, reason=f"BUG: {c.bug}")] if c.bug else []
    return pytest.param(c, id=c.name, marks=marks)


REJECTED = [c for c in CASES if c.expect]
ACCEPTED = [c for c in CASES if not c.expect]


@pytest.mark.parametrize("case", [_param(c) for c in REJECTED])
def test_hostile_archive_is_rejected(case: Case, rejecter: Rejecter) -> None:
    rejecter.reject(case.build(), case.expect, cat_path=case.cat_path, limits=case.limits)


def _source(root: Path, files: list[F.FileSpec]) -> dict[str, tuple[int, bytes | None]]:
    out: dict[str, tuple[int, bytes | None]] = {}
    for f in files:
        parts = f.path.split("/")
        for i in range(1, len(parts)):
            out["/".join(parts[:i])] = (0o755, None)
        out[f.path] = (0o755 if f.executable else 0o644, f.data)
    return out


@pytest.mark.parametrize("case", [_param(c) for c in ACCEPTED])
def test_honest_variant_is_accepted(case: Case, arena: Arena) -> None:
    """Sanity for the forger: frames zstd would not write but the spec allows."""
    p = arena.write_archive(case.build())
    assert main(["verify", str(p), "--quiet"]) == 0
    assert main(["unpack", str(p), "-C", str(arena.target), "--quiet"]) == 0
    assert tree_files(arena.target) == _source(arena.target, F.default_files())


def test_forger_writes_what_pack_writes(tmp_path: Path) -> None:
    """With no knobs the forger's bytes are exactly snaparc's: a rejected forgery
    differs from a valid archive only in the violation it asks for."""
    src = tmp_path / "src"
    for f in F.default_files():
        p = src / f.path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(f.data)
        p.chmod(0o755 if f.executable else 0o644)
    out = tmp_path / "a.dlmsnap"
    assert main(["pack", str(src), "-o", str(out), "--quiet"]) == 0
    assert out.read_bytes() == F.forge().data


def test_valid_forgery_passes_every_command(arena: Arena) -> None:
    data = F.forge().data
    p = arena.write_archive(data)
    assert verify_path(p).report.blobs_verified == 4
    unpack_path(p, arena.target)
    assert tree_files(arena.target) == _source(arena.target, F.default_files())
    with open(p, "rb") as f:
        assert len(read_listing(f).manifest.files) == 5
    assert len(read_listing(NonSeekable(data)).manifest.files) == 5  # type: ignore[arg-type]
    out = io.BytesIO()
    with open(p, "rb") as f:
        cat_file(f, "run.sh", out)
    assert out.getvalue() == b"#!/bin/sh\necho hi\n"
    out = io.BytesIO()
    cat_file(NonSeekable(data), "run.sh", out)  # type: ignore[arg-type]
    assert out.getvalue() == b"#!/bin/sh\necho hi\n"


def test_xxh64_matches_zstd() -> None:
    import zstandard

    for n in (0, 1, 7, 31, 32, 33, 100, 1000):
        data = bytes(range(256))[:n] * 3
        frame = zstandard.ZstdCompressor(write_checksum=True).compress(data)
        assert int.from_bytes(frame[-4:], "little") == F.xxh64(data) & 0xFFFFFFFF
