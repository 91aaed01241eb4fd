"""Materialize an archived HF snapshot export: verified while written, published whole.

Two destinations, one public function each; both read the archive once through
`snaparc.archive.reader.read_archive` (every blob's sha256 and blake3, tar headers,
seek table, end of archive) and publish only after it returned:

`materialize_hf_dir(stream, dest)` recreates the snapshot export tree itself
(`adapter/`, `processor/`, `snapshot_manifest.json`, `README.md`) at `dest`,
complete or not at all (`StagingDir`; `force=True` swaps atomically). Files
are published read-only (0444, 0555 if executable); directories stay 0755 so
the tree can be deleted. `PeftModel.from_pretrained(base, dest / "adapter")`
and `AutoProcessor.from_pretrained(dest / "processor")` load it.

`materialize_hf_cache(stream, repo_id="ORG/NAME")` writes the Hugging Face hub
cache layout under `cache_dir` (default: `snaparc.hf.constants.HF_HUB_CACHE`,
the hub's own rule):

    models--ORG--NAME/blobs/<sha256>                      content, 0444
    models--ORG--NAME/snapshots/<revision>/<path>  ->  ../../blobs/<sha256>
    models--ORG--NAME/refs/main                           <revision>

Rules (normative for this module):

- Revision: the first 40 hex characters of the archive id (the sha256 of the
  archive's canonical manifest). The same archive always gives the same
  revision; a different archive gives a different one.
- Repo layout (how adapter repos on the Hub look): `adapter/P` goes to `P`
  and `processor/P` to `P` at the repo root; every other file of the export
  (`snapshot_manifest.json`, `README.md`, anything else) keeps its path.
  Files claim names in priority order: the export's other files first, then
  `adapter/`, then `processor/` (each sorted by path). Files with the same
  name and identical content merge into one entry. A real conflict (same
  name, different content, or a file/directory clash) is never lost: the
  losing file keeps its export path (`processor/P`, `adapter/README.md`, ...)
  in the snapshot, and the conflict is reported in `CacheResult.conflicts`.
  peft writes a `README.md` model card into every adapter dir, so
  `adapter/README.md` normally loses to the export's `README.md` and is kept
  as `adapter/README.md`. Empty directories of the export are not recreated
  (the hub cache has no notion of them).
- Blobs are named by the sha256 the reader verified. A blob already in the
  cache is reused (not rewritten) only if it is a regular file (not a
  symlink) of the right size whose content we hash and find equal to its
  name; anything else is replaced by the verified copy. New blobs are written
  to process-unique temp names inside `blobs/` and renamed into place after
  the whole archive verified.
- Write order: blobs renamed into place; the snapshot dir (built in a staging
  dir beside it) renamed to `snapshots/<revision>` (atomic exchange if that
  revision already exists); `refs/main` written last, via `AtomicFile`. A
  failure at any step undoes the earlier ones: new blobs and the new snapshot
  dir are removed, temp files and staging dirs are deleted, and directories
  this call created are removed again, so the cache is left as it was.

Modules: `layout` (the pure repo layout rules), `checks` (is it a snapshot
export, does it describe itself truly), `to_dir` and `to_cache` (one
destination each). Neither destination imports torch, transformers or peft.
"""

from __future__ import annotations

from snaparc.hf.materialize.checks import SnapshotCheck
from snaparc.hf.materialize.layout import (
    ADAPTER_CONFIG,
    ADAPTER_DIR,
    PROCESSOR_DIR,
    REVISION_LENGTH,
    LayoutConflict,
    RepoLayout,
    plan_repo_layout,
    repo_folder_name,
    revision_for,
    validate_repo_id,
)
from snaparc.hf.materialize.to_cache import BLOB_MODE, CacheResult, materialize_hf_cache
from snaparc.hf.materialize.to_dir import MaterializeResult, materialize_hf_dir

__all__ = [
    "ADAPTER_CONFIG",
    "ADAPTER_DIR",
    "BLOB_MODE",
    "PROCESSOR_DIR",
    "REVISION_LENGTH",
    "CacheResult",
    "LayoutConflict",
    "MaterializeResult",
    "RepoLayout",
    "SnapshotCheck",
    "materialize_hf_cache",
    "materialize_hf_dir",
    "plan_repo_layout",
    "repo_folder_name",
    "revision_for",
    "validate_repo_id",
]
