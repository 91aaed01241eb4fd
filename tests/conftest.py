"""Fixtures shared by the top-level tests; helpers live in snaparc_testlib."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from snaparc_testlib import sample_files, write_tree

from snaparc.cli import main


@pytest.fixture
def sample_tree(tmp_path: Path) -> Path:
    return write_tree(
        tmp_path / "src", sample_files(), executable={"scripts/run.sh"}, empty_dirs=("logs/empty",)
    )


@pytest.fixture
def packed(sample_tree: Path, tmp_path: Path) -> Path:
    out = tmp_path / "a.dlmsnap"
    assert main(["pack", str(sample_tree), "-o", str(out), "--quiet"]) == 0
    return out


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """In CI (CI=true) a test skipped for a missing stock tool is a failure:
    `make test` installs the tools as root, so a missing one is a setup bug."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped and call.excinfo is not None:
        reason = str(call.excinfo.value)
        if "not installed" in reason or "is missing" in reason:
            report.outcome = "failed"
            report.longrepr = f"missing tool in CI: {reason}"
