"""Read archives back from an OCI registry.

`open_oci_input(target)` checks the artifact and opens the rebuilt `.dlmsnap`
bytes as an `ArchiveInput` for any reader; `pull_oci` streams them through
the verified reader into a temp file and publishes it by rename only when
everything checked out. In order (spec/OCI.md, "Pull"):

1. GET the manifest (by tag or digest; a digest is checked against the bytes);
2. GET the archive manifest layer (its sha256 is the archive id) and the
   record layer, each checked against its descriptor's digest and size;
3. rebuild the OCI manifest those two imply and refuse any other bytes
   (every layer's digest, size, media type and path is thereby checked);
4. stream: each file's raw layer, its length checked before and its sha256
   checked before the member's last frame is handed out, compressed as the
   record says, each frame's size checked against the record; the end frame
   and the seek table from the record; the whole file's size and sha256 at
   the end;
5. and the reader checks, as for any file, every frame, both digests of
   every blob, and that the archive's id is the one the artifact names.

With a resume file (`snaparc.mirror.resume`, `snaparc.mirror.oci.resume`),
the whole members a killed run left in it are read from it instead of
their layers being fetched, through the same checks.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import os
from collections import deque
from collections.abc import Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack, contextmanager
from functools import partial
from pathlib import Path
from typing import BinaryIO, cast

from snaparc.archive.input import ArchiveInput, TransferCounts
from snaparc.errors import DigestMismatchError, IdentityMismatchError, IntegrityError
from snaparc.format.codec import blob_codec
from snaparc.format.constants import MANIFEST_MEMBER
from snaparc.format.layout import blob_member_name
from snaparc.format.limits import DEFAULT_LIMITS, Limits
from snaparc.format.manifest import parse_manifest
from snaparc.mirror.oci.client import BlobLengthError, RegistryClient
from snaparc.mirror.oci.frames import ZSTD_VERSION, FrameCompressor, member_frames
from snaparc.mirror.oci.layout import (
    MAX_OCI_MANIFEST_BYTES,
    MAX_RECORD_BYTES,
    CheckedArtifact,
    OCIArtifactError,
    build_artifact,
    check_record,
    decode_record,
    explain_difference,
    find_snaparc_layers,
    sha256_digest,
)
from snaparc.mirror.oci.resume import OCIResumable, Prefix, cached_data, cached_prefix
from snaparc.mirror.oci.url import OCITarget
from snaparc.mirror.pull import PullReport, publish_pull
from snaparc.mirror.resume import Kept, ResumeAt, open_resume_file
from snaparc.progress import Progress

READ_CHUNK = 1 << 20


class OCIBlobDigestError(DigestMismatchError):
    """A registry blob does not hold the bytes its digest names."""


class OCIRebuildError(IntegrityError):
    """The rebuilt archive differs from what the record promises."""


def _small_blob(client: RegistryClient, digest: str, size: int, limit: int, what: str) -> bytes:
    if size > limit:
        raise OCIArtifactError(f"{what} layer claims {size} bytes (limit {limit})")
    data = client.get_small_blob(digest, limit)
    if len(data) != size or sha256_digest(data) != digest:
        raise OCIBlobDigestError(
            f"{what}: registry blob {client.describe('@' + digest)} is damaged or tampered "
            f"with ({len(data)} bytes, {sha256_digest(data)}; expected {size}, {digest})",
            blob=digest[7:],
            algorithm="sha256",
            expected=digest[7:],
            actual=sha256_digest(data)[7:],
        )
    return data


def check_artifact(
    client: RegistryClient, target: OCITarget, *, limits: Limits = DEFAULT_LIMITS
) -> CheckedArtifact:
    """Steps 1-3: fetch and check everything but the file layers' contents."""
    reference = target.reference
    if reference is None:
        from snaparc.errors import UsageError

        raise UsageError(f"{target}: name a tag (:TAG) or a manifest digest (@sha256:...)")
    data, _ = client.get_manifest(reference, MAX_OCI_MANIFEST_BYTES)
    digest = sha256_digest(data)
    if target.digest is not None and digest != target.digest:
        raise IdentityMismatchError(
            f"{target}: the registry sent a manifest whose digest is {digest}; refusing it",
            expected=target.digest,
            actual=digest,
        )
    layers = find_snaparc_layers(data)
    manifest_bytes = _small_blob(
        client,
        layers.manifest.digest,
        layers.manifest.size,
        limits.max_manifest_bytes,
        f"the manifest of archive {layers.archive_id}",
    )
    manifest = parse_manifest(manifest_bytes, limits=limits)
    record_bytes = _small_blob(
        client, layers.record.digest, layers.record.size, MAX_RECORD_BYTES, "the OCI record"
    )
    record = decode_record(record_bytes, archive_id=layers.archive_id)
    check_record(record, manifest, len(manifest_bytes))
    expected = build_artifact(manifest, manifest_bytes, record_bytes)
    if expected.manifest != data:
        raise OCIArtifactError(
            f"{target}: the OCI manifest is not the one archive {layers.archive_id} implies: "
            f"{explain_difference(expected, data)}; refusing it"
        )
    return CheckedArtifact(target, digest, manifest, manifest_bytes, record, data)


def _layer_chunks(
    client: RegistryClient, sha: str, size: int, source: Iterable[bytes] | None = None
) -> Iterator[bytes]:
    """A raw layer's bytes: its length checked first, its sha256 before its last
    byte (a response that breaks off is resumed by `read_blob`). `source`: the
    bytes taken from a resume file instead, checked the same way."""
    digest = f"sha256:{sha}"
    h = hashlib.sha256()
    left = size
    chunks = client.read_blob(digest, size, READ_CHUNK) if source is None else source
    try:
        for chunk in chunks:
            left -= len(chunk)
            h.update(chunk)
            if not left and h.hexdigest() != sha:
                raise OCIBlobDigestError(
                    f"registry blob {client.describe('@' + digest)} is damaged or tampered with "
                    f"(sha256 {h.hexdigest()})",
                    blob=sha,
                    algorithm="sha256",
                    expected=sha,
                    actual=h.hexdigest(),
                )
            yield chunk
    except BlobLengthError as exc:
        raise OCIBlobDigestError(
            f"registry blob {client.describe('@' + digest)} is {exc.length} bytes, not {size}: "
            "damaged or tampered with",
            blob=sha,
            algorithm="sha256",
            expected=sha,
            actual="(size differs)",
        ) from None


class OCIArchiveStream(io.RawIOBase):
    """A read-only, non-seekable stream of an archive rebuilt from an OCI artifact."""

    def __init__(
        self,
        client: RegistryClient,
        art: CheckedArtifact,
        *,
        jobs: int = 4,
        cache: int | None = None,
        keep: Kept | None = None,
    ) -> None:
        super().__init__()
        self.client = client
        self.art = art
        self._cache = cache
        self._keep = keep
        self._prefix = Prefix() if cache is None else cached_prefix(cache, art)
        self._cached = self._prefix.members
        if keep is not None and cache is not None:
            try:
                os.ftruncate(cache, self._prefix.size)
            except OSError:
                keep.close()
        # the layer bytes not fetched: the data of the blobs taken from the file
        # (member 0, the archive manifest, is fetched anyway: it is checked first)
        whole = art.manifest.stored_blobs[: max(0, self._cached - 1)]
        self.skipped = sum(b.size for b in whole) + self._prefix.data
        self._jobs = max(1, jobs)
        self._pool = ThreadPoolExecutor(max_workers=self._jobs, thread_name_prefix="snaparc-oci")
        self._chunks = self._generate()
        self._buf = memoryview(b"")

    def readable(self) -> bool:
        return True

    def _raw_frames(self) -> Iterator[tuple[int, int, bytes]]:
        m = self.art.manifest
        yield from (
            (0, j, raw)
            for j, raw in enumerate(
                member_frames(
                    MANIFEST_MEMBER, len(self.art.manifest_bytes), [self.art.manifest_bytes]
                )
            )
        )
        for i, blob in enumerate(m.stored_blobs, start=1):
            source: Iterable[bytes] | None = None
            if self._cache is not None and i < self._cached:
                source = cached_data(self._cache, self.art, i)
            elif self._cache is not None and i == self._cached and self._prefix.frames:
                # the frames a killed run left of this layer, then the rest of it
                source = itertools.chain(
                    cached_data(self._cache, self.art, i, self._prefix.frames),
                    self.client.read_blob(
                        f"sha256:{blob.sha256}", blob.size, READ_CHUNK, start=self._prefix.data
                    ),
                )
            data = _layer_chunks(self.client, blob.sha256, blob.size, source)
            codec = blob_codec(m, blob)  # the registry holds content: code it as pack did
            name = blob_member_name(blob.sha256, blob.codec)
            for j, raw in enumerate(member_frames(name, blob.size, data)):
                if codec is not None:
                    coded = bytearray(raw)
                    codec.encode(j, memoryview(coded))
                    raw = bytes(coded)
                yield i, j, raw

    def _generate(self) -> Generator[bytes, None, None]:
        rec = self.art.record
        comp = FrameCompressor(rec.level)
        h = hashlib.sha256()
        count = 0
        pending: deque[tuple[int, int, Future[bytes]]] = deque()
        kept_from = self._prefix.size

        def take() -> bytes:
            i, j, fut = pending.popleft()
            frame = fut.result()
            if len(frame) != rec.frames[i][j]:
                what = "the archive manifest" if i == 0 else f"blob {self._blob(i)}"
                raise OCIRebuildError(
                    f"archive {rec.archive_id}: frame {j} of {what} rebuilt from the registry is "
                    f"{len(frame)} bytes, not {rec.frames[i][j]} as pushed"
                    + (
                        f" (pushed with zstd {rec.zstd}, rebuilt with {ZSTD_VERSION})"
                        if rec.zstd != ZSTD_VERSION
                        else ""
                    )
                )
            if self._keep is not None and count >= kept_from:
                self._keep.write(frame, count)
            return frame

        try:
            for i, j, raw in self._raw_frames():
                while len(pending) >= self._jobs:
                    frame = take()
                    h.update(frame)
                    count += len(frame)
                    yield frame
                pending.append((i, j, self._pool.submit(comp.compress, raw)))
            while pending:
                frame = take()
                h.update(frame)
                count += len(frame)
                yield frame
        finally:
            for _, _, fut in pending:
                fut.cancel()
        tail = rec.end_frame + rec.seek_table(self.art.manifest, len(self.art.manifest_bytes))
        h.update(tail)
        count += len(tail)
        if count != rec.file_size or h.hexdigest() != rec.file_sha256:
            raise OCIRebuildError(
                f"archive {rec.archive_id} rebuilt from the registry is not the file pushed "
                f"({count} bytes, sha256 {h.hexdigest()}; expected {rec.file_size}, "
                f"{rec.file_sha256})"
                + (
                    f"; it was pushed with zstd {rec.zstd}, this is {ZSTD_VERSION}"
                    if rec.zstd != ZSTD_VERSION
                    else ""
                )
            )
        yield tail

    def _blob(self, i: int) -> str:
        return self.art.manifest.stored_blobs[i - 1].sha256

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        if self.closed:
            raise ValueError("read from a closed stream")
        while not self._buf:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._buf = memoryview(chunk)
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            self._chunks.close()
            self._pool.shutdown(wait=False, cancel_futures=True)
        super().close()


@contextmanager
def open_oci_input(
    target: OCITarget,
    *,
    client: RegistryClient | None = None,
    limits: Limits = DEFAULT_LIMITS,
    jobs: int = 4,
    resume: ResumeAt | None = None,
) -> Iterator[ArchiveInput]:
    """The archive the artifact `target` names, rebuilt from the registry.

    The input carries the archive id the artifact names (`expected_id`),
    which every reader checks against the manifest it rebuilds. `resume`:
    where a killed run's resume file is found and this run's kept
    (`snaparc.mirror.resume`); it is removed when the block ends.
    """
    client = client or RegistryClient(target)
    art = check_artifact(client, target, limits=limits)
    with ExitStack() as stack:
        kept = None
        if resume is not None:
            kept = stack.enter_context(open_resume_file(resume, OCIResumable(art)))
        raw = OCIArchiveStream(
            client,
            art,
            jobs=jobs,
            cache=None if kept is None else kept.fd,
            keep=None if kept is None else kept.kept,
        )
        stream = stack.enter_context(io.BufferedReader(raw, buffer_size=1 << 20))
        yield ArchiveInput(
            cast(BinaryIO, stream),
            str(target),
            art.record.file_size,
            False,
            expected_id=art.archive_id,
            transfer=partial(_counts, client, raw),
        )


def _counts(client: RegistryClient, stream: OCIArchiveStream) -> TransferCounts:
    stats = client.stats
    return TransferCounts(stats.bytes_received, stream.skipped, stats.retries)


def pull_oci(
    target: OCITarget,
    output: Path,
    *,
    client: RegistryClient | None = None,
    jobs: int = 4,
    threads: int | None = None,
    limits: Limits = DEFAULT_LIMITS,
    force: bool = False,
    resume: bool = True,
    progress: Progress | None = None,
) -> PullReport:
    """Rebuild the archive at `output`, byte-identical to the one pushed;
    nothing carries the name `output` unless every check passed. With
    `resume`, the temp file a killed pull of the same `output` left is taken
    over (as for a mirror: `snaparc.mirror.resume`) and the whole members it
    holds are read from it instead of fetched."""
    client = client or RegistryClient(target)
    registry = client

    def opener(at: ResumeAt) -> AbstractContextManager[ArchiveInput]:
        return open_oci_input(target, client=registry, limits=limits, jobs=jobs, resume=at)

    return publish_pull(
        opener, Path(output), threads=threads, limits=limits, force=force, resume=resume,
        progress=progress,
    )  # fmt: skip
