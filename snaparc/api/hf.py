"""export, materialize, materialize_cache: the Hugging Face commands of the API.

Nothing here imports torch, transformers or peft; `export` with
`processor_dir` loads transformers lazily, below.
"""

from __future__ import annotations

import os
from pathlib import Path

from snaparc.api.archive import ProgressFactory, Reading
from snaparc.api.args import check_path, check_repo_id
from snaparc.api.oms import HUB_SIGNATURES_DIR, publish_bundle, travelling_bundle
from snaparc.api.results import Exported, Materialized, MaterializedCache
from snaparc.errors import UsageError
from snaparc.format.limits import Limits
from snaparc.mirror.url import S3Settings


def export(
    store: str | os.PathLike[str],
    base: str | os.PathLike[str],
    *,
    adapter_name: str | None = None,
    adapter_path: str | os.PathLike[str] | None = None,
    processor_dir: str | os.PathLike[str] | None = None,
    processor: object | None = None,
) -> Exported:
    """Write the HF snapshot export of a store's adapter (atomically).

    `base` is a base model registry key or the path of a base model spec
    JSON file; `adapter_name` picks a named adapter, `adapter_path` an
    adapter directory; `processor_dir` (loaded with AutoProcessor) or
    `processor` (an object with `save_pretrained`) fills `processor/`.
    """
    from snaparc.hf.export import export_snapshot, load_base_spec
    from snaparc.hf.export.store import check_adapter_name

    store_path = check_path(store, option="--store")
    if not isinstance(base, str | os.PathLike) or not os.fspath(base):
        raise UsageError("--base is empty: give a base model key or a spec JSON file")
    if adapter_name is not None and adapter_path is not None:
        raise UsageError("--adapter-name and --adapter-path exclude each other")
    if adapter_name is not None:
        check_adapter_name(adapter_name)  # an export error (exit 9), as the store says
    apath = None if adapter_path is None else check_path(adapter_path, option="--adapter-path")
    pdir = None if processor_dir is None else check_path(processor_dir, option="--processor")
    if pdir is not None and processor is not None:
        raise UsageError("give a processor directory or a processor object, not both")
    spec = load_base_spec(os.fspath(base))
    result = export_snapshot(
        store_path,
        spec,
        adapter_name=adapter_name,
        adapter_path=apath,
        processor=processor,
        processor_dir=pdir,
    )
    return Exported(result)


def materialize(
    archive: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    force: bool = False,
    threads: int = 0,
    limits: Limits | None = None,
    base: str | os.PathLike[str] | None = None,
    s3: S3Settings | None = None,
    resume: bool = True,
    allow_http: bool = False,
    progress: ProgressFactory | None = None,
) -> Materialized:
    """Verify an archived snapshot export and publish its tree at `dest`
    (read-only), loadable by `PeftModel` and `AutoProcessor`. From a mirror,
    a killed materialize of the same archive beside `dest` is resumed
    (`resume=False`: start afresh; spec/MIRROR.md, section 12)."""
    from snaparc.hf.materialize import materialize_hf_dir

    r = Reading.check(
        archive, threads=threads, limits=limits, base=base, s3=s3, allow_http=allow_http
    )
    target = check_path(dest, option="DEST")
    r = r.resume_in(Path(os.path.abspath(target)).parent, resume=resume)
    travelling = travelling_bundle(r, hub=False)
    bundle_out = None
    if travelling is not None:
        from snaparc.airgap.oms import bundle_path_for
        from snaparc.publish import check_target

        bundle_out = bundle_path_for(os.path.abspath(target))  # DEST may be "."
        check_target(bundle_out, force=force, kind="file")
    result, transfer = r.publish_with(
        materialize_hf_dir,
        progress,
        target,
        force=force,
        also_precheck=None if travelling is None else travelling.check,
    )
    if travelling is not None and bundle_out is not None:
        publish_bundle(travelling, bundle_out)
    return Materialized(result, bundle_out, transfer)


def materialize_cache(
    archive: str | os.PathLike[str],
    *,
    repo_id: str,
    cache_dir: str | os.PathLike[str] | None = None,
    threads: int = 0,
    limits: Limits | None = None,
    base: str | os.PathLike[str] | None = None,
    s3: S3Settings | None = None,
    resume: bool = True,
    allow_http: bool = False,
    progress: ProgressFactory | None = None,
) -> MaterializedCache:
    """Verify an archived snapshot export and publish it in a hub cache as
    `repo_id` (default cache: HF_HUB_CACHE, else $HF_HOME/hub, else
    ~/.cache/huggingface/hub), for `PeftModel.from_pretrained(base, repo_id)`
    offline. From a mirror, a killed materialize of the same archive into the
    same cache is resumed (`resume=False`: start afresh; spec/MIRROR.md,
    section 12)."""
    from snaparc.hf.materialize import materialize_hf_cache

    r = Reading.check(
        archive, threads=threads, limits=limits, base=base, s3=s3, allow_http=allow_http
    )
    repo_id = check_repo_id(repo_id)
    cache = None if cache_dir is None else check_path(cache_dir, option="--hf-cache")
    travelling = travelling_bundle(r, hub=True)
    if r.source.kind in ("mirror", "oci"):
        r = r.resume_in(_cache_root(cache), resume=resume)
    result, transfer = r.publish_with(
        materialize_hf_cache,
        progress,
        repo_id=repo_id,
        cache_dir=cache,
        also_precheck=None if travelling is None else travelling.check,
    )
    bundle_out = None
    if travelling is not None:
        from snaparc.airgap.oms import BUNDLE_SUFFIX

        # Beside the snapshots, never in snapshots/ (the hub takes every entry
        # there for a revision): <repo>/signatures/<revision>.oms.json.
        signatures = result.repo_dir / HUB_SIGNATURES_DIR
        signatures.mkdir(exist_ok=True)
        bundle_out = signatures / f"{result.revision}{BUNDLE_SUFFIX}"
        publish_bundle(travelling, bundle_out)
    return MaterializedCache(result, bundle_out, transfer)


def _cache_root(cache: Path | None) -> Path:
    """The hub cache's root, made if missing: a mirror read keeps its resume
    file there, beside the repo folders (spec/MIRROR.md, section 12)."""
    from snaparc.hf import constants
    from snaparc.publish import os_error

    root = Path(os.path.abspath(cache if cache is not None else constants.HF_HUB_CACHE))
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise os_error(exc, f"creating the hub cache {root}") from None
    return root
