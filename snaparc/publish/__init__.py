"""Publish outputs complete or not at all.

Every output snaparc writes to a path is built under a hidden temp name
beside it, fsynced, and given its final name in one step, so a reader (or
the next run after a crash) sees the old state or the complete new one:

- `names`: the one temp-naming scheme (`.NAME.snaparc-tmp-PID@HOST-TOKEN`,
  `-staging-`, `-old-`) and the stale cleanup it makes possible.
- `claims`: the temp paths this process must remove when Ctrl-C or SIGTERM
  ends it (`own`, `disown`, `remove_owned`).
- `fs`: `fsync_dir`, `place` (replace or create-only), `check_target` and
  the one OSError mapping `os_error`.
- `directio`, `writers`: new files written around the page cache
  (`AppendFile`, `NewFileWriter`).
- `files`: files published whole (`AtomicFile`, `write_file_atomic`,
  `put_file`).
- `staging`: directory trees published whole (`StagingDir`, renameat2).
- `output`: the shape all three share (`Output`: `finish` or `abort`; as a
  context manager, abort on an exception).

Importers use this face (`from snaparc.publish import AtomicFile`); direct
I/O is `snaparc.publish.directio`.
"""

from snaparc.publish.claims import disown, own, remove_owned
from snaparc.publish.files import AtomicFile, put_file, write_file_atomic
from snaparc.publish.fs import check_target, fsync_dir, os_error, place, published_mode
from snaparc.publish.names import (
    adopt,
    adopt_stale,
    clean_stale,
    dead_temps,
    owner_tag,
    temp_name,
)
from snaparc.publish.output import Output
from snaparc.publish.staging import (
    RENAME_EXCHANGE,
    RENAME_NOREPLACE,
    StagingDir,
    rename_with_flags,
)
from snaparc.publish.writers import AppendFile, NewFileWriter

__all__ = [
    "RENAME_EXCHANGE",
    "RENAME_NOREPLACE",
    "AppendFile",
    "AtomicFile",
    "NewFileWriter",
    "Output",
    "StagingDir",
    "adopt",
    "adopt_stale",
    "check_target",
    "clean_stale",
    "dead_temps",
    "disown",
    "fsync_dir",
    "os_error",
    "own",
    "owner_tag",
    "place",
    "published_mode",
    "put_file",
    "remove_owned",
    "rename_with_flags",
    "temp_name",
    "write_file_atomic",
]
