"""What a mirror holds, from one listing: parts, records, refs, locks, and the rest.

`take_inventory` lists the whole mirror once (`list("")`: one paginated
listing, O(objects) requests) and sorts every key by what spec/MIRROR.md
says it may be; `load_records` then reads each record once. gc, check and
`mirror ls` are built on these two, so none of them heads objects one by one
or reads a record twice.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from snaparc.errors import IntegrityError
from snaparc.mirror.layout import SIGNATURE_KINDS, ArchiveRecord, decode_record, record_key
from snaparc.mirror.store import ObjectNotFoundError, Store

_HEX = "[0-9a-f]{64}"
_PART = re.compile(rf"^(?:blobs|manifests)/{_HEX}/{_HEX}$")
_RECORD = re.compile(rf"^archives/({_HEX})\.json$")
_REF = re.compile(r"^refs/([A-Za-z0-9][A-Za-z0-9._-]{0,127})$")
_LOCK = re.compile(r"^locks/(?:push|exclusive)-[0-9a-f]{32}$")
_KINDS = "|".join(re.escape(k) for k in SIGNATURE_KINDS)
_SIGNATURE = re.compile(rf"^signatures/({_HEX})/(?:{_KINDS})$")


@dataclass(slots=True)
class Inventory:
    """Every key of the mirror with its size, by kind."""

    parts: dict[str, int] = field(default_factory=dict)  # blobs/<C>/<P>, manifests/<ID>/<P>
    records: dict[str, int] = field(default_factory=dict)  # archive id -> record size
    refs: dict[str, int] = field(default_factory=dict)  # ref name -> size
    locks: dict[str, int] = field(default_factory=dict)
    # signatures/<ID>/<KIND> -> size: they live while archive ID's record does
    signatures: dict[str, int] = field(default_factory=dict)
    unexpected: dict[str, int] = field(default_factory=dict)  # keys the layout does not allow

    def orphan_signatures(self, live: set[str]) -> list[str]:
        """Signatures whose archive has no record (`live`: the ids with one)."""
        return sorted(k for k in self.signatures if k.split("/")[1] not in live)

    @property
    def objects(self) -> int:
        return sum(
            len(d)
            for d in (
                self.parts,
                self.records,
                self.refs,
                self.locks,
                self.signatures,
                self.unexpected,
            )
        )

    @property
    def stored_bytes(self) -> int:
        return sum(
            sum(d.values())
            for d in (
                self.parts,
                self.records,
                self.refs,
                self.locks,
                self.signatures,
                self.unexpected,
            )
        )


def take_inventory(store: Store) -> Inventory:
    inv = Inventory()
    for info in store.list(""):
        key = info.key
        if _PART.match(key):
            inv.parts[key] = info.size
        elif m := _RECORD.match(key):
            inv.records[m.group(1)] = info.size
        elif m := _REF.match(key):
            inv.refs[m.group(1)] = info.size
        elif _LOCK.match(key):
            inv.locks[key] = info.size
        elif _SIGNATURE.match(key):
            inv.signatures[key] = info.size
        else:
            inv.unexpected[key] = info.size
    return inv


@dataclass(frozen=True, slots=True)
class LoadedRecord:
    archive_id: str
    record: ArchiveRecord | None  # None: damaged
    error: str | None = None


def load_records(store: Store, inv: Inventory) -> Iterator[LoadedRecord]:
    """Each record of the inventory, read and checked once, in id order; a
    record removed since the listing is skipped."""
    for aid in sorted(inv.records):
        try:
            data = store.get(record_key(aid))
        except ObjectNotFoundError:
            continue
        try:
            yield LoadedRecord(aid, decode_record(data, archive_id=aid))
        except IntegrityError as exc:
            yield LoadedRecord(aid, None, str(exc))


def part_keys(record: ArchiveRecord) -> Iterator[tuple[str, int]]:
    """(key, size) of every part the record names, in archive order."""
    for member in record.members:
        for part in member.parts:
            yield member.key(record.archive_id, part), part.size
