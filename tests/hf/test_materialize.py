"""`snaparc materialize` without torch: layout rules, atomicity, modes, errors, CLI.

Archives here are packed from exports of fake adapters (hf_fakes.py), so these
run in well under a second each; the real-model round trips live in
test_materialize_models.py.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # tiny_models / hf_fakes, also outside pytest's rootdir handling
    sys.path.insert(0, str(HERE))

from hf_fakes import FakeProcessor, fake_weights, write_fake_adapter  # noqa: E402

from snaparc import api  # noqa: E402
from snaparc.api import pack as pack_directory  # noqa: E402
from snaparc.cli import main  # noqa: E402
from snaparc.errors import (  # noqa: E402
    DestinationError,
    DiskFullError,
    IntegrityError,
    UsageError,
)
from snaparc.format.manifest import FileEntry  # noqa: E402
from snaparc.hf import constants as hf_constants  # noqa: E402
from snaparc.hf.export import Store, export_snapshot, load_base_spec  # noqa: E402
from snaparc.hf.materialize import (  # noqa: E402
    CacheResult,
    materialize_hf_cache,
    materialize_hf_dir,
    plan_repo_layout,
    repo_folder_name,
    revision_for,
    validate_repo_id,
)
from snaparc.publish import AtomicFile, os_error  # noqa: E402

AUDIO = load_base_spec("qwen2-audio-7b-instruct")
REPO = "tiny-org/tiny-adapter"
REPO_DIR = "models--tiny-org--tiny-adapter"


class ClashProcessor(FakeProcessor):
    """Saves a file identical to the adapter's (`shared.json`) and one that differs."""

    def save_pretrained(self, out: str) -> None:
        super().save_pretrained(out)
        Path(out, "shared.json").write_text('{"same": true}', encoding="utf-8")
        Path(out, "adapter_config.json").write_text('{"not": "the adapter"}', encoding="utf-8")


def make_archive(
    root: Path,
    *,
    payload: bytes = b"lora-weights",
    version: int = 1,
    processor: Any = None,
    adapter_readme: bool = True,
) -> Path:
    """A store with one adapter version, exported and packed to `root/vN.dlmsnap`."""
    store = root / "store"
    vdir = write_fake_adapter(store / f"adapter/versions/v{version:04d}", payload=payload)
    (vdir / "shared.json").write_text('{"same": true}', encoding="utf-8")
    if adapter_readme:
        (vdir / "README.md").write_text("# peft model card\n", encoding="utf-8")
    (store / "adapter/current.txt").write_text(f"adapter/versions/v{version:04d}\n")
    result = export_snapshot(Store(store), AUDIO, processor=processor or FakeProcessor())
    out = root / f"v{version}.dlmsnap"
    pack_directory(result.export_dir, out)
    return out


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    return make_archive(tmp_path / "src", payload=os.urandom(200_000))


def tree_state(root: Path) -> dict[str, tuple[int, str]]:
    """Every path under root: (mode, link target or content sha256 or 'dir')."""
    state: dict[str, tuple[int, str]] = {}
    if not root.exists():
        return state
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                what = "-> " + os.readlink(p)
            elif stat.S_ISDIR(st.st_mode):
                what = "dir"
            else:
                what = hashlib.sha256(p.read_bytes()).hexdigest()
            state[str(p.relative_to(root))] = (stat.S_IMODE(st.st_mode), what)
    return state


def corrupt(archive: Path, out: Path) -> Path:
    """Flip one byte in the middle (inside the big random blob's frame)."""
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    out.write_bytes(bytes(data))
    return out


def materialize_cache(archive: Path, cache: Path, repo_id: str = REPO) -> CacheResult:
    with open(archive, "rb") as fh:
        return materialize_hf_cache(fh, repo_id=repo_id, cache_dir=cache)


# --- pure rules --------------------------------------------------------------


@pytest.mark.parametrize("repo_id", ["org/name", "Org_1/my-model.v2", "a/b", "_x/y_"])
def test_valid_repo_ids(repo_id: str) -> None:
    org, name = validate_repo_id(repo_id)
    assert f"{org}/{name}" == repo_id
    assert repo_folder_name(repo_id) == f"models--{org}--{name}"


@pytest.mark.parametrize(
    "repo_id",
    [
        "name",
        "a/b/c",
        "/name",
        "org/",
        "../name",
        "org/..",
        "org/a..b",
        "org/a--b",
        "-org/name",
        "org/name-",
        "org/.name",
        "org/name.git",
        "org/na me",
        "org/näme",
        "org\\name",
        "org/" + "n" * 97,
        "",
    ],
)
def test_bad_repo_ids_are_usage_errors(repo_id: str) -> None:
    with pytest.raises(UsageError):
        validate_repo_id(repo_id)


def test_revision_is_the_archive_id_prefix() -> None:
    aid = hashlib.sha256(b"x").hexdigest()
    assert revision_for(aid) == aid[:40]
    with pytest.raises(ValueError):
        revision_for("abc")


def entry(path: str, blob: str) -> FileEntry:
    return FileEntry(path=path, size=1, executable=False, blob=blob * 64)


def test_layout_rule_adapter_wins_processor_kept_and_identical_merge() -> None:
    layout = plan_repo_layout(
        [
            entry("README.md", "a"),
            entry("adapter/README.md", "b"),
            entry("adapter/adapter_config.json", "c"),
            entry("adapter/shared.json", "d"),
            entry("processor/adapter_config.json", "e"),
            entry("processor/shared.json", "d"),
            entry("processor/tokenizer.json", "f"),
            entry("snapshot_manifest.json", "0"),
        ]
    )
    assert layout.sources == {
        "README.md": "README.md",
        "adapter/README.md": "adapter/README.md",
        "adapter_config.json": "adapter/adapter_config.json",
        "processor/adapter_config.json": "processor/adapter_config.json",
        "shared.json": "adapter/shared.json",
        "snapshot_manifest.json": "snapshot_manifest.json",
        "tokenizer.json": "processor/tokenizer.json",
    }
    assert layout.merged == (("shared.json", "processor/shared.json"),)
    assert [(c.repo_path, c.kept, c.moved, c.moved_to) for c in layout.conflicts] == [
        ("README.md", "README.md", "adapter/README.md", "adapter/README.md"),
        (
            "adapter_config.json",
            "adapter/adapter_config.json",
            "processor/adapter_config.json",
            "processor/adapter_config.json",
        ),
    ]


def test_layout_file_directory_clash_is_a_conflict() -> None:
    layout = plan_repo_layout([entry("adapter/x", "a"), entry("processor/x/y", "b")])
    assert layout.sources == {"x": "adapter/x", "processor/x/y": "processor/x/y"}
    assert layout.conflicts[0].reason == "x is a file"


def test_hub_cache_env_rules(tmp_path: Path) -> None:
    rule = hf_constants.hub_cache_from_env
    home = Path(os.path.expanduser("~"))
    assert rule({}) == home / ".cache/huggingface/hub"
    assert rule({"XDG_CACHE_HOME": "/x"}) == Path("/x/huggingface/hub")
    assert rule({"HF_HOME": "/h", "XDG_CACHE_HOME": "/x"}) == Path("/h/hub")
    assert rule({"HF_HUB_CACHE": "/c", "HF_HOME": "/h"}) == Path("/c")
    assert rule({"HUGGINGFACE_HUB_CACHE": "/legacy", "HF_HOME": "/h"}) == Path("/legacy")
    assert rule({"HF_HOME": "~/hf"}) == home / "hf/hub"


def test_hub_cache_env_is_read_once_at_import(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env["HF_HOME"] = str(tmp_path / "home")
    code = "from snaparc.hf import constants as c; print(c.HF_HUB_CACHE)"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == str(tmp_path / "home/hub")


# --- local dir -----------------------------------------------------------------


def test_dir_tree_is_the_export_read_only(archive: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    with open(archive, "rb") as fh:
        result = materialize_hf_dir(fh, dest)
    assert result.target == dest
    assert result.base_model_hf_id == AUDIO.hf_id
    assert result.base_model_revision == AUDIO.revision
    assert result.snapshot.undeclared == ()
    export = tmp_path / "src/store/exports/hf-audio-snapshot"
    state = tree_state(dest)
    assert {k: v[1] for k, v in state.items()} == {k: v[1] for k, v in tree_state(export).items()}
    for rel, (mode, what) in state.items():
        assert mode == (0o755 if what == "dir" else 0o444), rel
    shutil.rmtree(dest)  # writable dirs: users can delete the tree


def test_dir_refuses_non_empty_dest_and_force_replaces(archive: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "keep.txt").write_text("old")
    with open(archive, "rb") as fh, pytest.raises(DestinationError):
        materialize_hf_dir(fh, dest)
    assert (dest / "keep.txt").read_text() == "old"
    result = api.materialize(archive, dest, force=True).result
    assert not (dest / "keep.txt").exists()
    assert (dest / "adapter/adapter_config.json").is_file()
    assert result.archive_id == result.report.archive_id
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_dir_corrupt_archive_publishes_nothing(archive: Path, tmp_path: Path) -> None:
    bad = corrupt(archive, tmp_path / "bad.dlmsnap")
    with pytest.raises(IntegrityError):
        api.materialize(bad, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.dlmsnap", "src"]


def test_not_a_snapshot_archive_is_refused_before_writing(tmp_path: Path) -> None:
    src = tmp_path / "plain"
    src.mkdir()
    (src / "a.txt").write_text("hello")
    pack_directory(src, tmp_path / "plain.dlmsnap")
    with pytest.raises(UsageError, match="not an HF snapshot"):
        api.materialize(tmp_path / "plain.dlmsnap", tmp_path / "out")
    with pytest.raises(UsageError, match="not an HF snapshot"):
        api.materialize_cache(tmp_path / "plain.dlmsnap", repo_id=REPO, cache_dir=tmp_path / "c")
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "c").exists()


def test_disk_full_before_writing(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # snaparc.archive.unpack.check_free_space asks shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(1, 1, 0))
    with pytest.raises(DiskFullError):
        api.materialize(archive, tmp_path / "out")
    with pytest.raises(DiskFullError):
        api.materialize_cache(archive, repo_id=REPO, cache_dir=tmp_path / "hub")
    assert not (tmp_path / "out").exists()
    assert tree_state(tmp_path / "hub") == {}


# --- hub cache -----------------------------------------------------------------


def test_cache_layout(archive: Path, tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    result = materialize_cache(archive, cache)
    repo = cache / REPO_DIR
    rev = result.revision
    assert rev == result.archive_id[:40]
    assert result.repo_dir == repo and result.snapshot_dir == repo / "snapshots" / rev
    assert (repo / "refs/main").read_text() == rev
    snap = result.snapshot_dir
    manifest = result.report.manifest
    blobs = sorted(p.name for p in (repo / "blobs").iterdir())
    assert blobs == sorted(b.sha256 for b in manifest.blobs)
    for blob in repo.joinpath("blobs").iterdir():
        assert stat.S_IMODE(blob.lstat().st_mode) == 0o444
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
    by_path = {f.path: f.blob for f in manifest.files}
    assert result.files == {
        "README.md": "README.md",
        "adapter/README.md": "adapter/README.md",
        "adapter_config.json": "adapter/adapter_config.json",
        "adapter_model.safetensors": "adapter/adapter_model.safetensors",
        "extra/notes.txt": "adapter/extra/notes.txt",
        "processor_config.json": "processor/processor_config.json",
        "shared.json": "adapter/shared.json",
        "snapshot_manifest.json": "snapshot_manifest.json",
        "tokenizer.json": "processor/tokenizer.json",
    }
    for repo_path, export_path in result.files.items():
        link = snap / repo_path
        assert link.is_symlink()
        depth = repo_path.count("/") + 2
        assert os.readlink(link) == "../" * depth + "blobs/" + by_path[export_path]
        assert link.resolve() == (repo / "blobs" / by_path[export_path]).resolve()
    assert (result.blobs_written, result.blobs_reused) == (len(manifest.blobs), 0)
    assert [(c.repo_path, c.moved_to) for c in result.conflicts] == [
        ("README.md", "adapter/README.md")
    ]
    leftovers = [p for p in repo.rglob("*") if ".snaparc-" in p.name]
    assert leftovers == []


def test_scan_cache_dir_lists_repo_and_refs(archive: Path, tmp_path: Path) -> None:
    huggingface_hub = pytest.importorskip("huggingface_hub")
    result = materialize_cache(archive, tmp_path / "hub")
    info = huggingface_hub.scan_cache_dir(tmp_path / "hub")
    assert info.warnings == []
    (repo,) = info.repos
    assert (repo.repo_id, repo.repo_type) == (REPO, "model")
    (revision,) = repo.revisions
    assert revision.commit_hash == result.revision
    assert revision.refs == frozenset({"main"})
    assert revision.nb_files == len(result.files)


def test_processor_conflict_reported_and_kept(tmp_path: Path) -> None:
    archive = make_archive(tmp_path / "src", processor=ClashProcessor())
    result = materialize_cache(archive, tmp_path / "hub")
    snap = result.snapshot_dir
    assert ("shared.json", "processor/shared.json") in result.merged
    conflict = next(c for c in result.conflicts if c.repo_path == "adapter_config.json")
    assert (conflict.kept, conflict.moved_to) == (
        "adapter/adapter_config.json",
        "processor/adapter_config.json",
    )
    assert json.loads((snap / "adapter_config.json").read_text())["peft_type"] == "LORA"
    assert json.loads((snap / "processor/adapter_config.json").read_text()) == {
        "not": "the adapter"
    }


def test_second_version_shares_blobs_and_moves_refs(tmp_path: Path) -> None:
    v1 = make_archive(tmp_path / "one", payload=b"weights-one", version=1)
    v2 = make_archive(tmp_path / "two", payload=b"weights-two", version=2)
    cache = tmp_path / "hub"
    first = materialize_cache(v1, cache)
    blobs = cache / REPO_DIR / "blobs"
    inodes = {p.name: p.stat().st_ino for p in blobs.iterdir()}
    second = materialize_cache(v2, cache)
    assert second.revision != first.revision
    assert (cache / REPO_DIR / "refs/main").read_text() == second.revision
    assert second.blobs_reused > 0 and second.blobs_written > 0
    m1 = {b.sha256 for b in first.report.manifest.blobs}
    m2 = {b.sha256 for b in second.report.manifest.blobs}
    assert sorted(p.name for p in blobs.iterdir()) == sorted(m1 | m2)
    assert second.blobs_reused == len(m1 & m2)
    for name in m1 & m2:
        assert (blobs / name).stat().st_ino == inodes[name]
        assert (blobs / name).stat().st_nlink == 1
    shared = first.snapshot_dir / "processor_config.json"
    assert shared.resolve() == (second.snapshot_dir / "processor_config.json").resolve()
    # The old snapshot is intact and still resolves.
    for repo_path in first.files:
        assert (first.snapshot_dir / repo_path).read_bytes()
    weights = "adapter_model.safetensors"
    assert (first.snapshot_dir / weights).read_bytes() == fake_weights(b"weights-one")
    assert (second.snapshot_dir / weights).read_bytes() == fake_weights(b"weights-two")


def test_same_archive_twice_is_idempotent(archive: Path, tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    first = materialize_cache(archive, cache)
    before = tree_state(cache)
    again = materialize_cache(archive, cache)
    assert (again.blobs_written, again.blobs_reused) == (0, len(first.report.manifest.blobs))
    assert tree_state(cache) == before


def test_damaged_cache_blob_is_replaced_not_trusted(archive: Path, tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    first = materialize_cache(archive, cache)
    target = first.snapshot_dir / "adapter_model.safetensors"
    blob = target.resolve()
    size = blob.stat().st_size
    blob.chmod(0o644)
    blob.write_bytes(b"\0" * size)  # same size, wrong content
    again = materialize_cache(archive, cache)
    assert again.blobs_written == 1
    assert hashlib.sha256(target.read_bytes()).hexdigest() == blob.name
    assert stat.S_IMODE(blob.stat().st_mode) == 0o444


def test_corrupt_archive_leaves_cache_as_it_was(archive: Path, tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    other = make_archive(tmp_path / "other", payload=b"previous")
    materialize_cache(other, cache)
    before = tree_state(cache)
    bad = corrupt(archive, tmp_path / "bad.dlmsnap")
    with pytest.raises(IntegrityError):
        materialize_cache(bad, cache)
    assert tree_state(cache) == before


def test_corrupt_archive_into_fresh_cache_creates_nothing(archive: Path, tmp_path: Path) -> None:
    bad = corrupt(archive, tmp_path / "bad.dlmsnap")
    with pytest.raises(IntegrityError):
        materialize_cache(bad, tmp_path / "deep/hub")
    assert not (tmp_path / "deep").exists()


def test_failure_writing_refs_rolls_back(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import snaparc.hf.materialize.to_cache as mat

    cache = tmp_path / "hub"
    materialize_cache(make_archive(tmp_path / "other", payload=b"previous"), cache)
    before = tree_state(cache)

    class FailingAtomicFile(AtomicFile):
        def commit(self) -> None:
            self.abort()
            raise os_error(OSError(errno.EIO, "I/O error"), "writing refs/main")

    monkeypatch.setattr(mat, "AtomicFile", FailingAtomicFile)
    with pytest.raises(OSError):
        materialize_cache(archive, cache)
    assert tree_state(cache) == before


def test_enospc_while_writing_blob_is_disk_full(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import snaparc.hf.materialize.to_cache as mat

    cache = tmp_path / "hub"
    materialize_cache(make_archive(tmp_path / "other", payload=b"previous"), cache)
    before = tree_state(cache)
    real_write = mat._BlobFile.write

    def write(self: Any, data: memoryview) -> None:
        real_write(self, data[: len(data) // 2])
        if len(data) > 100_000:  # the big weights blob, after other blobs were written
            raise os_error(OSError(errno.ENOSPC, "No space left"), f"writing {self.path}")
        real_write(self, data[len(data) // 2 :])

    monkeypatch.setattr(mat._BlobFile, "write", write)
    with pytest.raises(DiskFullError):
        materialize_cache(archive, cache)
    assert tree_state(cache) == before


def test_symlinked_repo_dir_refused(archive: Path, tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    cache.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (cache / REPO_DIR).symlink_to(tmp_path / "elsewhere")
    with pytest.raises(DestinationError):
        materialize_cache(archive, cache)
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_default_cache_dir_comes_from_constants(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", tmp_path / "default-hub")
    result = api.materialize_cache(archive, repo_id=REPO).result
    assert result.repo_dir == tmp_path / "default-hub" / REPO_DIR


# --- CLI -----------------------------------------------------------------------


def test_cli_dir(archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "out"
    assert main(["materialize", str(archive), str(dest)]) == 0
    out = capsys.readouterr().out
    ids = [line.split()[-1] for line in out.splitlines() if line.startswith("archive id ")]
    assert len(ids) == 1 and len(ids[0]) == 64
    assert f"base model {AUDIO.hf_id} @ {AUDIO.revision}" in out
    assert "checked: sha256 and blake3" in out and "snapshot_manifest.json" in out
    assert (dest / "processor/tokenizer.json").is_file()


def test_cli_dir_json_and_stdin(
    archive: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with open(archive, "rb") as fh:
        monkeypatch.setattr(sys, "stdin", fh)
        assert main(["materialize", "-", str(tmp_path / "out"), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["base_model_hf_id"] == AUDIO.hf_id
    assert payload["base_model_revision"] == AUDIO.revision
    assert len(payload["archive_id"]) == 64 and payload["checked"]


def test_cli_cache(archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache = tmp_path / "hub"
    argv = ["materialize", str(archive), "--hf-cache", str(cache), "--repo-id", REPO]
    assert main(argv) == 0
    out = capsys.readouterr().out
    rev = (cache / REPO_DIR / "refs/main").read_text()
    assert f"revision {rev}" in out
    assert f"base model {AUDIO.hf_id} @ {AUDIO.revision}" in out
    assert "conflict: README.md" in out and "adapter/README.md" in out
    assert main([*argv, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["revision"] == rev and payload["blobs_written"] == 0
    assert payload["conflicts"][0]["moved_to"] == "adapter/README.md"


def test_cli_cache_default_dir(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", tmp_path / "default-hub")
    assert main(["materialize", str(archive), "--hf-cache", "--repo-id", REPO, "-q"]) == 0
    assert (tmp_path / "default-hub" / REPO_DIR / "refs/main").is_file()


@pytest.mark.parametrize(
    "argv",
    [
        ["--hf-cache", "{cache}", "--repo-id", "bad"],
        ["--hf-cache", "{cache}", "--repo-id", "org/../x"],
        ["--hf-cache", "{cache}", "--repo-id", "org/a--b"],
        ["--hf-cache", "{cache}"],
        ["{dest}", "--hf-cache", "{cache}", "--repo-id", REPO],
        ["{dest}", "--repo-id", REPO],
        [],
    ],
)
def test_cli_usage_errors_exit_2(archive: Path, tmp_path: Path, argv: list[str]) -> None:
    cache, dest = tmp_path / "hub", tmp_path / "out"
    args = [a.format(cache=cache, dest=dest) for a in argv]
    assert main(["materialize", str(archive), *args]) == 2
    assert not cache.exists() and not dest.exists()


def test_cli_non_empty_dest_exit_5(archive: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "x").write_text("x")
    assert main(["materialize", str(archive), str(dest)]) == 5
    assert main(["materialize", str(archive), str(dest), "--force", "-q"]) == 0


def test_cli_corrupt_exit_1_cache_unchanged(archive: Path, tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    flags = ["--hf-cache", str(cache), "--repo-id", REPO, "-q"]
    previous = make_archive(tmp_path / "o", payload=b"p")
    assert main(["materialize", str(previous), *flags]) == 0
    before = tree_state(cache)
    bad = corrupt(archive, tmp_path / "bad.dlmsnap")
    assert main(["materialize", str(bad), *flags]) == 1
    assert tree_state(cache) == before
    assert main(["materialize", str(bad), str(tmp_path / "out")]) == 1
    assert not (tmp_path / "out").exists()


def test_cli_missing_archive_exit_2(tmp_path: Path) -> None:
    assert main(["materialize", str(tmp_path / "nope.dlmsnap"), str(tmp_path / "out")]) == 2


def test_command_never_imports_torch(archive: Path, tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from snaparc.cli import main\n"
        f"assert main(['materialize', {str(archive)!r}, {str(tmp_path / 'out')!r}, '-q']) == 0\n"
        f"assert main(['materialize', {str(archive)!r}, '--hf-cache', {str(tmp_path / 'hub')!r},"
        f" '--repo-id', {REPO!r}, '-q']) == 0\n"
        "heavy = [m for m in ('torch', 'transformers', 'peft', 'huggingface_hub') "
        "if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
