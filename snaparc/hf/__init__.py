"""Hugging Face snapshot exports, in both directions.

- `snaparc.hf.export`: a training store's adapter -> an HF snapshot export
  dir (base model specs, store layout, the export itself, and the tree checks
  `pack` runs on an export dir);
- `snaparc.hf.materialize`: an archived export -> a loadable directory or a
  hub cache repo;
- `snaparc.hf.manifest`: the snapshot manifest model both directions share;
  `snaparc.hf.constants`: the hub cache location, read once.

Import from the subpackages (`from snaparc.hf.export import export_snapshot`);
this face imports nothing.
Importing it never imports torch, transformers or peft; only
`export_snapshot(..., processor_dir=...)` imports transformers, lazily.
"""
