"""The safetensors profile and the tensor index, applied to blobs as an archive is read.

The streaming reader and random access both go through `TensorProfiles`, so
a hostile safetensors file is refused the same way however the archive is
read: the reader feeds each bound blob's bytes in order to the collector
`collector` returns (it keeps only the header, a few KiB), and calls `check`
once the blob's digests matched and before the sink hears the blob is done.
The check is the header plus arithmetic: no extra pass over the payload.
When the manifest has a tensor index (format 1.1), the blob's header must
describe exactly the tensors the index lists.
"""

from __future__ import annotations

from snaparc.errors import CorruptArchiveError, SafetensorsError
from snaparc.format.manifest import BlobEntry, Manifest, profiled_blobs
from snaparc.format.safetensors import HeadCollector, SafetensorsHeader


class TensorProfiles:
    """Which blobs of one manifest the profile binds, and their check."""

    __slots__ = ("_bound", "_index")

    def __init__(self, manifest: Manifest) -> None:
        self._bound = profiled_blobs(manifest)
        self._index = manifest.tensors

    def collector(self, blob: BlobEntry) -> HeadCollector | None:
        return HeadCollector() if blob.sha256 in self._bound else None

    def check(self, blob: BlobEntry, head: HeadCollector) -> SafetensorsHeader:
        """Refuse (exit 3) a bound blob outside the profile, naming its file; and
        (exit 1) one whose header disagrees with the manifest's tensor index."""
        path = self._bound[blob.sha256]
        try:
            header = head.check(blob.size)
        except SafetensorsError as exc:
            raise SafetensorsError(f"{path}: {exc}", rule=exc.rule, path=path) from None
        listed = self._index.get(blob.sha256)
        if listed is not None and listed != header.tensors:
            raise CorruptArchiveError(
                f"{path}: its safetensors header disagrees with the manifest's tensor index",
                path=path,
            )
        return header
