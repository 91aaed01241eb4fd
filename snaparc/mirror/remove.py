"""`mirror rm`: drop a ref, or an archive record.

- A ref is dropped by deleting `refs/<NAME>`; no lock: refs protect nothing
  (records are gc's roots), and a push moving the ref at the same time
  simply wins or loses, as two pushes do.
- A record is dropped under the exclusive lock (no push runs beside it, so
  no ref can come to name it between our look at the refs and the delete).
  While refs name it, it is refused (`ArchiveInUseError`, naming them)
  unless `force`, which deletes those refs first, so that no ref ever names
  a missing record. The parts stay until the next `mirror gc`.
"""

from __future__ import annotations

from dataclasses import dataclass

from snaparc.errors import IntegrityError, UsageError
from snaparc.mirror.layout import decode_ref, record_key, ref_key
from snaparc.mirror.lock import LockTiming, MirrorLock
from snaparc.mirror.pull import ArchiveNotFoundError, RefNotFoundError
from snaparc.mirror.pull import ArchiveRemovedError as ArchiveRemovedError  # re-exported
from snaparc.mirror.store import ObjectNotFoundError, Store


class ArchiveInUseError(UsageError):
    """Refs still name the archive to remove (pass --force to drop them too)."""

    def __init__(self, message: str, *, refs: tuple[str, ...]) -> None:
        super().__init__(message)
        self.refs = refs


@dataclass(frozen=True, slots=True)
class RemoveReport:
    ref: str | None  # the ref removed (URL:REF)
    archive_id: str | None  # the record removed (URL@ID), or the id the ref named
    refs_removed: tuple[str, ...]


def remove_ref(store: Store, name: str) -> RemoveReport:
    key = ref_key(name)
    try:
        data = store.get(key)
    except ObjectNotFoundError:
        raise RefNotFoundError(f"ref {name!r} not found in mirror {store.describe()}") from None
    try:
        aid: str | None = decode_ref(data, name=name)
    except IntegrityError:
        aid = None  # a damaged ref can be removed all the same
    store.delete(key)
    return RemoveReport(name, aid, (name,))


def refs_naming(store: Store, archive_id: str) -> tuple[str, ...]:
    names: list[str] = []
    for info in store.list("refs"):
        name = info.key.removeprefix("refs/")
        try:
            if decode_ref(store.get(info.key), name=name) == archive_id:
                names.append(name)
        except (IntegrityError, ObjectNotFoundError):
            continue
    return tuple(sorted(names))


def remove_archive(
    store: Store,
    archive_id: str,
    *,
    force: bool = False,
    lock_timing: LockTiming | None = None,
) -> RemoveReport:
    with MirrorLock(store, "exclusive", "rm", timing=lock_timing) as lock:
        key = record_key(archive_id)
        if store.head(key) is None:
            raise ArchiveNotFoundError(
                f"archive {archive_id} not found in the mirror ({store.describe(key)})"
            )
        names = refs_naming(store, archive_id)
        if names and not force:
            raise ArchiveInUseError(
                f"archive {archive_id} is named by ref(s) {', '.join(names)}: remove those "
                "first (`snaparc mirror rm URL:REF`) or pass --force to remove them too",
                refs=names,
            )
        for name in names:
            lock.check()
            store.delete(ref_key(name))
        lock.check()
        store.delete(key)
    return RemoveReport(None, archive_id, names)
