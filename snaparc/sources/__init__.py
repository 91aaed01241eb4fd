"""Sources: where the bytes a command reads come from.

Every archive a command reads (a path, `-` for stdin, split volumes, a mirror
target `URL:REF` / `URL@ID`) is classified and opened here, once; small
side files (keys, signatures, indexes, records, password files) are read
through `snaparc.sources.regular`, which refuses anything but a regular file.
"""

from __future__ import annotations

from snaparc.sources.archive import (
    STDIN,
    Source,
    SourceKind,
    classify_source,
    mirror_target,
    mirror_url,
    open_source,
)

__all__ = [
    "STDIN",
    "Source",
    "SourceKind",
    "classify_source",
    "mirror_target",
    "mirror_url",
    "open_source",
]
