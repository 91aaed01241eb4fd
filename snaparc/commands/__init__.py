"""Subcommands; each module has `register(sub)` and imports nothing heavy at top level."""
