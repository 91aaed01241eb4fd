"""`snaparc export`: write an HF snapshot export of a store's adapter.

Imports only argparse and pathlib at module level; `snaparc.hf` (and, with
`--processor`, transformers) is imported when the command runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    """Add the `export` subcommand to the `snaparc` subparsers `sub`."""
    parser = sub.add_parser(
        "export",
        help="write an HF snapshot export (adapter + processor + manifest) of a store",
        description="Export a trained adapter as exports/hf-audio-snapshot/ or "
        "exports/hf-snapshot/ under the store, replacing any previous export atomically.",
    )
    parser.add_argument("--store", required=True, type=Path, metavar="DIR", help="store root")
    parser.add_argument(
        "--base",
        required=True,
        metavar="KEY_OR_JSON",
        help="base model registry key, or the path of a base model spec JSON file",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--adapter-name", metavar="NAME", help="export a named adapter")
    which.add_argument(
        "--adapter-path", type=Path, metavar="DIR", help="export this adapter dir instead"
    )
    parser.add_argument(
        "--processor",
        type=Path,
        metavar="DIR",
        help="local processor dir to load with AutoProcessor and save into the export",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=func)


def func(args: argparse.Namespace) -> int:
    """Run the export; print the export dir and artifact count (or JSON). Returns 0."""
    import json

    from snaparc.hf import export_snapshot, load_base_spec

    spec = load_base_spec(args.base)
    result = export_snapshot(
        args.store,
        spec,
        adapter_name=args.adapter_name,
        adapter_path=args.adapter_path,
        processor_dir=args.processor,
    )
    if args.json:
        payload = {
            "export_dir": str(result.export_dir),
            "manifest": str(result.manifest_path),
            "modality": result.manifest.modality,
            "adapter_version": result.manifest.adapter_version,
            "adapter_name": result.manifest.adapter_name,
            "artifacts": len(result.artifacts),
        }
        print(json.dumps(payload, sort_keys=True))
    else:
        print(f"exported {result.export_dir} ({len(result.artifacts)} artifacts)")
    return 0
