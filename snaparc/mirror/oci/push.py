"""Push a `.dlmsnap` archive to an OCI registry as a ModelPack artifact.

Order (spec/OCI.md, "Push"):

1. verify the whole archive with the verified reader; a bad archive is never
   pushed (a thin archive is pushed with the blobs it stores: its base's
   blobs stay in its base, and a reader needs `--base` as for the file);
2. find the zstd level that reproduces every frame of the archive from its
   decompressed bytes (the record promises a pull can rebuild the file byte
   for byte; an archive this zstd cannot reproduce is refused, exit 2);
3. upload every blob the repository lacks (HEAD first; a blob whose size is
   right is skipped: its content is checked by every pull): each file's raw
   bytes, the archive manifest, the record, the config;
4. PUT the manifest, by tag (or by digest when no tag is given);
5. then the OMS bundles travelling with the archive, as referrers of that
   manifest (`snaparc.mirror.oci.signatures`).

Every step is idempotent: an interrupted push leaves blobs nothing points
to, and running it again skips them.
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

import zstandard

from snaparc.archive.input import ArchiveInput
from snaparc.errors import IOFailure, UsageError
from snaparc.format.codec import FrameCodec, blob_codec
from snaparc.format.constants import FRAME_SIZE
from snaparc.format.limits import DEFAULT_LIMITS, Limits
from snaparc.mirror.oci.client import (
    RegistryClient,
    RegistryError,
    RegistryTransientError,
    UploadSessionLost,
    UploadSessionStore,
)
from snaparc.mirror.oci.frames import LEVELS, ZSTD_VERSION, FrameCompressor, member_data
from snaparc.mirror.oci.layout import OCI_MANIFEST, OCIRecord, build_artifact, encode_record
from snaparc.mirror.oci.sessions import UploadSessions

CHUNK_SIZE = 64 * 1024 * 1024  # blobs larger than this are uploaded in chunks this size
CHUNK_SIZE_ENV = "SNAPARC_OCI_CHUNK_SIZE"
MIN_CHUNK_SIZE = 1024 * 1024
MAX_CHUNK_SIZE = 4 * 1024**3


def chunk_size_from_env(env: Mapping[str, str] | None = None) -> int:
    """`SNAPARC_OCI_CHUNK_SIZE` (bytes, 1 MiB to 4 GiB), else 64 MiB."""
    text = (os.environ if env is None else env).get(CHUNK_SIZE_ENV, "").strip()
    if not text:
        return CHUNK_SIZE
    if not text.isdigit() or not MIN_CHUNK_SIZE <= int(text) <= MAX_CHUNK_SIZE:
        raise UsageError(
            f"{CHUNK_SIZE_ENV} must be a number of bytes from {MIN_CHUNK_SIZE} to "
            f"{MAX_CHUNK_SIZE}; got {text!r}"
        )
    return int(text)


class OCIEncodingError(UsageError):
    """The archive's frames cannot be reproduced by this zstd at any level."""


@dataclass(frozen=True, slots=True)
class OCIPushReport:
    archive_id: str
    ref: str | None
    manifest_digest: str
    bytes_sent: int
    bytes_skipped: int
    objects_sent: int
    objects_skipped: int
    record_written: bool  # the manifest was PUT
    kept_other_encoding: bool = False
    level: int = 3
    objects_mounted: int = 0  # of objects_skipped: mounted from another repository
    retries: int = 0  # registry requests retried (spec/OCI.md, section 7)


def _pread(f: BinaryIO, start: int, end: int) -> bytes:
    f.seek(start)
    data = f.read(end - start)
    if len(data) != end - start:
        raise IOFailure(f"archive changed while it was pushed (short read at {start})")
    return data


def _decompress(frame: bytes) -> bytes:
    declared = zstandard.frame_content_size(frame)
    if not 0 <= declared <= FRAME_SIZE:
        raise IOFailure("archive changed while it was pushed (a frame's size is not its own)")
    return zstandard.ZstdDecompressor().decompress(frame, max_output_size=FRAME_SIZE)


def _reproduces(comp: FrameCompressor, frame: bytes) -> bool:
    return comp.compress(_decompress(frame)) == frame


def find_level(
    frames: list[tuple[int, int]], f: BinaryIO, *, jobs: int, first: Iterable[int] = (3,)
) -> int:
    """The level whose compression of every frame's bytes is that frame.

    Levels that fail on the first frame (the manifest's, small) are dropped at
    once, so a wrong level costs one small frame; the right one costs one
    decompression and one compression of every frame.
    """
    preferred = list(dict.fromkeys([*first, *LEVELS]))
    head = _pread(f, *frames[0])
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="snaparc-oci-level") as pool:
        for level in preferred:
            comp = FrameCompressor(level)
            if not _reproduces(comp, head):
                continue
            if _all_reproduce(comp, frames[1:], f, pool, jobs):
                return level
    raise OCIEncodingError(
        f"this archive's zstd frames cannot be rebuilt by zstd {ZSTD_VERSION} at any level "
        "1-19 (it was written by another zstd version); an OCI registry stores files raw, so "
        "a pull could not give the same bytes back: pack it again with this snaparc, or push "
        "it to a directory or S3 mirror, which stores frames as they are"
    )


def _all_reproduce(
    comp: FrameCompressor,
    frames: list[tuple[int, int]],
    f: BinaryIO,
    pool: ThreadPoolExecutor,
    jobs: int,
) -> bool:
    pending: deque[Future[bool]] = deque()
    try:
        for start, end in frames:
            while len(pending) >= jobs:
                if not pending.popleft().result():
                    return False
            pending.append(pool.submit(_reproduces, comp, _pread(f, start, end)))
        return all(fut.result() for fut in pending)
    finally:
        for fut in pending:
            fut.cancel()


def _blob_chunks(
    f: BinaryIO, ranges: list[tuple[int, int]], size: int, sha: str, codec: FrameCodec | None
) -> Iterator[bytes]:
    """A stored blob's bytes (its content: a coded member is decoded, so the
    registry holds the file as it is), decompressed from its frames; checked
    at the end."""
    h = hashlib.sha256()

    def frame(j: int, start: int, end: int) -> bytes:
        raw = _decompress(_pread(f, start, end))
        if codec is None:
            return raw
        out = bytearray(raw)
        codec.decode(j, memoryview(out))
        return bytes(out)

    raw = (frame(j, s, e) for j, (s, e) in enumerate(ranges))
    for piece in member_data(raw, size):
        h.update(piece)
        yield piece
    if h.hexdigest() != sha:
        raise IOFailure(f"archive changed while it was pushed (blob {sha} differs)")


def _upload(
    client: RegistryClient,
    digest: str,
    size: int,
    chunks: Callable[[], Iterable[bytes]],
    mount_from: str | None,
    chunk_size: int | None,
    sessions: UploadSessionStore | None,
) -> bool:
    """Upload one blob (True) or mount it (False). An upload that failed in a
    way a retry may cure (a streamed PUT, which cannot be sent again as it is,
    cut or answered 5xx; a chunked upload whose session the registry lost)
    starts over in a new session, up to the client's retries, with backoff."""
    retries = client.policy.retries
    for attempt in range(retries + 1):
        try:
            return client.upload_blob(
                digest,
                size,
                chunks(),
                mount_from=mount_from,
                chunk_size=chunk_size,
                sessions=sessions,
            )
        except (RegistryTransientError, UploadSessionLost):
            if attempt == retries:
                raise
        client.backoff(attempt)
    raise AssertionError("unreachable")


def push_oci(
    archive: ArchiveInput,
    client: RegistryClient,
    *,
    tag: str | None = None,
    jobs: int = 4,
    threads: int | None = None,
    limits: Limits = DEFAULT_LIMITS,
    progress: Callable[[int], None] | None = None,
    mount_from: str | None = None,
    chunk_size: int | None = CHUNK_SIZE,
    sessions: UploadSessions | None = None,
    signatures: Mapping[str, bytes] | None = None,
) -> OCIPushReport:
    """Verify `archive` (a seekable local file or split volumes), then upload
    what the repository lacks (mounting it from the repository `mount_from`
    of the same registry where the registry can), then the manifest. Blobs
    above `chunk_size` bytes go up in resumable chunks; with `sessions`, an
    upload a killed push of the same archive left is continued (the file is
    removed when the push ends, kept when the registry failed it).
    `signatures` (kind -> bundle bytes, checked by the caller) are attached
    to the manifest last."""
    from snaparc.archive.index import verified_index
    from snaparc.mirror.oci.signatures import push_signatures

    if not archive.seekable:
        raise UsageError(f"push reads a local archive file, not {archive.name}")
    client.ping()  # fail fast (no registry, no permission) before the long verification
    f = archive.stream
    index = verified_index(archive, threads=threads, limits=limits)
    manifest = index.manifest  # a thin archive's external blobs have no layer
    offsets = index.frame_offsets
    ranges = [(offsets[i], offsets[i + 1]) for i in range(len(offsets) - 1)]
    data_frames = ranges[:-1]  # the end-of-archive frame is kept in the record
    level = find_level(data_frames, f, jobs=max(1, jobs))

    file_hash = hashlib.sha256()
    f.seek(0)
    while chunk := f.read(1 << 20):
        file_hash.update(chunk)
    members = index.layout.members
    record = OCIRecord(
        archive_id=index.archive_id,
        level=level,
        zstd=ZSTD_VERSION,
        frames=tuple(
            tuple(
                e.compressed_size
                for e in index.seek_table[m.first_frame : m.first_frame + m.num_frames]
            )
            for m in members
        ),
        end_frame=_pread(f, *index.eof_range()),
        file_size=index.file_size,
        file_sha256=file_hash.hexdigest(),
    )
    if record.seek_table(manifest, len(index.manifest_bytes)) != _pread(
        f, index.seek_table_offset, index.file_size
    ):
        raise IOFailure(f"{archive.name} changed while it was pushed (seek table differs)")
    record_bytes = encode_record(record)
    artifact = build_artifact(manifest, index.manifest_bytes, record_bytes)

    uploads: list[tuple[str, int, Callable[[], Iterable[bytes]]]] = []
    for m in members:
        if m.blob is None:
            continue
        blob_ranges = ranges[m.first_frame : m.first_frame + m.num_frames]
        sha, size = m.blob.sha256, m.blob.size
        codec = blob_codec(manifest, m.blob)
        uploads.append(
            (
                f"sha256:{sha}",
                size,
                lambda r=blob_ranges, s=size, h=sha, c=codec: _blob_chunks(f, r, s, h, c),  # type: ignore[misc]
            )
        )
    for layer in artifact.layers[-2:]:
        data = index.manifest_bytes if layer is artifact.layers[-2] else record_bytes
        uploads.append((layer.digest, layer.size, lambda d=data: [d]))  # type: ignore[misc]
    cfg = artifact.config
    uploads.append((artifact.config_descriptor.digest, len(cfg), lambda: [cfg]))

    sent = skipped = n_sent = n_skipped = n_mounted = 0
    try:
        for digest, size, chunks in uploads:
            if client.head_blob(digest) == size:
                skipped += size
                n_skipped += 1
            elif _upload(client, digest, size, chunks, mount_from, chunk_size, sessions):
                sent += size
                n_sent += 1
            else:
                skipped += size
                n_skipped += 1
                n_mounted += 1
            if progress is not None:
                progress(size)
        reference = tag or artifact.digest
        client.put_manifest(reference, artifact.manifest)
        subject = {
            "mediaType": OCI_MANIFEST,
            "digest": artifact.digest,
            "size": len(artifact.manifest),
        }
        push_signatures(client, subject, index.archive_id, signatures or {})
    except RegistryError:
        raise  # the session file stays for the next push (a stale temp file once we exit)
    except BaseException:
        if sessions is not None:
            sessions.close()
        raise
    if sessions is not None:
        sessions.close()
    sent += len(artifact.manifest)
    n_sent += 1
    return OCIPushReport(
        index.archive_id,
        tag,
        artifact.digest,
        sent,
        skipped,
        n_sent,
        n_skipped,
        True,
        level=level,
        objects_mounted=n_mounted,
        retries=client.stats.retries,
    )
