"""Split an archive into fixed-size volumes (FAT32 media etc.) and read it back.

Layout for an archive named ``OUT.dlmsnap``: volumes ``OUT.dlmsnap.001``,
``OUT.dlmsnap.002``, … (every volume but the last exactly `volume_size`
bytes; their concatenation is the archive) and an index
``OUT.dlmsnap.index.json``, written last, so a set with an index is complete::

    {"format": "snaparc-split-volumes", "version": 1, "archive": "OUT.dlmsnap",
     "total_size": N, "volume_size": V,
     "volumes": [{"name": "OUT.dlmsnap.001", "size": V, "sha256": "<hex>"}, ...]}

Volume names in the index are bare file names, resolved in the index's
directory. Writing: `SplitWriter` (fails closed: after an error it can only be
aborted). Reading: `open_volumes`, which checks every volume's presence and
size before the first byte is returned and each volume's sha256 when its last
byte is read. A failure names the volume and raises a `VolumeError`
(an `IntegrityError`, exit 1).

Note that FAT32's largest file is 4 GiB − 1 byte: ``4G`` is one byte too big
for it; `parse_size("fat32")` gives the right size.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeGuard, cast

from snaparc.errors import (
    CorruptArchiveError,
    DestinationError,
    IntegrityError,
    SnaparcError,
    UnsupportedVersionError,
    UsageError,
)
from snaparc.publish import (
    AppendFile,
    Output,
    clean_stale,
    disown,
    fsync_dir,
    os_error,
    own,
    place,
    published_mode,
    temp_name,
    write_file_atomic,
)
from snaparc.sidefiles import open_regular_raw, read_regular_file

if TYPE_CHECKING:
    from typing_extensions import Buffer

INDEX_FORMAT = "snaparc-split-volumes"
INDEX_VERSION = 1
INDEX_SUFFIX = ".index.json"
MIN_VOLUME_SIZE = 1 << 20
FAT32_MAX_FILE_SIZE = (1 << 32) - 1
_MAX_INDEX_BYTES = 16 << 20
_VOLUME_SUFFIX_RE = re.compile(r"\.(\d{3,})$")
_SIZE_RE = re.compile(r"^\s*(\d+)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


class VolumeError(IntegrityError):
    """A volume of a split archive is missing or damaged; `volume` names it."""

    def __init__(self, message: str, *, volume: str, path: str | None = None) -> None:
        super().__init__(message, path=path)
        self.volume = volume


class MissingVolumeError(VolumeError):
    """A volume (or the index) is not where the index says it is."""


class VolumeSizeError(VolumeError):
    """A volume is shorter (truncated) or longer than the index says."""


class VolumeDigestError(VolumeError):
    """A volume's sha256 differs from the index."""


class VolumeIndexError(CorruptArchiveError):
    """The index file is unparsable, ill-shaped or inconsistent."""


# --- names and sizes -----------------------------------------------------------


def parse_size(text: str) -> int:
    """Parse ``1000``, ``512K``, ``700M``, ``4G``, ``1T`` (binary units; ``KiB``,
    ``MB`` etc. also accepted, all meaning powers of 1024) or ``fat32``
    (4 GiB − 1). Raises UsageError for anything else or for zero.
    """
    if text.strip().lower() == "fat32":
        return FAT32_MAX_FILE_SIZE
    m = _SIZE_RE.match(text)
    if not m:
        raise UsageError(f"not a size: {text!r} (examples: 4G, 700M, 512K, 1000, fat32)")
    value = int(m.group(1)) * _UNITS[m.group(2).lower()]
    if value <= 0:
        raise UsageError(f"size must be positive: {text!r}")
    return value


def volume_name(archive_name: str, number: int) -> str:
    """The name of volume `number` (1-based): ``NAME.001`` … ``NAME.999``, ``NAME.1000``."""
    return f"{archive_name}.{number:03d}"


def index_path_for(archive_path: str | os.PathLike[str]) -> Path:
    """``OUT.dlmsnap`` -> ``OUT.dlmsnap.index.json``."""
    p = Path(archive_path)
    return p.with_name(p.name + INDEX_SUFFIX)


def split_index_path(path: str | os.PathLike[str]) -> Path | None:
    """The index of the split archive `path` names, or None if it names none.

    `path` may be the index itself, any volume (``X.dlmsnap.NNN``) or the
    archive's base name (``X.dlmsnap``) when only its volumes exist. The
    index's existence is not checked for the first two forms.
    """
    p = Path(path)
    if p.name.endswith(INDEX_SUFFIX):
        return p
    m = _VOLUME_SUFFIX_RE.search(p.name)
    if m:
        return p.with_name(p.name[: m.start()] + INDEX_SUFFIX)
    candidate = index_path_for(p)
    if not p.is_file() and (candidate.is_file() or p.with_name(volume_name(p.name, 1)).is_file()):
        return candidate
    return None


def is_split_archive(path: str | os.PathLike[str]) -> bool:
    """True if `path` names a split archive whose index file exists."""
    index = split_index_path(path)
    return index is not None and index.is_file()


# --- the index -----------------------------------------------------------------


@dataclass(frozen=True)
class VolumeEntry:
    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class VolumeIndex:
    """A parsed, validated index; `directory` is where its volumes live."""

    archive: str
    total_size: int
    volume_size: int
    volumes: tuple[VolumeEntry, ...]
    directory: Path

    def to_json(self) -> bytes:
        doc = {
            "format": INDEX_FORMAT,
            "version": INDEX_VERSION,
            "archive": self.archive,
            "total_size": self.total_size,
            "volume_size": self.volume_size,
            "volumes": [{"name": v.name, "size": v.size, "sha256": v.sha256} for v in self.volumes],
        }
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()

    def paths(self) -> list[Path]:
        return [self.directory / v.name for v in self.volumes]


def read_index(index_path: str | os.PathLike[str]) -> VolumeIndex:
    """Read and validate an index file; raise VolumeIndexError if it is not sound
    (NotRegularFileError, before reading, if it is a FIFO, directory, ...)."""
    path = Path(index_path)

    def missing(message: str, *, path: str) -> MissingVolumeError:
        return MissingVolumeError(
            f"split archive index missing: {path}", volume=Path(path).name, path=path
        )

    raw = read_regular_file(
        path,
        limit=_MAX_INDEX_BYTES,
        what="split archive index",
        missing=missing,
        too_large=VolumeIndexError,
    )
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise VolumeIndexError(f"{path}: index is not valid JSON: {exc}", path=str(path)) from None
    return _validate_index(doc, path)


def _validate_index(doc: Any, path: Path) -> VolumeIndex:
    def bad(why: str) -> VolumeIndexError:
        return VolumeIndexError(f"{path}: {why}", path=str(path))

    if not isinstance(doc, dict) or doc.get("format") != INDEX_FORMAT:
        raise bad(f"not a {INDEX_FORMAT} index")
    version = doc.get("version")
    if not _is_int(version):
        raise bad("version must be an integer")
    if version > INDEX_VERSION:
        raise UnsupportedVersionError(
            f"{path}: split index version {version} needs a newer snaparc", path=str(path)
        )
    if version != INDEX_VERSION:
        raise bad(f"unknown index version {version}")
    archive, total, vsize, vols = (
        doc.get("archive"),
        doc.get("total_size"),
        doc.get("volume_size"),
        doc.get("volumes"),
    )
    if not isinstance(archive, str) or not _is_plain_name(archive):
        raise bad("archive must be a plain file name")
    if not _is_int(total) or total < 0 or not _is_int(vsize) or vsize <= 0:
        raise bad("total_size and volume_size must be non-negative integers")
    if not isinstance(vols, list) or not vols:
        raise bad("volumes must be a non-empty list")
    entries: list[VolumeEntry] = []
    for i, v in enumerate(vols):
        if not isinstance(v, dict) or set(v) != {"name", "size", "sha256"}:
            raise bad(f"volume {i + 1} must have exactly name, size and sha256")
        name, size, digest = v["name"], v["size"], v["sha256"]
        if not isinstance(name, str) or not _is_plain_name(name):
            raise bad(f"volume {i + 1} name must be a plain file name")
        if not _is_int(size) or size < 0 or size > vsize:
            raise bad(f"volume {name}: size must be between 0 and volume_size")
        if i < len(vols) - 1 and size != vsize:
            raise bad(f"volume {name}: every volume but the last must be volume_size bytes")
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise bad(f"volume {name}: sha256 must be 64 lower-case hex digits")
        entries.append(VolumeEntry(name, size, digest))
    if len({e.name for e in entries}) != len(entries):
        raise bad("volume names must be unique")
    if sum(e.size for e in entries) != total:
        raise bad("volume sizes do not add up to total_size")
    return VolumeIndex(archive, total, vsize, tuple(entries), path.parent)


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_plain_name(name: str) -> bool:
    return (
        bool(name)
        and name not in (".", "..")
        and "/" not in name
        and "\\" not in name
        and "\0" not in name
    )


# --- writing -------------------------------------------------------------------


class SplitWriter(Output):
    """A write-only binary stream that lands in volumes of at most `volume_size` bytes.

    `out_path` is the archive's name (``OUT.dlmsnap``); volumes and the index
    go beside it. Volumes are written under temporary names
    (``.OUT.dlmsnap.001.snaparc-tmp-PID@HOST-TOKEN``, claimed for Ctrl-C
    cleanup; a dead writer's are removed by the next one) and only linked
    into place by `close()`, which then writes the index atomically, last.
    `abort()` (also on an exception inside ``with``, or when an unclosed
    writer is garbage-collected) removes everything this writer created.
    After any error the writer fails closed: only `abort()` is allowed.

    An existing index or first volume at the destination raises
    DestinationError at construction, unless `replace`: then the previous set
    (its index first, then the volumes it lists) is removed by `close()`, only
    once every new volume is complete, just before the new ones are linked
    into place; a pack that fails leaves the previous set as it was.
    `volume_size` below 1 MiB is refused unless `min_volume_size` is lowered
    (for tests).
    """

    def __init__(
        self,
        out_path: str | os.PathLike[str],
        volume_size: int,
        *,
        min_volume_size: int = MIN_VOLUME_SIZE,
        replace: bool = False,
    ) -> None:
        self._out = Path(out_path)
        self._replace = replace
        if volume_size < max(min_volume_size, 1):
            raise UsageError(
                f"volume size {volume_size} is below the minimum of {max(min_volume_size, 1)} bytes"
            )
        self.volume_size = volume_size
        self.index_path = index_path_for(self._out)
        for p in (self.index_path, self._final(1)):
            if p.is_symlink() or (p.exists() and not replace):
                raise DestinationError(f"{p} already exists", path=str(p))
        clean_stale(self._out.parent, self._out.name, numbered=True)
        self._volumes: list[tuple[Path, VolumeEntry]] = []  # (temp path, entry) finished
        self._published: list[Path] = []
        self._file: BinaryIO | None = None
        self._tmp: Path | None = None
        self._hash: Any = None
        self._cur_size = 0
        self._total = 0
        self._state = "open"  # open | failed | closed | aborted

    # -- the file-like surface --

    @property
    def closed(self) -> bool:
        return self._state in ("closed", "aborted")

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._total

    def flush(self) -> None:
        self._check_open()

    def write(self, data: Buffer) -> int:
        """Write all of `data`; returns its length in bytes."""
        self._check_open()
        view = memoryview(data).cast("B")
        n = len(view)
        try:
            while view:
                if self._file is None or self._cur_size == self.volume_size:
                    self._next_volume()
                assert self._file is not None
                take = min(len(view), self.volume_size - self._cur_size)
                chunk = view[:take]
                self._file.write(chunk)
                self._hash.update(chunk)
                self._cur_size += take
                self._total += take
                view = view[take:]
        except OSError as exc:
            self._state = "failed"
            where = self._tmp or self._out
            raise os_error(exc, f"writing volume {where}", path=where) from exc
        except BaseException:
            self._state = "failed"
            raise
        return n

    def close(self) -> None:
        """Finish: rename the volumes into place, then publish the index.

        Idempotent once closed. On a failed writer, aborts and raises.
        """
        if self._state == "closed":
            return
        if self._state != "open":
            self.abort()
            raise DestinationError(
                "split writer failed earlier; its output was removed", path=str(self._out)
            )
        try:
            if self._file is None and not self._volumes:
                self._next_volume()  # an empty archive still has one (empty) volume
            self._finish_volume()
            if self._replace:
                self._remove_previous()
            for i, (tmp, _entry) in enumerate(self._volumes, start=1):
                final = self._final(i)
                try:
                    place(tmp, final, overwrite=False)
                except FileExistsError:
                    raise DestinationError(f"{final} already exists", path=str(final)) from None
                disown(tmp)
                self._published.append(final)
            fsync_dir(self._out.parent)
            index = VolumeIndex(
                archive=self._out.name,
                total_size=self._total,
                volume_size=self.volume_size,
                volumes=tuple(e for _, e in self._volumes),
                directory=self._out.parent,
            )
            write_file_atomic(self.index_path, index.to_json(), overwrite=False)
        except SnaparcError:  # DestinationError, DiskFullError: OSErrors, but classified
            self.abort()
            raise
        except OSError as exc:
            self.abort()
            raise os_error(exc, f"finishing split archive {self._out}", path=self._out) from exc
        except BaseException:
            self.abort()
            raise
        self._state = "closed"

    def _remove_previous(self) -> None:
        """The set this one replaces: its index first (a set without an index
        is incomplete), then every volume it lists, then a stray first volume."""
        old: list[Path] = []
        if self.index_path.is_file():
            old = read_index(self.index_path).paths()
            self.index_path.unlink()
        for path in [*old, self._final(1)]:
            path.unlink(missing_ok=True)

    def abort(self) -> None:
        """Remove every file this writer created; safe to call more than once."""
        if self._state == "closed":
            return
        self._state = "aborted"
        if self._file is not None:
            with contextlib.suppress(OSError):
                cast(AppendFile, self._file).discard()  # the file is removed: no flush
            self._file = None
        leftovers = [tmp for tmp, _ in self._volumes] + self._published
        if self._tmp is not None:
            leftovers.append(self._tmp)
        for p in leftovers:
            with contextlib.suppress(OSError):
                p.unlink()
            disown(p)
        self._volumes.clear()
        self._published.clear()
        self._tmp = None

    def finish(self) -> None:
        self.close()

    def __del__(self) -> None:
        # Never publish from a finaliser: an unclosed writer is an abandoned one.
        if getattr(self, "_state", "closed") in ("open", "failed"):
            self.abort()

    # -- internals --

    def _final(self, number: int) -> Path:
        return self._out.with_name(volume_name(self._out.name, number))

    def _check_open(self) -> None:
        if self._state != "open":
            raise ValueError(f"split writer is {self._state}")

    def _next_volume(self) -> None:
        self._finish_volume()
        number = len(self._volumes) + 1
        final = self._final(number)
        self._tmp = temp_name(final.parent, final.name, "tmp")
        own(self._tmp, is_dir=False)  # removed by the CLI if a signal lands before abort
        # Direct I/O where the medium takes it (snaparc.publish.AppendFile);
        # closed in _finish_volume/abort.
        self._file = cast(BinaryIO, AppendFile(self._tmp))
        self._hash = hashlib.sha256()
        self._cur_size = 0

    def _finish_volume(self) -> None:
        if self._file is None or self._tmp is None:
            return
        self._file.flush()
        os.fchmod(self._file.fileno(), published_mode())  # as a single archive file
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        entry = VolumeEntry(
            volume_name(self._out.name, len(self._volumes) + 1),
            self._cur_size,
            self._hash.hexdigest(),
        )
        self._volumes.append((self._tmp, entry))
        self._tmp = None


# --- reading -------------------------------------------------------------------


def open_volumes(path: str | os.PathLike[str]) -> SplitReader:
    """Open a split archive for reading, given its first volume, index or base name.

    Checks up front that every volume exists with the size the index gives.
    Returns a `SplitReader` (an `io.RawIOBase`; wrap it in `io.BufferedReader`
    where a `BinaryIO` is needed).
    """
    index_path = split_index_path(path)
    if index_path is None:
        raise UsageError(f"{path} is not a split archive (no .NNN volume or index file)")
    index = read_index(index_path)
    for entry, p in zip(index.volumes, index.paths(), strict=True):
        _check_volume_size(p, entry)
    return SplitReader(index)


def _check_volume_size(path: Path, entry: VolumeEntry, fd: int | None = None) -> None:
    try:
        size = os.fstat(fd).st_size if fd is not None else path.stat().st_size
    except FileNotFoundError:
        raise MissingVolumeError(
            f"volume {entry.name} is missing ({path})", volume=entry.name, path=str(path)
        ) from None
    except OSError as exc:
        raise os_error(exc, f"reading volume {path}", path=path) from exc
    if size != entry.size:
        what = "truncated" if size < entry.size else "too long"
        raise VolumeSizeError(
            f"volume {entry.name} is {what}: {size} bytes, the index says {entry.size}",
            volume=entry.name,
            path=str(path),
        )


class SplitReader(io.RawIOBase):
    """The concatenation of a split archive's volumes as one readable stream.

    Sequential reads hash each volume and raise VolumeDigestError, naming it,
    before returning the volume's last byte if its sha256 differs from the
    index. `readinto` fills the whole buffer across volume boundaries (short
    only at end of archive). `seek` gives random access; a volume read other
    than from its start onwards in one pass is not digest-checked (its size
    still is). `verified_volumes` lists the volumes whose digest matched. Once
    a volume's digest has failed, every later read touching it raises again.
    """

    def __init__(self, index: VolumeIndex) -> None:
        super().__init__()
        self.index = index
        self._paths = index.paths()
        starts, pos = [], 0
        for v in index.volumes:
            starts.append(pos)
            pos += v.size
        self._starts = starts
        self._pos = 0
        self._cur: int | None = None  # index of the open volume
        self._file: io.FileIO | None = None
        self._hash_vol: int | None = None
        self._hash_pos = 0
        self._hash: Any = None
        self._verified: set[int] = set()
        self._failed: dict[int, VolumeError] = {}  # known-bad volumes stay bad

    @property
    def size(self) -> int:
        return self.index.total_size

    @property
    def verified_volumes(self) -> list[str]:
        return [self.index.volumes[i].name for i in sorted(self._verified)]

    @property
    def fully_verified(self) -> bool:
        return len(self._verified) == len(self.index.volumes)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        self._checkClosed()
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._checkClosed()
        if whence == io.SEEK_SET:
            new = offset
        elif whence == io.SEEK_CUR:
            new = self._pos + offset
        elif whence == io.SEEK_END:
            new = self.size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if new < 0:
            raise ValueError("negative seek position")
        self._pos = new
        return new

    def readinto(self, buffer: Buffer) -> int:
        self._checkClosed()
        out = memoryview(buffer).cast("B")
        done = 0
        while done < len(out) and self._pos < self.size:
            vol = self._volume_at(self._pos)
            if vol in self._failed:
                raise self._failed[vol]
            entry = self.index.volumes[vol]
            offset = self._pos - self._starts[vol]
            f = self._open(vol)
            f.seek(offset)
            want = min(len(out) - done, entry.size - offset)
            got = f.readinto(out[done : done + want])
            if not got:
                raise VolumeSizeError(
                    f"volume {entry.name} is truncated: ended at byte {offset}",
                    volume=entry.name,
                    path=str(self._paths[vol]),
                )
            self._account(vol, offset, out[done : done + got])
            done += got
            self._pos += got
        return done

    def readall(self) -> bytes:
        chunks = []
        while chunk := self.read(1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)

    def iter_chunks(self, size: int = 1 << 20) -> Iterator[bytes]:
        """Yield the rest of the archive in chunks of `size` bytes."""
        while chunk := self.read(size):
            yield chunk

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        super().close()

    # -- internals --

    def _volume_at(self, pos: int) -> int:
        # Every volume but the last is exactly volume_size bytes (index invariant).
        return min(pos // self.index.volume_size, len(self.index.volumes) - 1)

    def _open(self, vol: int) -> io.FileIO:
        if self._cur == vol and self._file is not None:
            return self._file
        if self._file is not None:
            self._file.close()
            self._file = None
        entry, path = self.index.volumes[vol], self._paths[vol]

        def missing(message: str, *, path: str) -> MissingVolumeError:
            return MissingVolumeError(
                f"volume {entry.name} is missing ({path})", volume=entry.name, path=path
            )

        f = open_regular_raw(path, what=f"volume {entry.name}", missing=missing)
        try:
            _check_volume_size(path, entry, f.fileno())
        except SnaparcError:
            f.close()
            raise
        self._file, self._cur = f, vol
        return f

    def _account(self, vol: int, offset: int, data: memoryview) -> None:
        if self._hash_vol == vol and self._hash_pos == offset:
            pass
        elif offset == 0:
            self._hash_vol, self._hash_pos, self._hash = vol, 0, hashlib.sha256()
        else:
            self._hash_vol = None  # random access: this pass cannot check the digest
            return
        self._hash.update(data)
        self._hash_pos += len(data)
        entry = self.index.volumes[vol]
        if self._hash_pos == entry.size:
            self._hash_vol = None
            actual = self._hash.hexdigest()
            if actual != entry.sha256:
                self._failed[vol] = VolumeDigestError(
                    f"volume {entry.name} is corrupt: sha256 {actual}, "
                    f"the index says {entry.sha256}",
                    volume=entry.name,
                    path=str(self._paths[vol]),
                )
                raise self._failed[vol]
            self._verified.add(vol)
