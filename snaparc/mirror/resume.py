"""What a mirror read killed by SIGKILL leaves for the next run (spec/MIRROR.md, section 12).

One mechanism for every command that reads an archive from a mirror into a
local output (`pull`, `unpack`, `materialize` to a directory or a hub cache):

- the *resume file* is a temp file of the publish naming scheme
  (`.NAME.snaparc-tmp-PID@HOST-TOKEN`, `snaparc.publish.names`), so the
  stale-cleanup rules own it: a live run's file is never touched, a dead
  run's is taken over (`adopt_stale`) or removed as stale (`clean_stale`),
  Ctrl-C and SIGTERM remove it (it is claimed), and it is removed when the
  command ends, whatever the outcome. Only SIGKILL (a crash, a power cut)
  leaves it behind;
- it holds the rebuilt `.dlmsnap` bytes at their offsets in the archive, so
  its longest prefix of whole parts that match their sha256
  (`cached_prefix`) is read from it instead of fetched, and every
  byte still goes through every check of a fetched one;
- `pull` needs no file of its own: its output temp file (named after the
  output) is the archive being rebuilt. `unpack` and `materialize` publish
  trees, so they keep one beside their target, named after the archive id
  (`ResumeAt.keyed`): the fetch workers write every part they fetch into it
  at its offset (`MirrorArchiveStream` with `keep`), a run killed again
  leaves it for the next one, and two commands of the same archive into the
  same directory share it;
- a run that finds nothing under its own name takes over the largest other
  `*.dlmsnap` temp file a dead process left beside it that begins with this
  archive's first part: a killed pull's file serves an unpack or a
  materialize of the same archive into the same directory, and theirs
  serve a pull (so does a killed pack's);
- `resume=False` (`--no-resume`) takes nothing over: leftovers are removed
  as stale and the run starts afresh (and still keeps its own parts).

What a resume file is checked against is a `Resumable`: a mirror's archive
record (its parts' sha256), or an OCI artifact (`snaparc.mirror.oci.resume`:
its members' frames, decompressed, against the blobs' sha256).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from snaparc.mirror.layout import ArchiveRecord
from snaparc.publish import adopt, adopt_stale, clean_stale, dead_temps, disown, own, temp_name

__all__ = [
    "KEY_SUFFIX",
    "Kept",
    "Resumable",
    "ResumeAt",
    "ResumeFile",
    "cached_prefix",
    "open_resume_file",
]

# The resume file of `unpack` and `materialize` is a temp file for the name
# ARCHIVE_ID + KEY_SUFFIX (a pulled file's name, never published).
KEY_SUFFIX = ".dlmsnap"
# When none was left under its own name, a run looks at the largest of the
# other archive temp files dead processes left beside it (a pull's, a
# pack's, another command's), at most this many, for one that begins with
# this archive's first part.
OTHERS = 8
_MIB = 1024 * 1024


def cached_prefix(fd: int, record: ArchiveRecord, *, parts: int | None = None) -> int:
    """How many leading bytes of the file `fd` are whole parts of `record`
    with the right sha256 (each part checked in 1 MiB reads); with `parts`,
    at most that many parts are checked."""
    size = os.fstat(fd).st_size
    offset = 0
    checked = 0
    for member in record.members:
        for part in member.parts:
            if parts is not None and checked == parts:
                return offset
            checked += 1
            if offset + part.size > size:
                return offset
            digest = hashlib.sha256()
            at = offset
            while at < offset + part.size:
                data = os.pread(fd, min(_MIB, offset + part.size - at), at)
                if not data:
                    return offset
                digest.update(data)
                at += len(data)
            if digest.hexdigest() != part.sha256:
                return offset
            offset += part.size
    return offset


@dataclass(frozen=True, slots=True)
class ResumeAt:
    """Where a mirror read finds what a killed run left, and keeps its own.

    `name`: the name the resume file is a temp file of (pull: its output's);
    None: the archive id's (`ID.dlmsnap`). `keep`: fetched parts are written
    into it (pull's output temp holds them already). `adopt`: take over a
    dead run's file (False: `--no-resume`)."""

    directory: Path
    name: str | None = None
    keep: bool = True
    adopt: bool = True

    @classmethod
    def keyed(cls, directory: Path, *, adopt: bool = True) -> ResumeAt:
        return cls(Path(os.path.abspath(directory)), None, keep=True, adopt=adopt)

    def name_for(self, archive_id: str) -> str:
        return self.name if self.name is not None else archive_id + KEY_SUFFIX


class Kept:
    """Writes fetched ranges into the resume file, from any worker thread.

    Keeping is best effort: a write that fails (a full disk) turns keeping
    off for the rest of the run, and the read goes on. `close` waits for a
    write in progress, so no write lands after the descriptor is closed (and
    its number perhaps reused)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._lock = threading.Lock()
        self._open = True

    def write(self, data: bytes, offset: int) -> None:
        with self._lock:
            if not self._open:
                return
            try:
                os.pwrite(self._fd, data, offset)
            except OSError:
                self._open = False

    def close(self) -> None:
        with self._lock:
            self._open = False


@dataclass(slots=True)
class ResumeFile:
    """An open resume file: read from where its parts match, written with `kept`."""

    path: Path
    fd: int
    kept: Kept | None


class Resumable(Protocol):
    """What a resume file holds the rebuilt bytes of."""

    @property
    def archive_id(self) -> str: ...

    def room_needed(self) -> int:
        """Bytes a run that keeps a new file needs beside it (`SPARE` excluded)."""
        ...

    def begins(self, fd: int) -> bool:
        """Whether the file `fd` begins with this archive's first part."""
        ...


@dataclass(frozen=True, slots=True)
class _MirrorArchive:
    """A mirror's archive record as a `Resumable`."""

    record: ArchiveRecord

    @property
    def archive_id(self) -> str:
        return self.record.archive_id

    def room_needed(self) -> int:
        return self.record.file_size + sum(b.size for b in self.record.blobs)

    def begins(self, fd: int) -> bool:
        return cached_prefix(fd, self.record, parts=1) > 0


def _create(path: Path) -> int:
    own(path, is_dir=False)
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError:
        disown(path)
        raise


def _take_over(at: ResumeAt, name: str, record: Resumable) -> Path | None:
    """A dead run's file for `name`, else the largest other dead `*.dlmsnap`
    temp file beside it whose first part is this archive's (a killed pull
    of the archive serves an unpack of it, and the other way round)."""
    path = adopt_stale(at.directory, name)
    if path is not None:
        return path
    for _, other in dead_temps(at.directory, r".+\.dlmsnap")[:OTHERS]:
        try:
            fd = os.open(other, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            matches = record.begins(fd)
        except OSError:
            matches = False
        finally:
            os.close(fd)
        if matches:
            return adopt(other, name)
    return None


# A keyed resume file is started only when the directory has room for it and
# for what the command writes beside it, with this much to spare: resuming
# must never be the reason a tree does not fit.
SPARE = 64 * 1024 * 1024


def _room_to_keep(directory: Path, record: Resumable) -> bool:
    """Free space for the archive's bytes, its blobs' bytes and `SPARE`."""
    needed = record.room_needed() + SPARE
    try:
        st = os.statvfs(directory)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize >= needed


@contextmanager
def open_resume_file(
    at: ResumeAt, record: ArchiveRecord | Resumable
) -> Iterator[ResumeFile | None]:
    """The resume file of the archive `record` describes at `at`, removed when
    the block ends.

    A dead run's file is taken over when `at.adopt` (`_take_over`); with
    `at.keep` the other leftovers of the same name are removed as stale and,
    when there was none to take over, a new file is made. None when there is
    no file to read or write (nothing left and nothing kept, or the directory
    is unusable: resuming is an optimization, never a reason to fail). An
    unpack's or materialize's new file is made only when the directory has
    room for it beside the output (`_room_to_keep`)."""
    if isinstance(record, ArchiveRecord):
        record = _MirrorArchive(record)
    name = at.name_for(record.archive_id)
    path = _take_over(at, name, record) if at.adopt else None
    fd: int | None = None
    kept: Kept | None = None
    try:
        if at.keep:
            clean_stale(at.directory, name)
        if path is not None:
            flags = (os.O_RDWR if at.keep else os.O_RDONLY) | os.O_NOFOLLOW
            with contextlib.suppress(OSError):
                fd = os.open(path, flags)
        elif at.keep and (at.name is not None or _room_to_keep(at.directory, record)):
            path = temp_name(at.directory, name, "tmp")
            try:
                fd = _create(path)
            except OSError:
                path = None
        if fd is not None and at.keep:
            kept = Kept(fd)
        yield None if fd is None or path is None else ResumeFile(path, fd, kept)
    finally:
        if kept is not None:
            kept.close()  # before the descriptor goes: a late worker writes nothing
        if fd is not None:
            os.close(fd)
        if path is not None:
            path.unlink(missing_ok=True)
            disown(path)
