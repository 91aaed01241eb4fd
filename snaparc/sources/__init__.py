"""Sources: the one way into an archive.

`snaparc.sources.archive` classifies every archive a command reads (a path,
`-` for stdin, split volumes, a mirror target `URL:REF` / `URL@ID`) and opens
it once, with the identity the user asked for. It sits above the mirror and
air-gap packages whose sources it opens. (Small side files — keys,
signatures, indexes, specs — are read through `snaparc.sidefiles`, at the
bottom of the house, which every layer may use.) This face imports nothing.
"""
