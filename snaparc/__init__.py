"""snaparc: content-addressed `.dlmsnap` archives for HF adapter snapshot exports.

The public API is `snaparc.api`, re-exported here: one function per command
(`pack`, `verify`, `ls`, `cat`, `unpack`, `materialize`, `materialize_cache`,
`export`, `push`, `pull`, `mirror_ls`, `mirror_rm`, `mirror_gc`, `mirror_check`,
`keygen`, `sign`, `sums`), each
validating its arguments first and returning a `Result`.

Layers, each using only those below it (checked by the import contract in
pyproject.toml; README "Architecture"):

- `snaparc.cli` + `snaparc.commands`: parse, call the API, print, exit;
- `snaparc.api`: validation and one result shape;
- `snaparc.sources`: what a command reads, classified and opened once;
- `snaparc.hf`, `snaparc.mirror`, `snaparc.airgap`: HF snapshots, mirrors,
  air-gap transfer;
- `snaparc.archive`: the verified reader, random access, the packer;
- `snaparc.publish`: outputs complete or not at all;
- `snaparc.format`: the pure format (bytes in, bytes out);
- `snaparc.errors`: one hierarchy, each class with its exit code.

Importing `snaparc` is cheap: the API is loaded on first use, and torch,
transformers, peft and obstore only by the functions that need them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from snaparc.version import __version__ as __version__

if TYPE_CHECKING:
    from snaparc.api import *  # noqa: F403


# The names of `snaparc.api.__all__` (a test keeps the two equal): only these
# load the API, so `from snaparc import errors` stays a plain submodule import.
_API_NAMES = frozenset(
    {
        "DEFAULT_LIMITS", "Catted", "Exported", "KeysWritten", "Limits", "Listed",
        "Materialized", "MaterializedCache", "MirrorChecked", "MirrorCollected", "MirrorListed",
        "MirrorRemoved", "OCIListed", "Packed", "ProgressFactory", "Pulled", "Pushed", "Result",
        "S3Settings", "Signed", "SumsWritten", "TransferSettings", "Unpacked", "Verified",
        "cat", "export",
        "keygen", "ls", "materialize", "materialize_cache", "mirror_check", "mirror_gc",
        "mirror_ls", "mirror_rm", "pack", "pull", "push", "remove_claimed", "s3_settings",
        "sign", "sums", "transfer_settings", "unpack", "verify",
    }
)  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _API_NAMES:
        import snaparc.api

        return getattr(snaparc.api, name)
    raise AttributeError(f"module 'snaparc' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API_NAMES])
