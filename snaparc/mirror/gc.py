"""Garbage collection: delete the parts no archive record reaches.

Safe beside pushes and pulls on other machines (spec/MIRROR.md section 10):

1. take the exclusive lock (`snaparc.mirror.lock`): wait until no push holds
   its shared lock; pushes that start later wait for us. So while we run no
   record appears, and no push relies on a part it found by `head`;
2. list the mirror once, read every record: the reachable set is exact, as
   nothing writes records while we hold the lock. A record that cannot be
   read makes gc refuse (exit 1): the parts it names are unknown, and
   deleting them could destroy an archive that is only damaged in its record;
3. delete every part (`blobs/<C>/<P>`, `manifests/<ID>/<P>`) not reachable,
   a few at a time, checking before each delete that the lock is still ours.

Killed at any point, gc leaves a consistent mirror: it deletes only parts no
record names, one at a time; the next gc deletes the rest. Its lock goes
stale after its lease, and pushes then go on. A dry run takes no lock (it
changes nothing, so it need not stop pushes); what it lists is an estimate.
Records, refs and keys the layout does not define are never deleted here
(`mirror rm` drops refs and records; `mirror check` lists strange keys).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from snaparc.errors import IntegrityError
from snaparc.mirror.inventory import load_records, part_keys, take_inventory
from snaparc.mirror.lock import LockTiming, MirrorLock
from snaparc.mirror.store import Store

DELETE_JOBS = 8  # deletes in flight (each is one small request)


class GcRefusedError(IntegrityError):
    """A record cannot be read, so what is garbage is unknown: nothing deleted."""

    def __init__(self, message: str, *, archives: tuple[str, ...]) -> None:
        super().__init__(message)
        self.archives = archives


@dataclass(frozen=True, slots=True)
class GcReport:
    dry_run: bool
    archives: int
    deleted: tuple[str, ...]  # keys deleted (dry run: that would be)
    deleted_bytes: int
    kept_objects: int  # parts kept (reachable)
    kept_bytes: int
    stale_locks: tuple[str, ...]  # locks of dead processes removed on the way


def collect_garbage(
    store: Store,
    *,
    dry_run: bool = False,
    lock_timing: LockTiming | None = None,
    on_delete: Callable[[str], None] | None = None,
) -> GcReport:
    """Delete (or, `dry_run`, list) every part no record of `store` reaches."""
    if dry_run:
        return _sweep(store, None, on_delete)
    with MirrorLock(store, "exclusive", "gc", timing=lock_timing) as lock:
        report = _sweep(store, lock, on_delete)
        return GcReport(
            report.dry_run,
            report.archives,
            report.deleted,
            report.deleted_bytes,
            report.kept_objects,
            report.kept_bytes,
            tuple(lock.stale_removed),
        )


def _sweep(
    store: Store, lock: MirrorLock | None, on_delete: Callable[[str], None] | None
) -> GcReport:
    inv = take_inventory(store)
    reachable: set[str] = set()
    damaged: list[tuple[str, str]] = []
    archives = 0
    for loaded in load_records(store, inv):
        if loaded.record is None:
            damaged.append((loaded.archive_id, loaded.error or "unreadable"))
            continue
        archives += 1
        reachable.update(key for key, _ in part_keys(loaded.record))
    if damaged:
        names = ", ".join(aid for aid, _ in damaged)
        raise GcRefusedError(
            f"gc deleted nothing: {len(damaged)} archive record(s) cannot be read ({names}; "
            f"{damaged[0][1]}); see `snaparc mirror check`, then remove them with "
            "`snaparc mirror rm URL@ID`",
            archives=tuple(aid for aid, _ in damaged),
        )
    garbage = sorted(k for k in inv.parts if k not in reachable)
    # The signatures of removed archives go too (a push writes them after its
    # record, under its push lock, so one without a record is an orphan).
    garbage += inv.orphan_signatures(set(inv.records))
    sizes = {**inv.parts, **inv.signatures}
    if lock is not None:
        _delete(store, garbage, lock, on_delete)
    kept = [k for k in inv.parts if k in reachable]
    return GcReport(
        dry_run=lock is None,
        archives=archives,
        deleted=tuple(garbage),
        deleted_bytes=sum(sizes[k] for k in garbage),
        kept_objects=len(kept),
        kept_bytes=sum(inv.parts[k] for k in kept),
        stale_locks=(),
    )


def _delete(
    store: Store, keys: list[str], lock: MirrorLock, on_delete: Callable[[str], None] | None
) -> None:
    """Delete `keys`, DELETE_JOBS at a time, checking the lock before each."""
    pending: deque[tuple[str, Future[None]]] = deque()

    def finish() -> None:
        key, fut = pending.popleft()
        fut.result()
        if on_delete is not None:
            on_delete(key)

    with ThreadPoolExecutor(max_workers=DELETE_JOBS, thread_name_prefix="snaparc-gc") as pool:
        try:
            for key in keys:
                while len(pending) >= DELETE_JOBS:
                    finish()
                lock.check()
                pending.append((key, pool.submit(store.delete, key)))
            while pending:
                finish()
        except BaseException:
            for _, fut in pending:
                fut.cancel()
            raise
