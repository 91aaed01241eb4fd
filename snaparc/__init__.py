"""snaparc: content-addressed `.dlmsnap` archives for HF adapter snapshot exports.

Layering (each layer only uses the ones above it):

- `snaparc.format`: the pure format: tar headers, zstd frame structure, the
  seek table, the manifest and its canonical bytes, path rules, the layout
  that says which frame holds which bytes. Bytes in, bytes out; no threads,
  no files, no CLI.
- operations: `pack`, `reader` (the one verified streaming reader), `verify`,
  `unpack`, `listing`, `catfile`, `publish` (atomic publishing), and the HF
  (`snaparc.hf`), mirror (`snaparc.mirror`) and air-gap (`snaparc.airgap`)
  packages built on them.
- `snaparc.cli`: the only place that prints or exits.

Importing `snaparc` is cheap: torch, transformers, peft and obstore are only
imported by the functions that need them.
"""

__version__ = "0.1.0"
