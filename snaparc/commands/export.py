"""`snaparc export`: write an HF snapshot export of a store's adapter.

Imports only argparse at module level; `snaparc.hf` (and, with
`--processor`, transformers) is imported when the command runs.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    """Add the `export` subcommand to the `snaparc` subparsers `sub`."""
    parser = sub.add_parser(
        "export",
        help="write an HF snapshot export (adapter + processor + manifest) of a store",
        description="Export a trained adapter as exports/hf-audio-snapshot/ or "
        "exports/hf-snapshot/ under the store, replacing any previous export atomically.",
    )
    parser.add_argument("--store", required=True, metavar="DIR", help="store root")
    parser.add_argument(
        "--base",
        required=True,
        metavar="KEY_OR_JSON",
        help="base model registry key, or the path of a base model spec JSON file",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--adapter-name", metavar="NAME", help="export a named adapter")
    which.add_argument("--adapter-path", metavar="DIR", help="export this adapter dir instead")
    parser.add_argument(
        "--processor",
        metavar="DIR",
        help="local processor dir to load with AutoProcessor and save into the export",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=func)


def func(args: argparse.Namespace) -> int:
    """Run the export; print the export dir and artifact count (or JSON). Returns 0."""
    import json

    from snaparc.api import export

    done = export(
        args.store,
        args.base,
        adapter_name=args.adapter_name,
        adapter_path=args.adapter_path,
        processor_dir=args.processor,
    )
    if args.json:
        print(json.dumps(done.to_json(), sort_keys=True))
    else:
        print(f"exported {done.export_dir} ({len(done.result.artifacts)} artifacts)")
    return 0
