"""The public, typed API of snaparc: one function per command.

Every function validates all of its arguments before it touches a file, a
mirror or a cache (a bad one raises `UsageError`, exit 2, naming the
option), reads archives through `snaparc.sources` (so a pinned archive id is
enforced everywhere), and returns a `Result` whose `to_json()` is what the
CLI's `--json` prints. None prints or exits; errors are `SnaparcError`s
carrying their exit code.

    import snaparc
    snaparc.pack("export_dir", "adapter.dlmsnap")
    snaparc.verify("adapter.dlmsnap").archive_id
    snaparc.materialize("s3://bucket/adapters:prod", "loadable/")
"""

from __future__ import annotations

from snaparc.api.airgap import keygen, sign, sums
from snaparc.api.archive import ProgressFactory, cat, ls, pack, unpack, verify
from snaparc.api.hf import export, materialize, materialize_cache
from snaparc.api.mirror import mirror_ls, pull, push
from snaparc.api.results import (
    Catted,
    Exported,
    KeysWritten,
    Listed,
    Materialized,
    MaterializedCache,
    MirrorListed,
    Packed,
    Pulled,
    Pushed,
    Result,
    Signed,
    SumsWritten,
    Unpacked,
    Verified,
)
from snaparc.format.limits import DEFAULT_LIMITS, Limits
from snaparc.mirror.url import S3Settings, TransferSettings, s3_settings, transfer_settings


def remove_claimed() -> list[str]:
    """Remove every temp file and staging directory this process still claims.

    A signal (Ctrl-C, SIGTERM) can land between creating a temp path and
    entering the block that would remove it; a caller that catches
    `KeyboardInterrupt` around an API call calls this (the CLI does) so that
    nothing is left behind. Returns the paths removed.
    """
    from snaparc.publish import remove_owned

    return [str(p) for p in remove_owned()]


__all__ = [
    "DEFAULT_LIMITS",
    "Catted",
    "Exported",
    "KeysWritten",
    "Limits",
    "Listed",
    "Materialized",
    "MaterializedCache",
    "MirrorListed",
    "Packed",
    "ProgressFactory",
    "Pulled",
    "Pushed",
    "Result",
    "S3Settings",
    "Signed",
    "SumsWritten",
    "TransferSettings",
    "Unpacked",
    "Verified",
    "cat",
    "export",
    "keygen",
    "ls",
    "materialize",
    "materialize_cache",
    "mirror_ls",
    "pack",
    "pull",
    "push",
    "remove_claimed",
    "s3_settings",
    "sign",
    "sums",
    "transfer_settings",
    "unpack",
    "verify",
]
