"""The command-line process holds glibc's mmap threshold (snaparc.allocator)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from snaparc import allocator


def test_the_threshold_is_set_on_glibc_linux() -> None:
    if not sys.platform.startswith("linux") or os.environ.get("MALLOC_MMAP_THRESHOLD_"):
        pytest.fail("this suite runs on glibc Linux without MALLOC_MMAP_THRESHOLD_")
    assert allocator.bound_allocator() is True
    assert allocator.bound_allocator() is True  # once is enough; again is harmless


def test_the_cli_sets_it_and_the_users_setting_wins() -> None:
    probe = (
        "import snaparc.allocator as a, snaparc.cli as c; "
        "c.main(['ls', '/nonexistent.dlmsnap']); print(a._done)"
    )
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_MMAP_THRESHOLD_"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "True", out.stderr
    env["MALLOC_MMAP_THRESHOLD_"] = "4194304"
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr
