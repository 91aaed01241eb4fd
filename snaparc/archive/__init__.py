"""The `.dlmsnap` archive itself: writing one from a tree, reading one back.

- writing: `source_tree` (scan a directory), `hashing` (both digests, in
  parallel), `pack` (plan, compress and write the frames);
- reading: `frames` (the checks every frame and blob gets, streamed or
  random access), `reader` (the one verified streaming reader), `index`
  (random access through the seek table), `listing`, `catfile`, `unpack`;
- `sink` (the contract between the reader and what consumes blobs),
  `input` (an opened archive and the identity the user asked for),
  `threads` (the worker-count default and its check).

Nothing here parses command lines, prints, or knows about mirrors, HF or the
air gap; those layers hand this one an opened `ArchiveInput`.
"""
