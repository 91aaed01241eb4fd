"""What `mirror ls` says about space: per archive its size and the bytes it
shares with other archives; for the mirror, logical bytes (the sum of the
archives' file sizes) against stored bytes (every object's size).

One listing and one read of each record. Memory: a count per distinct part
and, per archive, the indices of its parts (4 bytes each), never records.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

from snaparc.mirror.inventory import load_records, part_keys, take_inventory
from snaparc.mirror.store import Store


@dataclass(frozen=True, slots=True)
class ArchiveUsage:
    archive_id: str
    size: int | None  # file size of the rebuilt archive; None: record damaged
    shared_bytes: int  # of its part bytes, those other archives name too
    stored_bytes: int  # part bytes only this archive names


@dataclass(slots=True)
class MirrorUsage:
    archives: dict[str, ArchiveUsage] = field(default_factory=dict)
    logical_bytes: int = 0
    stored_bytes: int = 0
    part_bytes: int = 0
    objects: int = 0


def mirror_usage(store: Store) -> MirrorUsage:
    inv = take_inventory(store)
    out = MirrorUsage(stored_bytes=inv.stored_bytes, objects=inv.objects)
    out.part_bytes = sum(inv.parts.values())
    index: dict[str, int] = {}
    sizes = array("q")
    users = array("I")
    per_archive: list[tuple[str, int | None, array[int]]] = []
    for loaded in load_records(store, inv):
        if loaded.record is None:
            per_archive.append((loaded.archive_id, None, array("I")))
            continue
        mine: array[int] = array("I")
        for key, size in dict(part_keys(loaded.record)).items():
            i = index.setdefault(key, len(index))
            if i == len(sizes):
                sizes.append(size)
                users.append(0)
            users[i] += 1
            mine.append(i)
        per_archive.append((loaded.archive_id, loaded.record.file_size, mine))
        out.logical_bytes += loaded.record.file_size
    for aid, file_size, mine in per_archive:
        shared = sum(sizes[i] for i in mine if users[i] > 1)
        own = sum(sizes[i] for i in mine if users[i] == 1)
        out.archives[aid] = ArchiveUsage(aid, file_size, shared, own)
    return out
