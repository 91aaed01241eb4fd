"""Object stores behind a mirror: one small protocol per capability.

A store maps keys to immutable-or-replaced byte strings. Keys are relative,
`/`-separated, and every segment starts with a letter, digit, `_` or `-`
(so `..`, empty segments and hidden names are impossible, and a store may use
names starting with `.` for its own temporary files).

Contracts every store passes (tests/mirror/test_store_conformance.py):

- `get(key)` returns the whole object or raises `ObjectNotFoundError`.
- `get_range(key, start, end)` returns bytes `[start, end)`; fewer if the
  object is shorter; `ObjectNotFoundError` if it is absent.
- `put(key, data, mode="create")` is atomic and create-only: readers never see
  a partial object, and if the key exists it raises `ObjectExistsError` and
  leaves the existing object alone, also when writers race.
  `mode="overwrite"` atomically replaces.
- `head(key)` returns `ObjectInfo` or None when the key is absent.
- `list(prefix)` yields every object whose key starts with the segment
  prefix `prefix` (`""` for all), in no particular order.
- `delete(key)` removes the object; deleting an absent key is no error
  (idempotent, as S3's DELETE). Only the lifecycle operations (mirror rm,
  gc, and lock release) delete, under the rules of spec/MIRROR.md section 10.

A store never interprets content and never reports a checksum: content
identity is always checked by the caller with its own digests. Errors are
`RemoteError` subclasses (exit 10); `TransientStoreError` marks the ones a
retry may cure, and `RetryingStore` retries exactly those (a read that broke
off after some bytes raises `PartialReadError` with them, and the retry asks
only for the rest: spec/MIRROR.md, "Timeouts and retries").
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import BinaryIO, Literal, Protocol, TypeVar

from snaparc.errors import (
    InputNotFoundError,
    IOFailure,
    NotRegularFileError,
    RemoteError,
    RemoteNotFoundError,
)
from snaparc.mirror.retry import BASE_DELAY, MAX_DELAY, RetryPolicy, TransferStats
from snaparc.mirror.url import (
    MirrorURL,
    S3Settings,
    TransferSettings,
    s3_settings,
    transfer_settings,
)
from snaparc.mirror.workers import off_main
from snaparc.publish import put_file
from snaparc.sidefiles import open_regular_file

PutMode = Literal["create", "overwrite"]

_SEGMENT = r"[A-Za-z0-9_-][A-Za-z0-9._-]*"
_KEY = re.compile(rf"^{_SEGMENT}(/{_SEGMENT})*$")


# --- errors ------------------------------------------------------------------


class ObjectNotFoundError(RemoteNotFoundError):
    """The key is not in the store."""

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(message)
        self.key = key


class MirrorNotFoundError(RemoteNotFoundError):
    """The mirror itself (directory or bucket) does not exist."""


class BucketNotFoundError(MirrorNotFoundError):
    """The S3 bucket does not exist."""

    def __init__(self, message: str, *, bucket: str) -> None:
        super().__init__(message)
        self.bucket = bucket


class ObjectExistsError(RemoteError, FileExistsError):
    """A create-only put found the key already present."""

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(message)
        self.key = key


class MirrorObjectTypeError(RemoteError):
    """A directory mirror's key names a FIFO, socket or device, not a file."""

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(message)
        self.key = key


class RemotePermissionError(RemoteError, PermissionError):
    """Credentials are missing, invalid, or not allowed to do this."""


class TransientStoreError(RemoteError):
    """A failure a retry may cure (connection reset, 5xx, throttling, idle timeout)."""


class PartialReadError(TransientStoreError):
    """A read of `[start, end)` broke off after `received` (its first bytes).

    Objects are immutable (content-addressed or create-only) and every byte is
    checked by its reader, so a retry may ask for `[start + len(received), end)`
    and join the two.
    """

    def __init__(self, message: str, *, key: str, start: int, end: int, received: bytes) -> None:
        super().__init__(message)
        self.key = key
        self.start = start
        self.end = end
        self.received = received


def check_key(key: str) -> str:
    if not _KEY.match(key):
        raise ValueError(f"invalid store key {key!r}")
    return key


# --- protocols ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int


class ObjectGetter(Protocol):
    def get(self, key: str) -> bytes: ...


class RangeGetter(Protocol):
    def get_range(self, key: str, start: int, end: int) -> bytes: ...


class ObjectPutter(Protocol):
    def put(self, key: str, data: bytes, *, mode: PutMode) -> None: ...


class ObjectHeader(Protocol):
    def head(self, key: str) -> ObjectInfo | None: ...


class ObjectLister(Protocol):
    def list(self, prefix: str) -> Iterator[ObjectInfo]: ...


class ObjectDeleter(Protocol):
    def delete(self, key: str) -> None: ...


class Store(
    ObjectGetter, RangeGetter, ObjectPutter, ObjectHeader, ObjectLister, ObjectDeleter, Protocol
):
    """Everything a mirror needs; `describe(key)` names a key in messages."""

    def describe(self, key: str = "") -> str: ...


# --- directory store -----------------------------------------------------------


class DirStore:
    """Objects as files under `root`.

    Writes go through `snaparc.publish.put_file`: a claimed temp file
    `.NAME.snaparc-tmp-PID@HOST-TOKEN` in the target directory, fsynced,
    then published with `os.link` (create: fails if the name exists,
    atomically) or `os.replace` (overwrite), and the directory fsynced.
    Concurrent writers in several processes are safe (without hard links,
    create falls back to check-then-rename: racing writers of a
    content-addressed key write identical bytes); temp files are never
    listed, and those of dead processes go with the next put of their key.
    Reads open only regular files: a FIFO, socket or device at a key raises
    `MirrorObjectTypeError` at once (a FIFO would block the read forever), and
    a directory is no object (`ObjectNotFoundError`).
    """

    def __init__(self, root: Path, *, create: bool = False) -> None:
        self.root = Path(root)
        if create:
            try:
                self.root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise _os_error(exc, f"cannot create mirror directory {self.root}") from None
        if not self.root.is_dir():
            if self.root.exists():
                raise RemoteError(f"mirror {self.root} is not a directory")
            raise MirrorNotFoundError(f"mirror directory {self.root} does not exist")

    def describe(self, key: str = "") -> str:
        return str(self.root / key) if key else str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def get(self, key: str) -> bytes:
        with self._open(key) as f:
            try:
                return f.read()
            except OSError as exc:
                raise _os_error(exc, f"cannot read {self.describe(key)}") from None

    def get_range(self, key: str, start: int, end: int) -> bytes:
        if start < 0 or end < start:
            raise ValueError(f"bad range [{start}, {end})")
        with self._open(key) as f:
            try:
                f.seek(start)
                return f.read(end - start)
            except OSError as exc:
                raise _os_error(exc, f"cannot read {self.describe(key)}") from None

    def _open(self, key: str) -> BinaryIO:
        try:
            return open_regular_file(self._path(key), what="mirror object")
        except InputNotFoundError:
            raise ObjectNotFoundError(f"{self.describe(key)} not found", key=key) from None
        except NotRegularFileError as exc:
            if exc.kind == "directory":  # a prefix, not an object: absent, as in every store
                raise ObjectNotFoundError(f"{self.describe(key)} not found", key=key) from None
            raise MirrorObjectTypeError(
                f"mirror object {self.describe(key)} is a {exc.kind}, not a regular file",
                key=key,
            ) from None
        except IOFailure as exc:  # raised from the OSError: permission, loop, ...
            cause = exc.__cause__
            error = cause if isinstance(cause, OSError) else exc
            raise _os_error(error, f"cannot read {self.describe(key)}") from None

    def head(self, key: str) -> ObjectInfo | None:
        try:
            st = self._path(key).stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise _os_error(exc, f"cannot stat {self.describe(key)}") from None
        if not stat.S_ISREG(st.st_mode):
            return None
        return ObjectInfo(key, st.st_size)

    def put(self, key: str, data: bytes, *, mode: PutMode) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _os_error(exc, f"cannot write {self.describe(key)}") from None
        try:
            put_file(path, data, mode=None, overwrite=mode == "overwrite")
        except FileExistsError:
            raise ObjectExistsError(f"{self.describe(key)} already exists", key=key) from None
        except OSError as exc:
            raise _os_error(exc, f"cannot write {self.describe(key)}") from None

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        base = self.root / check_key(prefix.rstrip("/")) if prefix else self.root
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel_dir = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                if name.startswith("."):
                    continue
                key = name if rel_dir == "." else f"{rel_dir}/{name}"
                try:
                    size = os.stat(os.path.join(dirpath, name)).st_size
                except FileNotFoundError:
                    continue
                yield ObjectInfo(key, size)

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            st = path.lstat()
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            raise _os_error(exc, f"cannot delete {self.describe(key)}") from None
        if stat.S_ISDIR(st.st_mode):
            return  # a prefix, not an object
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise _os_error(exc, f"cannot delete {self.describe(key)}") from None
        if key.count("/") >= 2:  # blobs/<C>/<P>: drop the per-content directory once empty
            with contextlib.suppress(OSError):
                path.parent.rmdir()


def _os_error(exc: OSError, what: str) -> RemoteError:
    if isinstance(exc, PermissionError):
        return RemotePermissionError(f"{what}: permission denied")
    return RemoteError(f"{what}: {exc.strerror or exc}")


# --- memory store ----------------------------------------------------------------


class MemoryStore:
    """A dict behind a lock; for tests and as the reference semantics."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def describe(self, key: str = "") -> str:
        return f"memory:{key}"

    def get(self, key: str) -> bytes:
        with self._lock:
            data = self.objects.get(check_key(key))
        if data is None:
            raise ObjectNotFoundError(f"{self.describe(key)} not found", key=key)
        return data

    def get_range(self, key: str, start: int, end: int) -> bytes:
        if start < 0 or end < start:
            raise ValueError(f"bad range [{start}, {end})")
        return self.get(key)[start:end]

    def head(self, key: str) -> ObjectInfo | None:
        with self._lock:
            data = self.objects.get(check_key(key))
        return None if data is None else ObjectInfo(key, len(data))

    def put(self, key: str, data: bytes, *, mode: PutMode) -> None:
        check_key(key)
        with self._lock:
            if mode == "create" and key in self.objects:
                raise ObjectExistsError(f"{self.describe(key)} already exists", key=key)
            self.objects[key] = bytes(data)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        want = prefix.rstrip("/") + "/" if prefix else ""
        with self._lock:
            items = [(k, len(v)) for k, v in self.objects.items() if k.startswith(want)]
        for k, n in items:
            yield ObjectInfo(k, n)

    def delete(self, key: str) -> None:
        check_key(key)
        with self._lock:
            self.objects.pop(key, None)


# --- retries -----------------------------------------------------------------------

T = TypeVar("T")


class RetryingStore:
    """Retry `TransientStoreError` up to `retries` times, with the backoff of
    `snaparc.mirror.retry.RetryPolicy`; a read that broke off resumes where it stopped.

    Every store operation is idempotent (put-create of the same bytes included:
    a retry that finds its own earlier write raises `ObjectExistsError`, which
    callers of content-addressed keys treat as success after a size check).
    Other errors (not found, permission, other 4xx) are never retried.

    Called on the main thread, each request runs on a daemon thread and is
    waited for in slices (`snaparc.mirror.workers`), so a signal interrupts
    the wait at once, whatever the request is doing; backoff sleeps are
    interruptible too.
    """

    def __init__(
        self,
        inner: Store,
        *,
        retries: int = 5,
        base_delay: float = BASE_DELAY,
        max_delay: float = MAX_DELAY,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.inner = inner
        self.retries = retries
        self.policy = RetryPolicy(retries, base_delay, max_delay)
        self.stats = TransferStats()
        self._sleep = sleep

    def _backoff(self, attempt: int) -> None:
        self.stats.add(retries=1)
        self.policy.pause(attempt, self._sleep)

    def _retry(self, fn: Callable[[], T]) -> T:
        for attempt in range(self.retries + 1):
            try:
                self.stats.add(requests=1)
                return off_main(fn)
            except TransientStoreError:
                if attempt == self.retries:
                    raise
                self._backoff(attempt)
        raise AssertionError("unreachable")

    def _read(self, key: str, start: int, end: int | None) -> bytes:
        """Bytes `[start, end)` (`end=None`: to the end of the object), resuming
        after a broken read with a range request for the rest."""
        got: list[bytes] = []
        offset = start
        for attempt in range(self.retries + 1):
            request: Callable[[], bytes]
            if end is None and offset == start:
                request = partial(self.inner.get, key)
            else:
                assert end is not None
                request = partial(self.inner.get_range, key, offset, end)
            try:
                self.stats.add(requests=1)
                data = off_main(request)
            except TransientStoreError as exc:
                if isinstance(exc, PartialReadError):
                    self.stats.add(received=len(exc.received))
                    got.append(exc.received)
                    offset += len(exc.received)
                    end = exc.end if end is None else end
                if attempt == self.retries:
                    raise
                self._backoff(attempt)
                continue
            self.stats.add(received=len(data))
            if not got:
                return data
            got.append(data)
            return b"".join(got)
        raise AssertionError("unreachable")

    def describe(self, key: str = "") -> str:
        return self.inner.describe(key)

    def get(self, key: str) -> bytes:
        return self._read(key, 0, None)

    def get_range(self, key: str, start: int, end: int) -> bytes:
        if start < 0 or end < start:
            raise ValueError(f"bad range [{start}, {end})")
        return self._read(key, start, end)

    def head(self, key: str) -> ObjectInfo | None:
        return self._retry(lambda: self.inner.head(key))

    def put(self, key: str, data: bytes, *, mode: PutMode) -> None:
        self._retry(lambda: self.inner.put(key, data, mode=mode))
        self.stats.add(sent=len(data))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        return iter(self._retry(lambda: list(self.inner.list(prefix))))

    def delete(self, key: str) -> None:
        self._retry(lambda: self.inner.delete(key))


# --- opening ------------------------------------------------------------------------


def open_store(
    url: MirrorURL, *, settings: S3Settings | None = None, create: bool = False
) -> RetryingStore:
    """The store for `url`, wrapped in `RetryingStore`.

    `create` makes a missing mirror directory (push); buckets are never
    created. `settings` defaults to `s3_settings()` from the environment; its
    transfer settings (idle timeout, retries) apply to every request.
    """
    inner: Store
    transfer: TransferSettings
    if url.scheme == "file":
        transfer = settings.transfer if settings is not None else transfer_settings()
        inner = DirStore(Path(url.path), create=create)
    else:
        from snaparc.mirror.s3 import S3Store

        settings = settings or s3_settings()
        transfer = settings.transfer
        inner = S3Store(url.bucket, url.prefix, settings)
    return RetryingStore(inner, retries=transfer.retries)
