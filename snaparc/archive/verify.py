"""Verify an archive without writing its payload anywhere."""

from __future__ import annotations

from typing import BinaryIO

from snaparc.archive.reader import ReadReport, read_archive
from snaparc.format.limits import DEFAULT_LIMITS, Limits
from snaparc.progress import Progress


def verify_archive(
    stream: BinaryIO,
    *,
    threads: int | None = None,
    limits: Limits = DEFAULT_LIMITS,
    progress: Progress | None = None,
) -> ReadReport:
    """Check everything `read_archive` checks; raise on the first problem."""
    return read_archive(stream, None, threads=threads, limits=limits, progress=progress)
