"""`mirror check`: is every archive of a mirror whole? Which objects are not?

Structure (from one listing and one read of each record and ref; no object
is headed one by one):

- every record reads and is canonical (section 4 of spec/MIRROR.md);
- every part a record names exists with the recorded size;
- every ref holds an archive id that has a record;
- parts no record reaches are counted (orphans: gc reclaims them), and keys
  the layout does not define are listed.

With `read_data`, also every part object's bytes: its sha256 must be the `P`
its key names (each object read once, whoever shares it), and then every
archive not already known damaged is rebuilt and read by the verified
reader (frames, tar, manifest, identity, sha256 and blake3 of every blob),
streaming: memory stays about `jobs` parts, whatever the mirror's size.

Nothing is locked and nothing changed: a record removed while we look is
skipped, not reported.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO, cast

from snaparc.archive.input import ArchiveInput
from snaparc.errors import SnaparcError
from snaparc.format.limits import DEFAULT_LIMITS, Limits
from snaparc.mirror.inventory import Inventory, load_records, part_keys, take_inventory
from snaparc.mirror.layout import ArchiveRecord, decode_ref, record_key, ref_key
from snaparc.mirror.pull import MirrorArchiveStream
from snaparc.mirror.store import ObjectNotFoundError, Store


@dataclass(frozen=True, slots=True)
class Problem:
    """One piece of damage: `kind` is record, missing-part, part-size,
    part-digest, ref or archive; `key` the object; `archive_id` if known."""

    kind: str
    key: str
    message: str
    archive_id: str | None = None


@dataclass(slots=True)
class CheckReport:
    read_data: bool
    archives: int = 0
    refs: int = 0
    objects: int = 0
    stored_bytes: int = 0
    parts_read: int = 0
    bytes_read: int = 0
    archives_verified: int = 0
    orphans: int = 0
    orphan_bytes: int = 0
    unexpected: list[str] = field(default_factory=list)
    locks: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def damaged_archives(self) -> list[str]:
        return sorted({p.archive_id for p in self.problems if p.archive_id and p.kind != "ref"})

    @property
    def damaged_objects(self) -> list[str]:
        return sorted({p.key for p in self.problems})


def check_mirror(
    store: Store,
    *,
    read_data: bool = False,
    jobs: int = 4,
    threads: int | None = None,
    limits: Limits = DEFAULT_LIMITS,
    progress: Callable[[int], None] | None = None,
) -> CheckReport:
    inv = take_inventory(store)
    report = CheckReport(
        read_data=read_data,
        objects=inv.objects,
        stored_bytes=inv.stored_bytes,
        unexpected=sorted(inv.unexpected),
        locks=sorted(inv.locks),
    )
    reachable: dict[str, list[str]] = {}  # part key -> archives naming it
    good: list[str] = []
    for loaded in load_records(store, inv):
        aid = loaded.archive_id
        report.archives += 1
        if loaded.record is None:
            report.problems.append(
                Problem("record", record_key(aid), loaded.error or "unreadable", aid)
            )
            continue
        whole = True
        for key, size in part_keys(loaded.record):
            reachable.setdefault(key, []).append(aid)
            found = inv.parts.get(key)
            if found is None:
                whole = False
                report.problems.append(
                    Problem("missing-part", key, f"{store.describe(key)} is missing", aid)
                )
            elif found != size:
                whole = False
                report.problems.append(
                    Problem(
                        "part-size",
                        key,
                        f"{store.describe(key)} holds {found} bytes; the record says {size}",
                        aid,
                    )
                )
        if whole:
            good.append(aid)
    _check_refs(store, inv, report)
    orphans = [k for k in inv.parts if k not in reachable]
    lone = inv.orphan_signatures(set(inv.records))
    report.orphans = len(orphans) + len(lone)
    report.orphan_bytes = sum(inv.parts[k] for k in orphans) + sum(inv.signatures[k] for k in lone)
    if read_data:
        bad = _read_parts(store, inv, reachable, report, progress)
        for aid in good:
            if aid not in bad:
                _verify_archive(store, aid, report, jobs=jobs, threads=threads, limits=limits)
    return report


def _check_refs(store: Store, inv: Inventory, report: CheckReport) -> None:
    for name in sorted(inv.refs):
        report.refs += 1
        key = ref_key(name)
        try:
            aid = decode_ref(store.get(key), name=name)
        except ObjectNotFoundError:
            report.refs -= 1  # removed since the listing
            continue
        except SnaparcError as exc:
            report.problems.append(Problem("ref", key, str(exc)))
            continue
        if aid not in inv.records:
            report.problems.append(
                Problem("ref", key, f"ref {name!r} names archive {aid}, which has no record", aid)
            )


def _read_parts(
    store: Store,
    inv: Inventory,
    reachable: dict[str, list[str]],
    report: CheckReport,
    progress: Callable[[int], None] | None,
) -> set[str]:
    """Read every part once; the archives naming a damaged one."""
    bad: set[str] = set()
    for key in sorted(inv.parts):
        try:
            data = store.get(key)
        except ObjectNotFoundError:
            continue  # deleted since the listing (an orphan gc took): not damage
        report.parts_read += 1
        report.bytes_read += len(data)
        actual = hashlib.sha256(data).hexdigest()
        if actual != key.rsplit("/", 1)[1]:
            users: list[str | None] = list(reachable.get(key, [])) or [None]
            for aid in users:
                report.problems.append(
                    Problem(
                        "part-digest",
                        key,
                        f"{store.describe(key)} is damaged or tampered with (sha256 {actual})",
                        aid,
                    )
                )
            bad.update(a for a in users if a is not None)
        if progress is not None:
            progress(len(data))
        del data
    return bad


def _verify_archive(
    store: Store, aid: str, report: CheckReport, *, jobs: int, threads: int | None, limits: Limits
) -> None:
    from snaparc.archive.reader import read_archive
    from snaparc.mirror.layout import decode_record

    key = record_key(aid)
    try:
        record: ArchiveRecord = decode_record(store.get(key), archive_id=aid)
        raw = MirrorArchiveStream(store, record, jobs=jobs)
        with io.BufferedReader(raw, buffer_size=1 << 20) as stream:
            source = ArchiveInput(
                cast(BinaryIO, stream), store.describe(key), record.file_size, False, aid
            )
            read_archive(source, None, threads=threads, limits=limits)
            while stream.read(1 << 20):  # the tail: end frame and seek table, checked too
                pass
    except ObjectNotFoundError:
        return  # removed since the listing
    except SnaparcError as exc:
        if store.head(key) is None:
            return  # removed (and collected) while we read it: not damage
        report.problems.append(Problem("archive", key, f"archive {aid}: {exc}", aid))
        return
    report.archives_verified += 1
