"""Copy an archive byte for byte while the verified reader checks it (pull).

The reader sees every byte the copy gets, in order; the rest of the stream
after the seek table (nothing, in a valid archive: the reader refuses
trailing bytes) is drained so the copy is whole. The caller publishes the
copy only if this returns (`snaparc.publish.AtomicFile`).
"""

from __future__ import annotations

import dataclasses
from typing import BinaryIO, cast

from snaparc.archive.input import ArchiveInput
from snaparc.archive.reader import ReadReport, read_archive
from snaparc.format.limits import DEFAULT_LIMITS, Limits
from snaparc.progress import Progress


class _Tee:
    """Reads from `src`, copying every byte read to `dst`."""

    def __init__(self, src: BinaryIO, dst: BinaryIO) -> None:
        self.src, self.dst = src, dst
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self.src.read(n)
        self.dst.write(data)
        self.count += len(data)
        return data


def copy_verified(
    source: ArchiveInput,
    out: BinaryIO,
    *,
    threads: int | None = None,
    limits: Limits = DEFAULT_LIMITS,
    progress: Progress | None = None,
) -> tuple[ReadReport, int]:
    """Verify `source` (its identity included) while writing its bytes to
    `out`; return the reader's report and the bytes copied."""
    tee = _Tee(source.stream, out)
    teed = dataclasses.replace(source, stream=cast(BinaryIO, tee))
    report = read_archive(teed, None, threads=threads, limits=limits, progress=progress)
    while tee.read(1 << 20):
        pass
    return report, tee.count
