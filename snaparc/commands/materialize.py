"""`snaparc materialize`: an archived HF snapshot export as a dir or a hub cache repo.

    snaparc materialize ARCHIVE DEST [--force]
    snaparc materialize ARCHIVE --hf-cache [DIR] --repo-id ORG/NAME

Imports only argparse at module level; the API (`snaparc.api.materialize`)
is imported when the command runs (it never imports torch).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from snaparc.commands._common import (
    Meter,
    add_allow_http,
    add_limits,
    add_no_resume,
    add_progress,
    add_threads,
    limits_from,
    print_json,
    print_transfer,
)

if TYPE_CHECKING:
    from snaparc.api import Materialized, MaterializedCache


class _DefaultCache(str):
    """`--hf-cache` given without DIR: the hub's default cache (not an empty path)."""


_DEFAULT_CACHE = _DefaultCache()


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "materialize",
        help="verify an archived HF snapshot export and lay it out loadable "
        "(a directory, or a Hugging Face hub cache repo)",
        description="Verify every byte while writing and publish complete or not at all. "
        "Without --hf-cache: DEST becomes the snapshot export tree (adapter/, processor/, "
        "snapshot_manifest.json, README.md), read-only. With --hf-cache: the archive becomes "
        "repo ORG/NAME in the hub cache (blobs/, snapshots/<revision>/, refs/main), with the "
        "adapter files at the repo root; the revision is the first 40 hex characters of the "
        "archive id. Load offline with PeftModel.from_pretrained(base, 'ORG/NAME').",
    )
    p.add_argument(
        "archive", metavar="ARCHIVE", help="archive path, - for stdin, or a mirror URL:REF"
    )
    p.add_argument("dest", metavar="DEST", nargs="?", help="target directory")
    p.add_argument("--force", action="store_true", help="replace a non-empty DEST atomically")
    p.add_argument(
        "--hf-cache",
        nargs="?",
        const=_DEFAULT_CACHE,
        default=None,
        metavar="DIR",
        help="write into a hub cache (default DIR: HF_HUB_CACHE, else $HF_HOME/hub, "
        "else ~/.cache/huggingface/hub)",
    )
    p.add_argument("--repo-id", metavar="ORG/NAME", help="repo id in the hub cache")
    p.add_argument(
        "--base",
        metavar="OLD",
        help="base archive of a thin archive (a file, split volumes or a mirror target); "
        "with --hf-cache it is needed only for blobs the cache repo does not hold yet",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_no_resume(p, "this materialize (a mirror or oci:// ARCHIVE)")
    add_threads(p)
    add_progress(p)
    add_limits(p)
    add_allow_http(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from snaparc.errors import UsageError

    if args.hf_cache is None:
        if args.dest is None:
            raise UsageError("materialize: give DEST, or --hf-cache [DIR] --repo-id ORG/NAME")
        if args.repo_id is not None:
            raise UsageError("materialize: --repo-id needs --hf-cache")
        return _run_dir(args)
    if args.dest is not None:
        raise UsageError("materialize: DEST and --hf-cache exclude each other")
    if args.force:
        raise UsageError("materialize: --force is for DEST; the hub cache is updated atomically")
    if args.repo_id is None:
        raise UsageError("materialize: --hf-cache needs --repo-id ORG/NAME")
    return _run_cache(args)


def _run_dir(args: argparse.Namespace) -> int:
    from snaparc.api import materialize

    with Meter(args, "materialize") as meter:
        done = materialize(
            args.archive,
            args.dest,
            force=args.force,
            threads=args.threads,
            limits=limits_from(args),
            allow_http=args.allow_http,
            base=args.base,
            resume=not args.no_resume,
            progress=meter,
        )
    result = done.result
    if args.json:
        print_json(done.to_json())
    elif not args.quiet:
        files = result.report.manifest.files
        print(f"materialized {len(files)} files into {result.target} (read-only)")
        _print_common(done)
        print(f"load: PeftModel.from_pretrained(base, {str(result.target / 'adapter')!r})")
        if done.oms_signature is not None:
            print(
                f"OMS signature: {done.oms_signature} (check: model_signing verify key "
                f"{result.target} --signature {done.oms_signature} --public_key PUB)"
            )
    return 0


def _run_cache(args: argparse.Namespace) -> int:
    from snaparc.api import materialize_cache

    with Meter(args, "materialize") as meter:
        done = materialize_cache(
            args.archive,
            repo_id=args.repo_id,
            cache_dir=None if args.hf_cache is _DEFAULT_CACHE else args.hf_cache,
            threads=args.threads,
            limits=limits_from(args),
            allow_http=args.allow_http,
            base=args.base,
            resume=not args.no_resume,
            progress=meter,
        )
    result = done.result
    if args.json:
        print_json(done.to_json())
    elif not args.quiet:
        print(
            f"materialized {result.repo_id} at revision {result.revision} in {result.cache_dir} "
            f"({result.blobs_written} blobs written, {result.blobs_reused} reused); "
            "refs/main moved"
        )
        _print_common(done)
        for conflict in result.conflicts:
            print(f"conflict: {conflict.describe()}")
        print(f"load: PeftModel.from_pretrained(base, {result.repo_id!r})")
    return 0


def _print_common(done: Materialized | MaterializedCache) -> None:
    snap = done.result.snapshot
    print(f"archive id {done.archive_id}")
    print_transfer(done)
    print(f"base model {snap.base_model_hf_id} @ {snap.base_model_revision}")
    for check in snap.checks:
        print(f"checked: {check}")
    if snap.undeclared:
        print(f"note: {len(snap.undeclared)} files not declared in snapshot_manifest.json")
