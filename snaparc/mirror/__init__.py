"""Mirrors: content-addressed copies of `.dlmsnap` archives in a directory or S3.

Layering (spec/MIRROR.md is normative):

- `url`: parse `URL[:REF|@ID]`; read AWS settings once.
- `store`: one small protocol per capability (get, get_range, put, head,
  list), the error classes, `DirStore`, `MemoryStore`, and `RetryingStore`.
  Stores know nothing of archives.
- `s3`: `S3Store` on obstore (imported only when an `s3://` URL is opened).
- `layout`: object keys, the archive record and its canonical bytes, how an
  archive's frames map onto mirror objects. Pure; no I/O.
- `push`: verify an archive, upload what the mirror lacks, then the record,
  then the ref.
- `pull`: resolve a ref, stream the rebuilt archive (`open_mirror_archive`),
  check it with the verified reader, publish byte-identical `.dlmsnap` files.

Importing this package is cheap: nothing here imports obstore at module level.
"""

from __future__ import annotations
