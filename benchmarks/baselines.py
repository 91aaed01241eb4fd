"""The old tool's pack and unpack, rebuilt from public libraries, as baselines.

The old format is a tar stream compressed at zstd level 10 (one frame,
single-threaded `zstandard`), with a `CHECKSUMS.sha256` member (sha256 only,
`sha256sum` format). Its unpack extracts everything, then checks the sums.

Usage:
    python -m benchmarks.baselines pack SRC_DIR OUT.tar.zst
    python -m benchmarks.baselines unpack ARCHIVE DEST_DIR
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import tarfile
from pathlib import Path
from typing import BinaryIO

import zstandard

LEVEL = 10
CHECKSUMS = "CHECKSUMS.sha256"
READ_SIZE = 1024 * 1024


class _HashingReader(io.RawIOBase):
    """A read-only file wrapper that feeds every byte read into sha256."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self.sha256 = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._fh.read(size)
        self.sha256.update(data)
        return data


def pack(src: Path, out: Path) -> None:
    """tarfile → zstandard level 10, sha256 of every file into CHECKSUMS.sha256."""
    files = sorted(p for p in src.rglob("*") if p.is_file())
    sums: list[str] = []
    cctx = zstandard.ZstdCompressor(level=LEVEL)
    with (
        out.open("wb") as raw,
        cctx.stream_writer(raw, closefd=False) as zw,
        tarfile.open(fileobj=zw, mode="w|", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in files:
            rel = path.relative_to(src).as_posix()
            info = tar.gettarinfo(str(path), arcname=rel)
            with path.open("rb") as fh:
                reader = _HashingReader(fh)
                tar.addfile(info, reader)  # type: ignore[arg-type]
            sums.append(f"{reader.sha256.hexdigest()}  {rel}\n")
        body = "".join(sums).encode()
        info = tarfile.TarInfo(CHECKSUMS)
        info.size = len(body)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(body))


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(READ_SIZE):
            h.update(block)
    return h.hexdigest()


def unpack(archive: Path, dest: Path) -> None:
    """Extract everything (tarfile `data` filter), then check CHECKSUMS.sha256."""
    dest.mkdir(parents=True, exist_ok=True)
    dctx = zstandard.ZstdDecompressor()
    with (
        archive.open("rb") as raw,
        dctx.stream_reader(raw, read_across_frames=True) as zr,
        tarfile.open(fileobj=zr, mode="r|") as tar,
    ):
        tar.extractall(dest, filter="data")
    sums_path = dest / CHECKSUMS
    if not sums_path.is_file():
        raise SystemExit(f"{archive}: no {CHECKSUMS} member")
    bad = 0
    for line in sums_path.read_text().splitlines():
        digest, rel = line.split("  ", 1)
        if _sha256_file(dest / rel) != digest:
            print(f"{rel}: FAILED", file=sys.stderr)
            bad += 1
    if bad:
        raise SystemExit(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="old-tool baselines")
    sub = parser.add_subparsers(dest="op", required=True)
    p = sub.add_parser("pack")
    p.add_argument("src", type=Path)
    p.add_argument("out", type=Path)
    u = sub.add_parser("unpack")
    u.add_argument("archive", type=Path)
    u.add_argument("dest", type=Path)
    args = parser.parse_args(argv)
    if args.op == "pack":
        pack(args.src, args.out)
    else:
        unpack(args.archive, args.dest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
