"""The lifecycle benchmark's synthetic mirror is one `mirror check` finds healthy,
and its operations report requests (structure only; no timing assertions)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.mirror_lifecycle import build_mirror, run_op


def test_the_synthetic_mirror_checks_and_collects(tmp_path: Path) -> None:
    build_mirror(tmp_path / "m", archives=20, objects=200)
    ls = run_op(tmp_path / "m", "ls")
    assert ls["archives"] == 20 and ls["requests"]["get"] == 20 + 2  # records + refs
    check = run_op(tmp_path / "m", "check")
    assert check["ok"] and check["objects"] == 200 + 2 and "head" not in check["requests"]
    gc = run_op(tmp_path / "m", "gc")
    assert gc["archives"] == 18 and gc["deleted"] >= 2  # two manifests at least
