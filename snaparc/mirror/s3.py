"""`S3Store`: the store protocol on obstore (imported only here, lazily).

- `put(mode="create")` is a single conditional PUT (`If-None-Match: *`): S3
  refuses it atomically when the key exists, which obstore reports as
  `AlreadyExistsError`, mapped to `ObjectExistsError`. obstore 0.12 cannot
  make a multipart upload conditional, so create-only objects are kept small
  (the mirror layout splits big blobs into parts; spec/MIRROR.md).
- `put(mode="overwrite")` of more than `multipart_threshold` bytes uses a
  parallel multipart upload with `chunk_size` parts.
- A 404 naming `NoSuchBucket` becomes `BucketNotFoundError`, 401/403 become
  `RemotePermissionError`, other 4xx `RemoteError`, and 5xx, 408, 429,
  connection failures and timeouts `TransientStoreError`.
- obstore's own retries are off: `RetryingStore` retries, counts and bounds
  every retry, and resumes a broken read. A request that receives nothing for
  the idle timeout (connecting, or between two reads of the socket) fails as a
  timeout (reqwest's `read_timeout`, which restarts after every read); the
  overall request timeout is only a backstop (`REQUEST_BACKSTOP`).
- Uploads go through a second client. reqwest's read timer runs while a
  request body is being sent (no byte of the answer comes until it is all
  sent), so the idle time would abandon every upload slower than it, however
  steadily it progresses. The write client's read and overall timeouts are
  both `TransferSettings.upload_timeout` of the largest request body
  (`multipart_threshold`, 64 MiB: 30 s + 256 s by default): a slow uplink
  keeps its uploads, a server that stops reading one is abandoned after it
  and the put is retried.
- Reads stream the body in chunks of `READ_CHUNK`: a read that breaks off
  raises `PartialReadError` with the bytes received, so a retry fetches only
  the rest (a range request).
- ETags and S3 checksums are never used as content identity.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, TypeVar

from snaparc.errors import RemoteError
from snaparc.mirror.store import (
    BucketNotFoundError,
    ObjectExistsError,
    ObjectInfo,
    ObjectNotFoundError,
    PartialReadError,
    PutMode,
    RemotePermissionError,
    TransientStoreError,
    check_key,
)
from snaparc.mirror.url import S3Settings

if TYPE_CHECKING:
    from obstore.store import ClientConfig, RetryConfig, S3Config

T = TypeVar("T")
_STATUS = re.compile(r"status code: (\d{3})")
MIB = 1024 * 1024
# Body chunks handed from obstore to Python; a broken read loses at most one.
READ_CHUNK = 256 * 1024
# A request may take this long in all, however steadily it makes progress.
REQUEST_BACKSTOP = timedelta(hours=6)


class S3Store:
    """Objects under `s3://bucket/prefix/`."""

    def __init__(
        self,
        bucket: str,
        prefix: str,
        settings: S3Settings,
        *,
        chunk_size: int = 8 * MIB,
        multipart_threshold: int = 64 * MIB,
        max_concurrency: int = 4,
    ) -> None:
        from obstore.store import S3Store as _ObS3Store

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.chunk_size = chunk_size
        self.multipart_threshold = multipart_threshold
        self.max_concurrency = max_concurrency
        config: S3Config = {}
        if settings.endpoint:
            config["endpoint"] = settings.endpoint
        if settings.region:
            config["region"] = settings.region
        if settings.access_key_id:
            config["access_key_id"] = settings.access_key_id
        if settings.secret_access_key:
            config["secret_access_key"] = settings.secret_access_key
        if settings.session_token:
            config["session_token"] = settings.session_token
        idle = timedelta(seconds=settings.transfer.idle_timeout)
        largest = max(multipart_threshold, chunk_size)
        upload = min(timedelta(seconds=settings.transfer.upload_timeout(largest)), REQUEST_BACKSTOP)

        def client(read: timedelta, timeout: timedelta) -> ClientConfig:
            options: ClientConfig = {
                "connect_timeout": idle,
                "read_timeout": read,
                "timeout": timeout,
            }
            if settings.allow_http:
                options["allow_http"] = True
            return options

        retry: RetryConfig = {"max_retries": 0}
        try:
            self._store = _ObS3Store(
                bucket,
                prefix=self.prefix or None,
                config=config,
                client_options=client(idle, REQUEST_BACKSTOP),
                retry_config=retry,
            )
            self._writes = _ObS3Store(
                bucket,
                prefix=self.prefix or None,
                config=config,
                client_options=client(upload, upload),
                retry_config=retry,
            )
        except Exception as exc:
            raise RemoteError(f"cannot configure S3 store for s3://{bucket}: {exc}") from None

    def describe(self, key: str = "") -> str:
        path = "/".join(p for p in (self.prefix, key) if p)
        return f"s3://{self.bucket}/{path}" if path else f"s3://{self.bucket}"

    def _call(self, key: str, what: str, fn: Callable[[], T]) -> T:
        from obstore import exceptions as obx

        try:
            return fn()
        except FileNotFoundError as exc:
            if "NoSuchBucket" in str(exc):
                raise self._no_bucket() from None
            raise ObjectNotFoundError(f"{self.describe(key)} not found", key=key) from None
        except obx.AlreadyExistsError:
            raise ObjectExistsError(f"{self.describe(key)} already exists", key=key) from None
        except (obx.PermissionDeniedError, obx.UnauthenticatedError) as exc:
            raise RemotePermissionError(
                f"permission denied to {what} {self.describe(key)}: {_first_line(exc)}"
            ) from None
        except obx.BaseError as exc:
            raise self._classify(exc, key, what) from None

    def _no_bucket(self) -> BucketNotFoundError:
        return BucketNotFoundError(f"S3 bucket {self.bucket!r} does not exist", bucket=self.bucket)

    def _classify(self, exc: Exception, key: str, what: str) -> RemoteError:
        text = str(exc)
        if "NoSuchBucket" in text:
            return self._no_bucket()
        m = _STATUS.search(text)
        status = int(m.group(1)) if m else None
        msg = f"cannot {what} {self.describe(key)}: {_first_line(exc)}"
        if status in (401, 403) or "AccessDenied" in text:
            return RemotePermissionError(msg)
        if status is not None and 400 <= status < 500 and status not in (408, 429):
            return RemoteError(msg)
        return TransientStoreError(msg)

    def get(self, key: str) -> bytes:
        check_key(key)
        return self._read(key, 0, None)

    def get_range(self, key: str, start: int, end: int) -> bytes:
        check_key(key)
        if start < 0 or end < start:
            raise ValueError(f"bad range [{start}, {end})")
        if start == end:
            return b""
        return self._read(key, start, end)

    def _read(self, key: str, start: int, end: int | None) -> bytes:
        """Bytes `[start, end)` (`end=None`: all), streamed in chunks."""
        import obstore

        if end is None:
            result = self._call(key, "read", lambda: obstore.get(self._store, key))
        else:
            try:
                result = self._call(
                    key,
                    "read",
                    lambda: obstore.get(self._store, key, options={"range": (start, end)}),
                )
            except RemoteError as exc:
                m = _STATUS.search(str(exc))
                if m and m.group(1) == "416":  # the object ends before `start`
                    return b""
                raise
        stop = int(result.range[1])  # the end of what this response carries
        chunks: list[bytes] = []
        received = 0
        try:
            for chunk in result.stream(min_chunk_size=READ_CHUNK):
                chunks.append(chunk)
                received += len(chunk)
        except Exception as exc:  # obstore raises its own (and builtin) errors mid-body
            raise PartialReadError(
                f"reading {self.describe(key)} broke off after {received} bytes: "
                f"{_first_line(exc)}",
                key=key,
                start=start,
                end=stop,
                received=b"".join(chunks),
            ) from None
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def head(self, key: str) -> ObjectInfo | None:
        import obstore

        check_key(key)
        try:
            meta = self._call(key, "stat", lambda: obstore.head(self._store, key))
        except ObjectNotFoundError:
            return None
        return ObjectInfo(key, int(meta["size"]))

    def put(self, key: str, data: bytes, *, mode: PutMode) -> None:
        import obstore

        check_key(key)
        if mode == "create":
            self._call(
                key,
                "write",
                lambda: obstore.put(self._writes, key, data, mode="create", use_multipart=False),
            )
            return
        big = len(data) > self.multipart_threshold
        self._call(
            key,
            "write",
            lambda: obstore.put(
                self._writes,
                key,
                data,
                mode="overwrite",
                use_multipart=big,
                chunk_size=self.chunk_size,
                max_concurrency=self.max_concurrency,
            ),
        )

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        import obstore

        if prefix:
            check_key(prefix.rstrip("/"))

        def collect() -> list[ObjectInfo]:
            out: list[ObjectInfo] = []
            for chunk in obstore.list(self._store, prefix.rstrip("/") or None, chunk_size=1000):
                out.extend(ObjectInfo(m["path"], int(m["size"])) for m in chunk)
            return out

        return iter(self._call(prefix, "list", collect))

    def delete(self, key: str) -> None:
        import obstore

        check_key(key)
        try:  # S3 answers 204 for an absent key; a store that says 404 means the same
            self._call(key, "delete", lambda: obstore.delete(self._store, key))
        except ObjectNotFoundError:
            return


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
