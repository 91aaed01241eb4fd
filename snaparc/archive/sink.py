"""The contract between the verified reader and what consumes blobs.

A sink receives one archive: `begin` once, after the manifest verified and
before any blob byte; for each blob, the writer `open_blob` returns gets the
blob's bytes in order (possibly before they are verified), then `blob_done`
after both digests matched. **A sink must not publish anything before the
reading function returns**; if it raises, the sink must discard everything.

A thin archive leaves some blobs to its base archive. A sink that lays out a
thin archive (`ThinSink`) says which of those it still needs
(`external_wanted`: all of them for a new tree, fewer for a hub cache that
holds some); `snaparc.archive.unpack.fill_from_base` feeds it exactly those,
verified, through the same `open_blob` / `blob_done` calls.
"""

from __future__ import annotations

from typing import Protocol

from snaparc.format.manifest import BlobEntry, Manifest


class BlobWriter(Protocol):
    def write(self, data: memoryview, /) -> object: ...

    def close(self) -> None: ...


class BlobSink(Protocol):
    def begin(self, manifest: Manifest, archive_id: str) -> None: ...

    def open_blob(self, blob: BlobEntry) -> BlobWriter: ...

    def blob_done(self, blob: BlobEntry) -> None: ...


class ThinSink(BlobSink, Protocol):
    def external_wanted(self, manifest: Manifest) -> dict[str, BlobEntry]:
        """The external blobs (sha256 -> entry) this sink still needs from the base."""
        ...


class _Discard:
    """A writer for bytes nobody keeps (the reader still verifies them)."""

    def write(self, data: memoryview, /) -> None:
        return None

    def close(self) -> None:
        return None


DISCARD: BlobWriter = _Discard()
