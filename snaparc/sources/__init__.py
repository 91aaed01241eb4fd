"""Sources: where the bytes a command reads come from.

- `snaparc.sources.archive`: every archive a command reads (a path, `-` for
  stdin, split volumes, a mirror target `URL:REF` / `URL@ID`) is classified
  and opened here, once, with the identity the user asked for;
- `snaparc.sources.regular`: every small side file (keys, signatures,
  indexes, records, password files, specs, pointers) is read through it,
  which refuses anything but a regular file (a FIFO never blocks).

The two sit at different heights: `regular` uses only `snaparc.errors` and
serves every layer; `archive` sits above the mirror and air-gap packages
whose sources it opens. This face imports neither.
"""

from __future__ import annotations
