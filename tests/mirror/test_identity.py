"""A pinned archive id is enforced by every reading command, not only `pull`.

The forged mirror below is internally consistent: `archives/<A>.json` is a
valid record (its own file size and sha256 match the bytes it rebuilds), but
what it rebuilds is another valid archive, B. Every command that reads
`URL@A`, or `URL:REF` where the ref names A, must refuse it (exit 1) and
publish nothing.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from snaparc.cli import main
from snaparc.mirror.connect import open_store
from snaparc.mirror.layout import decode_record, encode_record, record_key
from snaparc.mirror.store import Store
from snaparc.mirror.url import parse_url


@dataclasses.dataclass
class Forged:
    url: str
    pinned: str  # the id the user asks for (archive A)
    served: str  # the id of what the record rebuilds (archive B)
    archive_a: Path


def _forge(store: Store, pinned: str, served: str) -> None:
    """Make `archives/<pinned>.json` rebuild archive `served`."""
    rec = decode_record(store.get(record_key(served)), archive_id=served)
    forged = dataclasses.replace(rec, archive_id=pinned)
    for part in rec.manifest.parts:  # the manifest parts live under the archive id
        store.put(
            forged.manifest.key(pinned, part),
            store.get(rec.manifest.key(served, part)),
            mode="overwrite",
        )
    store.put(record_key(pinned), encode_record(forged), mode="overwrite")
    decode_record(store.get(record_key(pinned)), archive_id=pinned)  # a record we read


@pytest.fixture
def forged(mirror_url: str, archive_v1: Path, hf_snapshot_archive: Path) -> Forged:
    assert main(["push", str(archive_v1), mirror_url, "--ref", "a", "-q", "--json"]) == 0
    assert main(["push", str(hf_snapshot_archive), mirror_url, "--ref", "b", "-q"]) == 0
    store = open_store(parse_url(mirror_url))
    pinned = store.get("refs/a").decode().strip()
    served = store.get("refs/b").decode().strip()
    assert pinned != served
    _forge(store, pinned, served)
    return Forged(mirror_url, pinned, served, archive_v1)


def _targets(f: Forged) -> list[str]:
    return [f"{f.url}@{f.pinned}", f"{f.url}:a"]


def _refused(code: int, capsys: pytest.CaptureFixture[str], f: Forged) -> str:
    out, err = capsys.readouterr()
    assert code == 1, err
    assert f.pinned in err and f.served in err, err
    assert "Traceback" not in err
    return out


def test_pull_refuses_a_record_that_rebuilds_another_archive(
    forged: Forged, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    for target in _targets(forged):
        out = tmp_path / "pulled.dlmsnap"
        _refused(main(["pull", target, "-o", str(out), "-q"]), capsys, forged)
        assert list(tmp_path.glob("*pulled*")) == []


@pytest.mark.parametrize("command", ["verify", "ls"])
def test_reading_commands_refuse_a_record_that_rebuilds_another_archive(
    forged: Forged, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    for target in _targets(forged):
        out = _refused(main([command, target]), capsys, forged)
        assert forged.served not in out


def test_cat_refuses_a_record_that_rebuilds_another_archive(
    forged: Forged, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    for target in _targets(forged):
        out = _refused(main(["cat", target, "snapshot_manifest.json"]), capsys, forged)
        assert out == ""


def test_unpack_and_materialize_refuse_a_record_that_rebuilds_another_archive(
    forged: Forged, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    for i, target in enumerate(_targets(forged)):
        dest = tmp_path / f"unpacked{i}"
        _refused(main(["unpack", target, "-C", str(dest), "-q"]), capsys, forged)
        assert not dest.exists()
        dest = tmp_path / f"materialized{i}"
        _refused(main(["materialize", target, str(dest), "-q"]), capsys, forged)
        assert not dest.exists()
        cache = tmp_path / f"hub{i}"
        code = main(["materialize", target, "--hf-cache", str(cache), "--repo-id", "o/n", "-q"])
        _refused(code, capsys, forged)
        assert not cache.exists() or list(cache.rglob("*")) == []
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_base_from_a_forged_record_is_refused(
    forged: Forged, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--base URL@A` must be A: a thin archive over A takes none of B's bytes."""
    src = tmp_path / "v2"
    for path in ("dir0", "dir1"):
        (src / path).mkdir(parents=True)
    assert main(["unpack", str(forged.archive_a), "-C", str(src), "--force", "-q"]) == 0
    (src / "adapter_config.json").write_bytes(b'{"r": 16}\n')
    delta = tmp_path / "delta.dlmsnap"
    assert main(["pack", str(src), "-o", str(delta), "--base", str(forged.archive_a), "-q"]) == 0
    capsys.readouterr()
    for i, target in enumerate(_targets(forged)):
        dest = tmp_path / f"out{i}"
        _refused(
            main(["unpack", str(delta), "-C", str(dest), "--base", target, "-q"]), capsys, forged
        )
        assert not dest.exists()
