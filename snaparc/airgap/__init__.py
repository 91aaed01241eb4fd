"""Air-gap transfer: minisign signatures, stock-tool checksums, split volumes.

- `snaparc.airgap.minisign`: Ed25519 keys and signatures in minisign's exact
  formats (`write_keypair`, `sign_file`, `verify_file`).
- `snaparc.airgap.sums`: ``<archive>.sha256`` / ``<archive>.b3`` for
  `sha256sum -c` / `b3sum -c` (`write_sums`).
- `snaparc.airgap.volumes`: fixed-size volumes plus an index
  (`SplitWriter`, `open_volumes`, `is_split_archive`, `parse_size`).

A split archive is signed through its index (`signature_target`): the index
lists every volume's size and sha256, and `open_volumes` checks them.

This package imports nothing at import time; import the submodules.
"""

from __future__ import annotations

import os
from pathlib import Path


def signature_target(archive_path: str | os.PathLike[str]) -> Path:
    """The file whose signature covers `archive_path`: the archive, or a split set's index."""
    from snaparc.airgap.volumes import split_index_path

    index = split_index_path(archive_path)
    if index is not None and index.is_file():
        return index
    return Path(archive_path)
