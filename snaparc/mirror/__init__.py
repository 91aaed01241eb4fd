"""Mirrors: content-addressed copies of `.dlmsnap` archives in a directory or S3.

Layering (spec/MIRROR.md is normative):

- `url`: parse `URL[:REF|@ID]`; read AWS settings once.
- `store`: one small protocol per capability (get, get_range, put, head,
  list, delete), the error classes, `DirStore`, `MemoryStore`, and `RetryingStore`
  (bounded retries with backoff, resumed reads, transfer counters). Stores
  know nothing of archives.
- `s3`: `S3Store` on obstore (imported only when an `s3://` URL is opened);
  the idle timeout bounds every request.
- `workers`: store requests off the main thread (daemon workers, waits a
  signal interrupts).
- `fetch`: an archive record's bytes as a stream read in bounded ranges,
  every part checked (and, for a resumed read, read from a killed run's file;
  for `unpack` and `materialize`, every fetched range kept in it).
- `resume`: the one resume mechanism of pull, unpack and materialize: the
  resume file a killed run leaves beside its output (spec/MIRROR.md
  section 12).
- `layout`: object keys, the archive record and its canonical bytes, how an
  archive's frames map onto mirror objects. Pure; no I/O.
- `push`: verify an archive, upload what the mirror lacks, then the record,
  then the ref.
- `pull`: resolve a ref, stream the rebuilt archive (`open_mirror_input`),
  check it with the verified reader, publish byte-identical `.dlmsnap` files,
  resuming after a kill (`resume`).
- `lock`: leased locks in `locks/`: pushes share one kind, gc and `rm` of a
  record take the other (spec/MIRROR.md section 10).
- `inventory`: one listing of the whole mirror, sorted by kind of key, and
  each record read once; `gc`, `check` and `usage` are built on it.
- `remove`: drop a ref, or a record (exclusive lock; refused while refs name it).
- `gc`: delete the parts no record reaches, under the exclusive lock.
- `check`: structure from the listing and the records; with `read_data`,
  every part's sha256 and every archive through the verified reader.
- `usage`: per archive its size and shared bytes; logical against stored bytes.

Importing this package is cheap: nothing here imports obstore at module level.
"""

from __future__ import annotations
