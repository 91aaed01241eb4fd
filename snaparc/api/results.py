"""What every API function returns: one `Result` shape.

Each result is a frozen dataclass whose fields are the outcome (the lower
layers' reports are kept whole where a caller may want more), and whose
`to_json()` is the document `--json` prints. Nothing here prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from snaparc.archive.input import TransferCounts
    from snaparc.archive.listing import Listing
    from snaparc.archive.pack import WrittenArchive
    from snaparc.archive.reader import ReadReport
    from snaparc.hf.export.build import SnapshotResult
    from snaparc.hf.materialize import CacheResult, MaterializeResult, SnapshotCheck
    from snaparc.mirror.check import CheckReport
    from snaparc.mirror.gc import GcReport
    from snaparc.mirror.oci.listing import OCIListing
    from snaparc.mirror.oci.push import OCIPushReport
    from snaparc.mirror.pull import MirrorListing, PullReport
    from snaparc.mirror.push import PushReport
    from snaparc.mirror.remove import RemoveReport
    from snaparc.mirror.usage import MirrorUsage


@dataclass(frozen=True, slots=True)
class Result:
    """The base of every API result."""

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Packed(Result):
    written: WrittenArchive
    output: str  # the path, or "-" for stdout
    sums: tuple[Path, ...] = ()

    @property
    def archive_id(self) -> str:
        return self.written.archive_id

    def to_json(self) -> dict[str, Any]:
        m = self.written.manifest
        return {
            "archive_id": self.archive_id,
            "output": self.output,
            "files": len(m.files),
            "blobs": len(m.blobs),
            "tree_bytes": m.total_size,
            "blob_bytes": m.blob_bytes,
            "compressed_bytes": self.written.compressed_bytes,
            "frames": self.written.frames,
            "metadata": m.metadata,
        }


@dataclass(frozen=True, slots=True)
class Verified(Result):
    report: ReadReport
    signature: dict[str, str] | None = None
    # An OMS bundle checked against the manifest: model_name, subject_digest,
    # hash_type, files (compared), key_hint, bundle (its path).
    oms: dict[str, Any] | None = None

    @property
    def archive_id(self) -> str:
        return self.report.archive_id

    @property
    def external_blobs(self) -> int:
        m = self.report.manifest
        return len(m.blobs) - len(m.stored_blobs)

    def to_json(self) -> dict[str, Any]:
        r = self.report
        return {
            "ok": True,
            "archive_id": r.archive_id,
            "format_version": r.manifest.format_version,
            "created_by": r.manifest.created_by,
            "files": len(r.manifest.files),
            "blobs": len(r.manifest.blobs),
            "blobs_verified": r.blobs_verified,
            "bytes_verified": r.bytes_verified,
            "compressed_bytes": r.compressed_bytes,
            "frames": r.frames,
            "digests": ["sha256", "blake3"],
            "signature": self.signature,
            "oms_signature": self.oms,
            "base": r.manifest.base,
            "external_blobs": self.external_blobs,
            "metadata": r.manifest.metadata,
        }


@dataclass(frozen=True, slots=True)
class Listed(Result):
    listing: Listing

    @property
    def archive_id(self) -> str:
        return self.listing.archive_id

    def to_json(self) -> dict[str, Any]:
        m = self.listing.manifest
        blobs = m.blob_index()
        return {
            "archive_id": self.archive_id,
            "format_version": m.format_version,
            "created_by": m.created_by,
            "compressed_bytes": self.listing.compressed_size,
            "tree_bytes": m.total_size,
            "blob_bytes": m.blob_bytes,
            "metadata": m.metadata,
            "base": m.base,
            "dirs": m.dirs,
            "files": [
                {
                    "path": f.path,
                    "size": f.size,
                    "executable": f.executable,
                    "sha256": f.blob,
                    "blake3": blobs[f.blob].blake3,
                    "external": blobs[f.blob].external,
                    "codec": blobs[f.blob].codec,
                }
                for f in m.files
            ],
        }

    def tensors(self) -> dict[str, list[dict[str, Any]]]:
        """The tensor index (format 1.1), by file path: each tensor's name, dtype,
        shape and byte range [begin, end) in the file, in file order. Empty for
        an archive without one."""
        index = self.listing.manifest.tensors
        return {
            f.path: [t.to_json() for t in index[f.blob]]
            for f in self.listing.manifest.files
            if f.blob in index
        }

    def tensors_json(self) -> dict[str, Any]:
        """The document `ls --tensors --json` prints."""
        return {
            "archive_id": self.archive_id,
            "format_version": self.listing.manifest.format_version,
            "files": [{"path": p, "tensors": t} for p, t in self.tensors().items()],
        }


@dataclass(frozen=True, slots=True)
class Catted(Result):
    path: str
    size: int  # the bytes written: the file's, or the tensor's
    sha256: str  # the file's
    tensor: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "sha256": self.sha256, "tensor": self.tensor}


def transfer_json(transfer: TransferCounts | None) -> dict[str, Any]:
    """A mirror read's counts, as `pull --json` names them (nothing for a file)."""
    if transfer is None:
        return {}
    return {
        "bytes_fetched": transfer.fetched,
        "bytes_skipped": transfer.skipped,
        "retries": transfer.retries,
    }


@dataclass(frozen=True, slots=True)
class Unpacked(Result):
    target: Path
    report: ReadReport
    # From a mirror: bytes fetched, skipped (resumed) and requests retried.
    transfer: TransferCounts | None = None

    @property
    def archive_id(self) -> str:
        return self.report.archive_id

    def to_json(self) -> dict[str, Any]:
        m = self.report.manifest
        return {
            "archive_id": self.archive_id,
            "target": str(self.target),
            "files": len(m.files),
            "tree_bytes": m.total_size,
            "bytes_verified": self.report.bytes_verified,
            **transfer_json(self.transfer),
        }


def _snapshot_json(report: ReadReport, snap: SnapshotCheck) -> dict[str, Any]:
    return {
        "archive_id": report.archive_id,
        "base_model_hf_id": snap.base_model_hf_id,
        "base_model_revision": snap.base_model_revision,
        "modality": snap.modality,
        "adapter_version": snap.adapter_version,
        "adapter_name": snap.adapter_name,
        "undeclared": list(snap.undeclared),
        "checked": list(snap.checks),
    }


@dataclass(frozen=True, slots=True)
class Materialized(Result):
    """A snapshot export tree published at `target` (`result` has the details)."""

    result: MaterializeResult
    # The OMS bundle that travelled with the archive, written beside the tree.
    oms_signature: Path | None = None
    # From a mirror: bytes fetched, skipped (resumed) and requests retried.
    transfer: TransferCounts | None = None

    @property
    def archive_id(self) -> str:
        return self.result.archive_id

    @property
    def target(self) -> Path:
        return self.result.target

    def to_json(self) -> dict[str, Any]:
        r = self.result
        oms = None if self.oms_signature is None else str(self.oms_signature)
        return {
            "target": str(r.target),
            "oms_signature": oms,
            **_snapshot_json(r.report, r.snapshot),
            **transfer_json(self.transfer),
        }


@dataclass(frozen=True, slots=True)
class MaterializedCache(Result):
    """A snapshot published into a hub cache (`result` has the details)."""

    result: CacheResult
    # The OMS bundle of the snapshot's tree that travelled with the archive
    # (ARCHIVE.hub.oms.json), at <repo>/signatures/<revision>.oms.json.
    oms_signature: Path | None = None
    # From a mirror: bytes fetched, skipped (resumed) and requests retried.
    transfer: TransferCounts | None = None

    @property
    def archive_id(self) -> str:
        return self.result.archive_id

    def to_json(self) -> dict[str, Any]:
        r = self.result
        return {
            "oms_signature": None if self.oms_signature is None else str(self.oms_signature),
            "repo_id": r.repo_id,
            "cache_dir": str(r.cache_dir),
            "repo_dir": str(r.repo_dir),
            "revision": r.revision,
            "snapshot_dir": str(r.snapshot_dir),
            "blobs_written": r.blobs_written,
            "blobs_reused": r.blobs_reused,
            "files": r.files,
            "merged": [list(m) for m in r.merged],
            "conflicts": [
                {
                    "repo_path": c.repo_path,
                    "kept": c.kept,
                    "moved": c.moved,
                    "moved_to": c.moved_to,
                    "reason": c.reason,
                }
                for c in r.conflicts
            ],
            **_snapshot_json(r.report, r.snapshot),
            **transfer_json(self.transfer),
        }


@dataclass(frozen=True, slots=True)
class Exported(Result):
    result: SnapshotResult

    @property
    def export_dir(self) -> Path:
        return self.result.export_dir

    def to_json(self) -> dict[str, Any]:
        r = self.result
        return {
            "export_dir": str(r.export_dir),
            "manifest": str(r.manifest_path),
            "modality": r.manifest.modality,
            "adapter_version": r.manifest.adapter_version,
            "adapter_name": r.manifest.adapter_name,
            "artifacts": len(r.artifacts),
        }


@dataclass(frozen=True, slots=True)
class Pushed(Result):
    report: PushReport | OCIPushReport
    url: str
    # The signature kinds carried along (mirror `signatures/<ID>/<KIND>`).
    signatures: tuple[str, ...] = ()

    @property
    def archive_id(self) -> str:
        return self.report.archive_id

    def to_json(self) -> dict[str, Any]:
        r = self.report
        return {
            "archive_id": r.archive_id,
            "ref": r.ref,
            "bytes_sent": r.bytes_sent,
            "bytes_skipped": r.bytes_skipped,
            "objects_sent": r.objects_sent,
            "objects_skipped": r.objects_skipped,
            "signatures": list(self.signatures),
            "record_written": r.record_written,
            "kept_other_encoding": r.kept_other_encoding,
            **(
                {
                    "manifest_digest": getattr(r, "manifest_digest", None),
                    "objects_mounted": getattr(r, "objects_mounted", 0),
                }
                if hasattr(r, "manifest_digest")
                else {}
            ),
            "retries": getattr(r, "retries", 0),
        }


@dataclass(frozen=True, slots=True)
class Pulled(Result):
    report: PullReport
    # OMS bundles the mirror carried, written beside the output.
    signatures: tuple[Path, ...] = ()

    @property
    def archive_id(self) -> str:
        return self.report.archive_id

    def to_json(self) -> dict[str, Any]:
        r = self.report
        return {
            "archive_id": r.archive_id,
            "output": str(r.output),
            "bytes": r.bytes_received,
            "bytes_fetched": r.bytes_fetched,
            "bytes_skipped": r.bytes_skipped,
            "retries": getattr(r, "retries", 0),
            "blobs_verified": r.blobs_verified,
            "signatures": [str(p) for p in self.signatures],
        }


@dataclass(frozen=True, slots=True)
class MirrorListed(Result):
    listing: MirrorListing
    usage: MirrorUsage

    def to_json(self) -> dict[str, Any]:
        u = self.usage
        return {
            "refs": self.listing.refs,
            "archives": sorted(self.listing.archives),
            "sizes": {
                aid: {"size": a.size, "shared_bytes": a.shared_bytes, "own_bytes": a.stored_bytes}
                for aid, a in sorted(u.archives.items())
            },
            "logical_bytes": u.logical_bytes,
            "stored_bytes": u.stored_bytes,
            "objects": u.objects,
        }


@dataclass(frozen=True, slots=True)
class OCIListed(Result):
    """`mirror ls oci://HOST/REPO`: the shape of `MirrorListed` (refs are the
    tags that name snaparc artifacts, sizes are layer bytes as the manifests
    claim them), plus every tag's manifest digest."""

    listing: OCIListing

    def to_json(self) -> dict[str, Any]:
        x = self.listing
        return {
            "url": x.repository,
            "refs": x.refs,
            "archives": sorted(x.archives),
            "sizes": {
                aid: {"size": e.layer_bytes, "shared_bytes": x.shared_bytes(aid)}
                for aid, e in sorted(x.archives.items())
            },
            "tags": {
                t.tag: {"digest": t.digest, "archive_id": t.archive_id}
                | ({"problem": t.problem} if t.problem else {})
                for t in x.tags
            },
            "logical_bytes": x.logical_bytes,
            "stored_bytes": x.stored_bytes,
        }


@dataclass(frozen=True, slots=True)
class MirrorRemoved(Result):
    report: RemoveReport
    url: str

    def to_json(self) -> dict[str, Any]:
        r = self.report
        return {
            "url": self.url,
            "ref": r.ref,
            "archive_id": r.archive_id,
            "archive_removed": r.ref is None,
            "refs_removed": list(r.refs_removed),
        }


@dataclass(frozen=True, slots=True)
class MirrorCollected(Result):
    report: GcReport
    url: str

    def to_json(self) -> dict[str, Any]:
        r = self.report
        return {
            "url": self.url,
            "dry_run": r.dry_run,
            "archives": r.archives,
            "deleted_objects": len(r.deleted),
            "deleted_bytes": r.deleted_bytes,
            "deleted": list(r.deleted),
            "kept_objects": r.kept_objects,
            "kept_bytes": r.kept_bytes,
            "stale_locks_removed": list(r.stale_locks),
        }


@dataclass(frozen=True, slots=True)
class MirrorChecked(Result):
    report: CheckReport
    url: str

    @property
    def ok(self) -> bool:
        return self.report.ok

    def to_json(self) -> dict[str, Any]:
        r = self.report
        return {
            "url": self.url,
            "ok": r.ok,
            "read_data": r.read_data,
            "archives": r.archives,
            "refs": r.refs,
            "objects": r.objects,
            "stored_bytes": r.stored_bytes,
            "parts_read": r.parts_read,
            "bytes_read": r.bytes_read,
            "archives_verified": r.archives_verified,
            "orphans": r.orphans,
            "orphan_bytes": r.orphan_bytes,
            "unexpected_keys": r.unexpected,
            "locks": r.locks,
            "damaged_archives": r.damaged_archives,
            "damaged_objects": r.damaged_objects,
            "problems": [
                {"kind": p.kind, "key": p.key, "archive_id": p.archive_id, "message": p.message}
                for p in r.problems
            ],
        }


@dataclass(frozen=True, slots=True)
class KeysWritten(Result):
    key_id: str
    public_key: Path
    secret_key: Path

    def to_json(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "public_key": str(self.public_key),
            "secret_key": str(self.secret_key),
        }


@dataclass(frozen=True, slots=True)
class Signed(Result):
    """`signature` was written for `target`; `kind` is "minisign" (a signature of
    the file's bytes) or "oms" (an OpenSSF model signing bundle of its tree,
    then `files` resources and `subject_digest`)."""

    target: Path
    signature: Path
    kind: str = "minisign"
    files: int | None = None
    subject_digest: str | None = None
    # For an HF snapshot archive: the bundle of the hub-cache snapshot's tree.
    hub_signature: Path | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "target": str(self.target),
            "signature": str(self.signature),
            "kind": self.kind,
        }
        if self.kind == "oms":
            hub = None if self.hub_signature is None else str(self.hub_signature)
            out.update(files=self.files, subject_digest=self.subject_digest, hub_signature=hub)
        return out


@dataclass(frozen=True, slots=True)
class SumsWritten(Result):
    paths: tuple[Path, ...]

    def to_json(self) -> dict[str, Any]:
        return {"written": [str(p) for p in self.paths]}
