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

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from snaparc.api.airgap import keygen, sign, sums
    from snaparc.api.archive import ProgressFactory, cat, ls, pack, unpack, verify
    from snaparc.api.hf import export, materialize, materialize_cache
    from snaparc.api.mirror import mirror_check, mirror_gc, mirror_ls, mirror_rm, pull, push
    from snaparc.api.results import (
        Catted,
        Exported,
        KeysWritten,
        Listed,
        Materialized,
        MaterializedCache,
        MirrorChecked,
        MirrorCollected,
        MirrorListed,
        MirrorRemoved,
        OCIListed,
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

# Where each name lives: a command loads only its own module (`snaparc ls`
# does not import the mirror or HF halves of the API).
_HOMES = {
    **dict.fromkeys(("keygen", "sign", "sums"), "snaparc.api.airgap"),
    **dict.fromkeys(
        ("ProgressFactory", "cat", "ls", "pack", "unpack", "verify"), "snaparc.api.archive"
    ),
    **dict.fromkeys(("export", "materialize", "materialize_cache"), "snaparc.api.hf"),
    **dict.fromkeys(
        ("mirror_check", "mirror_gc", "mirror_ls", "mirror_rm", "pull", "push"),
        "snaparc.api.mirror",
    ),
    **dict.fromkeys(
        (
            "Catted",
            "Exported",
            "KeysWritten",
            "Listed",
            "Materialized",
            "MaterializedCache",
            "MirrorChecked",
            "MirrorCollected",
            "MirrorListed",
            "MirrorRemoved",
            "OCIListed",
            "Packed",
            "Pulled",
            "Pushed",
            "Result",
            "Signed",
            "SumsWritten",
            "Unpacked",
            "Verified",
        ),
        "snaparc.api.results",
    ),
    **dict.fromkeys(("DEFAULT_LIMITS", "Limits"), "snaparc.format.limits"),
    **dict.fromkeys(
        ("S3Settings", "TransferSettings", "s3_settings", "transfer_settings"),
        "snaparc.mirror.url",
    ),
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'snaparc.api' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


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
    "MirrorChecked",
    "MirrorCollected",
    "MirrorListed",
    "MirrorRemoved",
    "OCIListed",
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
    "mirror_check",
    "mirror_gc",
    "mirror_ls",
    "mirror_rm",
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
