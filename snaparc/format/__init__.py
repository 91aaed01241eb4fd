"""The `.dlmsnap` format v1: pure functions over bytes (see spec/FORMAT.md)."""
