"""An opened archive: its byte stream, what is known about it, and the
identity the user asked for.

`snaparc.sources` classifies what a command names (a path, `-`, split
volumes, a mirror target) and opens it as an `ArchiveInput`; every reading
function of this package takes one (or a bare stream, which carries no
identity). The identity check has one home, `check_identity`, called by the
manifest reader for every stream it reads: a source opened as `URL@ID`, or
as `URL:REF` whose ref names ID, yields nothing unless the archive's id
(the sha256 of its manifest) is ID.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import BinaryIO

from snaparc.errors import IdentityMismatchError


@dataclass(frozen=True, slots=True)
class TransferCounts:
    """What reading an archive from a mirror moved, so far."""

    fetched: int = 0  # payload bytes the store returned, retried requests included
    skipped: int = 0  # read from what a killed run left instead (resumed)
    retries: int = 0  # requests retried

    def describe(self) -> str:
        from snaparc.progress import human_bytes

        return (
            f"fetched {human_bytes(self.fetched)}, skipped {human_bytes(self.skipped)}, "
            f"{self.retries} retried"
        )


@dataclass(slots=True)
class ArchiveInput:
    """One opened archive. `size` is None where unknown (a pipe); `expected_id`
    is the archive id the user pinned (or a ref resolved to), else None;
    `transfer`, for a mirror, counts what was fetched, skipped and retried."""

    stream: BinaryIO
    name: str
    size: int | None = None
    seekable: bool = False
    expected_id: str | None = None
    transfer: Callable[[], TransferCounts] | None = None

    def check_identity(self, archive_id: str) -> None:
        check_identity(self.expected_id, archive_id, self.name)


def check_identity(expected_id: str | None, archive_id: str, name: str) -> None:
    """Refuse an archive that is not the one asked for (exit 1)."""
    if expected_id is not None and archive_id != expected_id:
        raise IdentityMismatchError(
            f"{name} names archive {expected_id}, but its bytes are archive {archive_id}; "
            "refusing it (the mirror's record was replaced or damaged)",
            expected=expected_id,
            actual=archive_id,
        )


def is_seekable(stream: BinaryIO) -> bool:
    try:
        return bool(stream.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def as_input(source: ArchiveInput | BinaryIO) -> ArchiveInput:
    """A bare stream as an input without identity (tests, library callers)."""
    if isinstance(source, ArchiveInput):
        return source
    name = str(getattr(source, "name", "the archive stream"))
    return ArchiveInput(source, name, seekable=is_seekable(source))


# How a thin archive's base is handed down: opened only if blobs are needed.
OpenBase = Callable[[], AbstractContextManager[ArchiveInput]]
