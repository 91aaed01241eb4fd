"""Mirror locks with leases: pushes share, maintenance (gc, rm of a record) excludes.

Why (spec/MIRROR.md section 10): a push writes parts, then the record that
makes them reachable, and skips parts it finds by `head`; gc deletes parts no
record reaches. Without coordination gc can delete a part between a push's
`head` (or `put`) and its record. S3 offers no multi-object transaction, but
it is strongly consistent: a `list` that starts after a `put` returned shows
the key. That is enough for the classic two-sided handshake:

- a **push** creates `locks/push-<TOKEN>`, then lists `locks/`; if it sees a
  live `exclusive` lock, it deletes its own lock, waits and tries again;
- a **maintainer** (gc, `mirror rm URL@ID`) creates `locks/exclusive-<TOKEN>`,
  then lists `locks/` until no live `push` lock is left (it keeps its own
  lock while it waits, so new pushes back off and the running ones drain).

Each side writes before it lists, so of a push and a maintainer that overlap
at least one sees the other: both never proceed at once. Maintainers do not
exclude each other (two gcs delete the same unreachable set; gc beside rm
only keeps a little more than it could).

Leases, without trusting clocks across machines: the holder rewrites its
lock (a heartbeat, `beat` + 1) every `lease / 4` seconds and declares its
`lease` in it. Another process deems a lock stale, and may delete it, only
after it saw the same bytes for `lease` seconds **by its own monotonic
clock**. The holder deems its own lock lost when no heartbeat succeeded for
`lease / 2` seconds (or the lock vanished), and `check()` (called right
before every destructive or publishing step) then raises `LockLostError`, so
a process stalled past its lease stops before it does harm. A content that is
not a valid lock counts as a live lock with the default lease.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from snaparc.errors import RemoteError
from snaparc.mirror.store import ObjectExistsError, ObjectNotFoundError, Store
from snaparc.publish import owner_tag

LockKind = Literal["push", "exclusive"]
LOCK_FORMAT = "snaparc-mirror-lock"
DEFAULT_LEASE = 120.0
DEFAULT_WAIT = 3600.0
MIN_LEASE = 0.2


class MirrorBusyError(RemoteError):
    """The mirror stayed locked by another operation longer than we wait."""


class LockLostError(RemoteError):
    """Our lock could not be kept alive (or was removed as stale): we stopped."""


def lock_prefix() -> str:
    return "locks"


@dataclass(frozen=True, slots=True)
class LockTiming:
    """`lease`: heartbeat every lease/4, stale to others after lease unchanged.
    `wait`: how long to wait for the other side before `MirrorBusyError`."""

    lease: float = DEFAULT_LEASE
    wait: float = DEFAULT_WAIT

    @property
    def poll(self) -> float:
        return max(0.02, min(1.0, self.lease / 8))


def _encode(kind: LockKind, operation: str, lease: float, beat: int) -> bytes:
    obj = {
        "beat": beat,
        "format": LOCK_FORMAT,
        "kind": kind,
        "lease": lease,
        "operation": operation,
        "owner": owner_tag(),
        "time": round(time.time(), 3),
    }
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def _declared_lease(data: bytes) -> float:
    try:
        obj = json.loads(data)
        lease = obj["lease"] if obj.get("format") == LOCK_FORMAT else None
    except (ValueError, AttributeError, TypeError, KeyError):
        lease = None
    if isinstance(lease, int | float) and not isinstance(lease, bool) and lease >= MIN_LEASE:
        return float(lease)
    return DEFAULT_LEASE


def lock_kind(key: str) -> LockKind | None:
    name = key.removeprefix(f"{lock_prefix()}/")
    if name.startswith("push-"):
        return "push"
    if name.startswith("exclusive-"):
        return "exclusive"
    return None


class _Observer:
    """Remembers what each foreign lock held and since when (our clock)."""

    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self.store = store
        self.clock = clock
        self.seen: dict[str, tuple[bytes, float]] = {}

    def live(self, key: str) -> bool:
        """False once `key` is gone or held the same bytes for its lease."""
        try:
            data = self.store.get(key)
        except ObjectNotFoundError:
            self.seen.pop(key, None)
            return False
        now = self.clock()
        prev = self.seen.get(key)
        if prev is None or prev[0] != data:
            self.seen[key] = (data, now)
            return True
        return now - prev[1] < _declared_lease(data)


class MirrorLock:
    """A lock on a mirror; use as a context manager, call `check()` before
    every step that must not happen without it."""

    def __init__(
        self,
        store: Store,
        kind: LockKind,
        operation: str,
        *,
        timing: LockTiming | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.kind = kind
        self.operation = operation
        self.timing = timing or LockTiming()
        self.key = f"{lock_prefix()}/{kind}-{secrets.token_hex(16)}"
        self._clock = clock
        self._sleep = sleep
        self._beat = 0
        self._ok_at = 0.0
        self._lost = False
        self._held = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.stale_removed: list[str] = []

    # --- acquiring ---------------------------------------------------------------

    def _write(self, *, mode: Literal["create", "overwrite"]) -> None:
        self._beat += 1
        data = _encode(self.kind, self.operation, self.timing.lease, self._beat)
        self.store.put(self.key, data, mode=mode)
        self._ok_at = self._clock()

    def _blockers(self, observer: _Observer) -> list[str]:
        """Live locks of the other side; stale ones are deleted."""
        other: LockKind = "exclusive" if self.kind == "push" else "push"
        live: list[str] = []
        for info in self.store.list(lock_prefix()):
            if info.key == self.key:
                continue
            kind = lock_kind(info.key)
            if kind is None:
                continue  # not a lock name: `mirror check` lists it
            if observer.live(info.key):
                if kind == other:
                    live.append(info.key)
            else:
                self.store.delete(info.key)
                self.stale_removed.append(info.key)
        return live

    def acquire(self) -> MirrorLock:
        deadline = self._clock() + self.timing.wait
        observer = _Observer(self.store, self._clock)
        mine = False
        while True:
            if not mine:
                try:
                    self._write(mode="create")
                except ObjectExistsError:  # a retried create that landed: it is ours
                    self._write(mode="overwrite")
                mine = True
                self._start_heartbeat()
            blockers = self._blockers(observer)
            if not blockers:
                self._held = True
                return self
            if self.kind == "push":  # give way: maintenance goes first
                self._stop_heartbeat()
                self.store.delete(self.key)
                mine = False
            if self._clock() > deadline:
                self.release()
                raise MirrorBusyError(
                    f"mirror {self.store.describe()} is locked by {', '.join(blockers)} "
                    f"(waited {self.timing.wait:g} s); try again later"
                )
            self._sleep(self.timing.poll)

    # --- keeping it --------------------------------------------------------------

    def _start_heartbeat(self) -> None:
        self._stop.clear()
        self._lost = False
        self._thread = threading.Thread(
            target=self._heartbeat, name="snaparc-mirror-lock", daemon=True
        )
        self._thread.start()

    def _stop_heartbeat(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _heartbeat(self) -> None:
        # Consecutive successful beats are at most lease/2 apart, or the lock is
        # lost for good (sticky): then no observer can have seen one content for
        # a whole lease while we still count the lock as ours, and a beat that
        # re-creates a lock another process removed as stale never revives it.
        interval = self.timing.lease / 4
        limit = self.timing.lease / 2
        while not self._stop.wait(interval):
            if self._clock() - self._ok_at > limit:
                self._lost = True
                return
            try:
                if self.store.head(self.key) is None:  # removed as stale by another
                    self._lost = True
                    return
                before = self._ok_at
                self._write(mode="overwrite")
            except RemoteError:
                continue
            if self._ok_at - before > limit:
                self._lost = True
                return

    def check(self, *, confirm: bool = False) -> None:
        """Raise `LockLostError` unless the lock is certainly still ours;
        `confirm` also asks the store that the lock object is still there."""
        if not self._held:
            raise LockLostError(f"no lock held on mirror {self.store.describe()}")
        if confirm and self.store.head(self.key) is None:
            self._lost = True
        quiet = self._clock() - self._ok_at
        if self._lost or quiet > self.timing.lease / 2:
            raise LockLostError(
                f"lost the {self.operation} lock on mirror {self.store.describe()} "
                f"(no heartbeat for {quiet:.1f} s, lease {self.timing.lease:g} s); "
                "stopped before the next change: run it again"
            )

    def release(self) -> None:
        self._stop_heartbeat()
        self._held = False
        with contextlib.suppress(RemoteError):  # else stale after its lease: removed later
            self.store.delete(self.key)

    def __enter__(self) -> MirrorLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
