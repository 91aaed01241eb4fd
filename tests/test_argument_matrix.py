"""Every option that takes a value, with every class of bad value: exit 2, before any work.

The matrix runs each command of `snaparc --help` (pack, unpack, verify, ls,
cat, export, materialize in both forms, push and pull at the top level and
under `mirror`, mirror ls, rm, gc and check, keygen, sign, sums) with one argument replaced by
a bad value: negative, zero where zero means nothing, not a number,
fractional, empty, a malformed ref, archive id, repo id or mirror target.
Each case must

- exit 2 (a usage error), with no traceback and no "internal error";
- name the option (or the positional's metavar) in its message;
- leave the world byte for byte as it was: an archive, a split set, an
  unpacked tree, a directory mirror, a hub cache, an HF store and a key pair.
  Each command line points its outputs into the world (with --force where
  there is one), and `test_the_good_command_...` shows that without the bad
  value every writing command does change it: "untouched" is a real check.

Every command runs in-process (`snaparc.cli.main`); one case runs in a real
process to show no traceback reaches a terminal. The API-level cases at the
end check that `snaparc.api` raises `UsageError` for the same classes.
"""

from __future__ import annotations

import argparse
import functools
import io
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from snaparc_testlib import run_snaparc, tree_state, write_tree

import snaparc.api as api
import snaparc.cli
from snaparc.cli import build_parser, main
from snaparc.errors import UsageError

HF_TESTS = Path(__file__).resolve().parent / "hf"

# --- the world: everything a bad argument must leave alone ---------------------------


def _files(tag: bytes) -> dict[str, bytes]:
    return {
        "adapter/adapter_config.json": b'{"r": 8}\n',
        "adapter/adapter_model.safetensors": tag * 4096,
        "processor/tokenizer.json": b"{}\n" + tag,
        "empty.txt": b"",
    }


def _build_world(root: Path) -> None:
    """An archive, a split set (of another tree), the unpacked first archive, a
    directory mirror holding it as ref `r`, an HF snapshot archive, a hub cache
    holding it as `org/adapter`, the HF store it came from (export removed, so
    that an export would show), and a signed archive's key pair."""
    if str(HF_TESTS) not in sys.path:
        sys.path.insert(0, str(HF_TESTS))
    import hf_fakes

    from snaparc.hf.export import Store, export_snapshot, load_base_spec

    write_tree(root / "src", _files(b"one"))
    write_tree(root / "src2", _files(b"two"))
    api.pack(root / "src", root / "a.dlmsnap")
    api.pack(root / "src2", root / "split.dlmsnap", split="1M")
    api.unpack(root / "a.dlmsnap", root / "unpacked")
    api.push(root / "a.dlmsnap", str(root / "mirror"), ref="r")

    store = root / "store"
    hf_fakes.write_fake_adapter(store / "adapter/versions/v0001", payload=b"lora" * 1000)
    (store / "adapter/current.txt").write_text("adapter/versions/v0001\n")
    spec = load_base_spec("qwen2-audio-7b-instruct")
    exported = export_snapshot(Store(store), spec, processor=hf_fakes.FakeProcessor())
    api.pack(exported.export_dir, root / "hf.dlmsnap")
    shutil.rmtree(store / "exports")
    api.materialize_cache(root / "hf.dlmsnap", repo_id="org/adapter", cache_dir=root / "hub")

    (root / "keys").mkdir()
    api.keygen(root / "keys/k.pub", root / "keys/k.key")
    api.sign(root / "a.dlmsnap", root / "keys/k.key", trusted_comment="world")
    (root / "cwd").mkdir()


class World:
    """Built once per module; built again, in a new directory, only after a
    case changed it (so one failure does not fail every later case)."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        self.factory = factory
        self.root = Path()
        self.state: dict[str, tuple[int, bytes | None]] = {}
        self.dirty = True
        self.checked = False

    def fresh(self) -> Path:
        self.checked = False
        if self.dirty:
            self.root = self.factory.mktemp("world")
            _build_world(self.root)
            self.state = tree_state(self.root)
            self.dirty = False
        return self.root

    def assert_untouched(self) -> None:
        now = tree_state(self.root)
        self.checked = True
        if now != self.state:
            self.dirty = True
            changed = sorted(set(now) ^ set(self.state)) or sorted(
                k for k in now if now[k] != self.state[k]
            )
            pytest.fail(f"the world changed: {changed[:10]}")


@pytest.fixture(scope="module")
def world_holder(tmp_path_factory: pytest.TempPathFactory) -> World:
    return World(tmp_path_factory)


def _enter(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run inside the world: relative paths and the default hub cache land in it,
    and an S3 connection attempted by mistake is refused at once."""
    import snaparc.hf.constants

    monkeypatch.chdir(root / "cwd")
    monkeypatch.setattr(snaparc.hf.constants, "HF_HUB_CACHE", root / "hub")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)


@functools.cache
def _parser() -> argparse.ArgumentParser:
    return build_parser()


@pytest.fixture
def world(world_holder: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    _enter(world_holder.fresh(), monkeypatch)
    # main() builds the same parser each time; building it once keeps 500 cases fast.
    monkeypatch.setattr(snaparc.cli, "build_parser", _parser)
    yield world_holder
    if not world_holder.checked and tree_state(world_holder.root) != world_holder.state:
        world_holder.dirty = True  # a case failed before its check: rebuild for the next


# --- the commands, each as it would change the world ---------------------------------

# Long options given with a bad value use their short form where there is one
# (`-o ""`), so both spellings are exercised.
SHORT = {"--output": "-o", "--directory": "-C", "--public-key": "-p", "--secret-key": "-s"}


@dataclass(frozen=True)
class Command:
    """A good command line (`{w}` = the world), and the parser it runs under."""

    words: tuple[str, ...]
    positionals: tuple[tuple[str, str], ...] = ()  # (metavar, value)
    options: tuple[tuple[str, str | None], ...] = ()  # (option, value; None for a flag)
    writes: bool = True  # the good command changes the world
    parser: str = ""  # the subcommand whose --help it is (default: the words)

    def argv(self, root: Path, bad: tuple[str, str] | None = None) -> list[str]:
        def fill(value: str) -> str:
            return value.replace("{w}", str(root))

        name, bad_value = bad if bad is not None else ("", "")
        out = list(self.words)
        for metavar, value in self.positionals:
            out.append(fill(bad_value if metavar == name else value))
        options = dict(self.options)
        if bad is not None and name.startswith("-"):
            options[name] = bad_value
        for option, value in options.items():
            if value is None:
                out.append(option)
            elif option == name and not bad_value.startswith("-"):
                out += [SHORT.get(option, option), fill(bad_value)]
            else:
                out.append(f"{option}={fill(value)}")
        return out


def _push(words: tuple[str, ...]) -> Command:
    return Command(
        words,
        (("ARCHIVE", "{w}/a.dlmsnap"), ("URL[:REF]", "{w}/mirror")),
        (("--ref", "r2"), ("--threads", "0"), ("--quiet", None)),
    )


def _pull(words: tuple[str, ...]) -> Command:
    return Command(
        words,
        (("URL:REF|URL@ID", "{w}/mirror:r"),),
        (("--output", "{w}/hf.dlmsnap"), ("--force", None), ("--threads", "0"), ("--quiet", None)),
    )


COMMANDS = {
    "pack": Command(
        ("pack",),
        (("SRC_DIR", "{w}/src"),),
        (
            ("--output", "{w}/split.dlmsnap"),
            ("--split", "1M"),
            ("--force", None),
            ("--threads", "0"),
            ("-q", None),
        ),
    ),
    "unpack": Command(
        ("unpack",),
        (("ARCHIVE", "{w}/split.dlmsnap"),),
        (("--directory", "{w}/unpacked"), ("--force", None), ("--threads", "0"), ("-q", None)),
    ),
    "verify": Command(
        ("verify",),
        (("ARCHIVE", "{w}/a.dlmsnap"),),
        (("--key", "{w}/keys/k.pub"), ("--threads", "0"), ("-q", None)),
        writes=False,
    ),
    "ls": Command(("ls",), (("ARCHIVE", "{w}/a.dlmsnap"),), writes=False),
    "cat": Command(
        ("cat",),
        (("ARCHIVE", "{w}/a.dlmsnap"), ("PATH", "empty.txt")),
        (("--threads", "0"),),
        writes=False,
    ),
    "export": Command(
        ("export",), (), (("--store", "{w}/store"), ("--base", "qwen2-audio-7b-instruct"))
    ),
    "materialize": Command(
        ("materialize",),
        (("ARCHIVE", "{w}/hf.dlmsnap"), ("DEST", "{w}/unpacked")),
        (("--force", None), ("--threads", "0"), ("-q", None)),
    ),
    "materialize --hf-cache": Command(
        ("materialize",),
        (("ARCHIVE", "{w}/hf.dlmsnap"),),
        (("--hf-cache", "{w}/hub"), ("--repo-id", "org/other"), ("--threads", "0"), ("-q", None)),
        parser="materialize",
    ),
    "push": _push(("push",)),
    "mirror push": _push(("mirror", "push")),
    "pull": _pull(("pull",)),
    "mirror pull": _pull(("mirror", "pull")),
    "mirror ls": Command(("mirror", "ls"), (("URL", "{w}/mirror"),), writes=False),
    "mirror rm": Command(("mirror", "rm"), (("URL:REF|URL@ID", "{w}/mirror:r"),)),
    # the world holds no garbage: its gc takes and releases its lock, deletes nothing
    "mirror gc": Command(
        ("mirror", "gc"), (("URL", "{w}/mirror"),), (("--json", None),), writes=False
    ),
    "mirror check": Command(
        ("mirror", "check"),
        (("URL", "{w}/mirror"),),
        (("--read-data", None), ("--threads", "0"), ("--quiet", None)),
        writes=False,
    ),
    "keygen": Command(
        ("keygen",),
        (),
        (("--public-key", "{w}/keys/k.pub"), ("--secret-key", "{w}/keys/k.key"), ("--force", None)),
    ),
    "sign": Command(
        ("sign",),
        (("ARCHIVE", "{w}/a.dlmsnap"),),
        (("--secret-key", "{w}/keys/k.key"), ("--trusted-comment", "matrix")),
    ),
    "sums": Command(("sums",), (("ARCHIVE", "{w}/a.dlmsnap"),)),
}

# --- the bad values -------------------------------------------------------------------

THREADS = ["-1", "abc", "1.5", ""]  # 0 is accepted: one thread per available core
POSITIVE = ["-1", "0", "abc", "1.5", ""]  # --jobs, --max-*: 0 would admit nothing
LEVEL = [*POSITIVE, "20"]
SPLIT = ["-1", "0", "abc", "1.5M", "", "1000", "1023K"]  # volumes are at least 1 MiB
EMPTY = [""]
CODEC = ["", "zipnn", "BYTEGROUP", "none "]
REF = ["", "bad ref", "-x", "a/b"]
REPO_ID = ["noslash", "a/b/c", "a--b/c", "a/b.git", ""]
ENDPOINT = ["", "ftp://x", "http://example.com", "example.com"]
REGION = ["", " "]
OMS_IGNORE = ["", "/etc", "../x", "a/../../b", "."]  # paths inside the snapshot only
ARCHIVE_ID = "0123456789abcdef" * 4
MIRROR = "{w}/mirror"  # a real directory mirror
TARGETS = [
    f"{MIRROR}:",
    f"{MIRROR}:bad ref",
    f"{MIRROR}:-x",
    f"{MIRROR}@xyz",
    f"{MIRROR}@{'A' * 64}",
    f"{MIRROR}@{'a' * 63}",
    "s3://",
    "s3://BadBucket/x:r",
    "ftp://x/y:r",
    "oci://127.0.0.1:5000/Bad:tag",
    "oci://127.0.0.1:0/repo:tag",
    "oci://127.0.0.1:5000/repo:-tag",
]
SOURCE = ["", MIRROR, *TARGETS]  # an archive argument (a mirror dir alone names none)
URL = ["", *TARGETS]  # a mirror (push, mirror ls)

LIMITS = {"--max-manifest-bytes": POSITIVE, "--max-files": POSITIVE, "--max-total-bytes": POSITIVE}
IDLE_TIMEOUT = ["0", "-1", "abc", "", "nan", "inf", "86401"]
RETRIES = ["-1", "abc", "1.5", "", "101"]
TRANSFER = {"--idle-timeout": IDLE_TIMEOUT, "--retries": RETRIES}
REMOTE = {"--endpoint": ENDPOINT, "--region": REGION, "--jobs": POSITIVE, **TRANSFER}

BAD: dict[str, dict[str, list[str]]] = {
    "pack": {
        "SRC_DIR": EMPTY,
        "--output": EMPTY,
        "--level": LEVEL,
        "--codec": CODEC,
        "--split": SPLIT,
        "--base": SOURCE,
        "--threads": THREADS,
    },
    "unpack": {
        "ARCHIVE": SOURCE,
        "--directory": EMPTY,
        "--base": SOURCE,
        "--threads": THREADS,
        **LIMITS,
    },
    "verify": {
        "ARCHIVE": SOURCE,
        "--key": EMPTY,
        "--oms-signature": EMPTY,
        "--public-key": EMPTY,
        "--oms-ignore": OMS_IGNORE,
        "--threads": THREADS,
        **LIMITS,
    },
    "ls": {"ARCHIVE": SOURCE, **LIMITS},
    "cat": {"ARCHIVE": SOURCE, "PATH": EMPTY, "--tensor": EMPTY, "--threads": THREADS, **LIMITS},
    # --adapter-name is left out: an invalid name is an export error (exit 9),
    # as tests/hf/test_hf_cli.py requires, because the store defines the names.
    "export": {"--store": EMPTY, "--base": EMPTY, "--adapter-path": EMPTY, "--processor": EMPTY},
    "materialize": {
        "ARCHIVE": SOURCE,
        "DEST": EMPTY,
        "--base": SOURCE,
        "--threads": THREADS,
        **LIMITS,
    },
    "materialize --hf-cache": {
        "ARCHIVE": SOURCE,
        "--hf-cache": EMPTY,
        "--repo-id": REPO_ID,
        "--base": SOURCE,
        "--threads": THREADS,
        **LIMITS,
    },
    "push": {
        "ARCHIVE": SOURCE,
        "URL[:REF]": [*URL, f"{MIRROR}@{ARCHIVE_ID}"],  # an id is for pull
        "--ref": REF,
        "--mount-from": ["", "Bad", "a//b"],
        "--threads": THREADS,
        **REMOTE,
        **LIMITS,
    },
    "pull": {
        "URL:REF|URL@ID": SOURCE,
        "--output": EMPTY,
        "--threads": THREADS,
        **REMOTE,
        **LIMITS,
    },
    "mirror ls": {"URL": URL, "--endpoint": ENDPOINT, "--region": REGION, **TRANSFER},
    "mirror rm": {"URL:REF|URL@ID": SOURCE, "--endpoint": ENDPOINT, "--region": REGION, **TRANSFER},
    "mirror gc": {"URL": URL, "--endpoint": ENDPOINT, "--region": REGION, **TRANSFER},
    "mirror check": {"URL": URL, "--threads": THREADS, **REMOTE, **LIMITS},
    # -c/--comment and -t/--trusted-comment are free text: the only values refused
    # (several lines, too long) are minisign's rules, signature errors (exit 11).
    "keygen": {"--public-key": EMPTY, "--secret-key": EMPTY},
    "sign": {
        "ARCHIVE": SOURCE,
        "--secret-key": EMPTY,
        "--password-file": EMPTY,
        "--oms-ignore": OMS_IGNORE,
    },
    "sums": {"ARCHIVE": SOURCE},
}
BAD["mirror push"] = BAD["push"]
BAD["mirror pull"] = BAD["pull"]

# What a message must contain to name the argument, where it is not the
# option or metavar itself (the URL of URL[:REF] may carry no ref).
NAMED = {"URL[:REF]": "URL"}

NOT_IN_MATRIX = {
    ("export", "--adapter-name"): "an invalid adapter name is an export error (exit 9)",
    ("keygen", "--comment"): "free text; a multi-line comment is a signature error (exit 11)",
    ("sign", "--trusted-comment"): "free text; a multi-line comment is a signature error (exit 11)",
}

CASES = [
    pytest.param(command, option, value, id=f"{command}:{option}={value!r}")
    for command, options in BAD.items()
    for option, values in options.items()
    for value in values
]


def _expect_usage(code: int, capsys: pytest.CaptureFixture[str], name: str) -> None:
    out, err = capsys.readouterr()
    assert code == 2, err
    assert "Traceback" not in err and "internal error" not in err, err
    assert name in err, err
    assert out == "", out


@pytest.mark.parametrize(("command", "option", "value"), CASES)
def test_a_bad_value_is_a_usage_error_that_touches_nothing(
    command: str, option: str, value: str, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = COMMANDS[command].argv(world.root, (option, value))
    _expect_usage(main(argv), capsys, NAMED.get(option, option))
    world.assert_untouched()


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_the_good_command_runs_and_changes_what_the_bad_one_must_not(
    command: str,
    world_holder: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without the bad value each command line succeeds and (unless it only
    reads) changes the world: the matrix's "untouched" is a real check."""
    root = tmp_path / "world"
    shutil.copytree(world_holder.fresh(), root, symlinks=True)
    before = tree_state(root)
    _enter(root, monkeypatch)
    code = main(COMMANDS[command].argv(root))
    assert code == 0, capsys.readouterr().err
    assert (tree_state(root) != before) == COMMANDS[command].writes


def _subparsers(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield name, sub
                for inner, subsub in _subparsers(sub):
                    yield f"{name} {inner}", subsub


def _valued(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.Action]]:
    """Every argument that takes a value, by its long option or its metavar."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) or action.nargs == 0:
            continue
        if action.option_strings:
            yield max(action.option_strings, key=len), action
        else:
            yield str(action.metavar), action


def _parser_of(command: str) -> str:
    return COMMANDS[command].parser or " ".join(COMMANDS[command].words)


def test_the_matrix_covers_every_option_that_takes_a_value() -> None:
    covered = {(_parser_of(c), o) for c, opts in BAD.items() for o in opts}
    missing = []
    for name, sub in _subparsers(build_parser()):
        for option, _ in _valued(sub):
            if (name, option) not in covered and (name, option) not in NOT_IN_MATRIX:
                missing.append((name, option))
    assert not missing, missing
    assert len(CASES) > 400


def test_help_says_what_zero_means_wherever_zero_is_accepted() -> None:
    """An integer option either refuses 0 (a matrix case) or says what 0 means."""
    refused = {o for opts in BAD.values() for o, values in opts.items() if "0" in values}
    checked = 0
    for name, sub in _subparsers(build_parser()):
        for option, action in _valued(sub):
            if action.type is not int:
                continue
            text = " ".join(str(action.help).split())
            if option not in refused:
                assert "0 =" in text, (name, option, text)
                checked += 1
        help_text = " ".join(sub.format_help().split())
        if any(a.dest == "threads" for a in sub._actions):
            assert "--threads N worker threads (default 0 = one per available core)" in help_text
    assert checked == 18  # --threads (10 commands) and --retries (8), wherever they are


def test_no_traceback_reaches_a_real_process(tmp_path: Path) -> None:
    done = run_snaparc("pull", "s3://BadBucket/x:r", "-o", str(tmp_path / "out.dlmsnap"))
    err = done.stderr.decode()
    assert done.returncode == 2, err
    assert "Traceback" not in err and "internal error" not in err
    assert "URL:REF|URL@ID" in err
    assert list(tmp_path.iterdir()) == []


# --- the API refuses the same values ------------------------------------------------------


def _api_cases() -> list[Any]:
    limits = api.Limits
    cases: dict[str, Callable[[Path], object]] = {
        "pack threads=-1": lambda w: api.pack(w / "src", w / "a.dlmsnap", force=True, threads=-1),
        "pack threads='4'": lambda w: api.pack(
            w / "src",
            w / "a.dlmsnap",
            force=True,
            threads="4",  # type: ignore[arg-type]
        ),
        "pack level=20": lambda w: api.pack(w / "src", w / "a.dlmsnap", force=True, level=20),
        "pack level=True": lambda w: api.pack(w / "src", w / "a.dlmsnap", force=True, level=True),
        "pack codec='zipnn'": lambda w: api.pack(
            w / "src", w / "a.dlmsnap", force=True, codec="zipnn"
        ),
        "pack split=0": lambda w: api.pack(w / "src", w / "split.dlmsnap", force=True, split=0),
        "pack output=''": lambda w: api.pack(w / "src", ""),
        "pack src=''": lambda w: api.pack("", w / "a.dlmsnap", force=True),
        "pack src NUL": lambda w: api.pack("sr\0c", w / "a.dlmsnap", force=True),
        "pack base='s3://'": lambda w: api.pack(
            w / "src", w / "a.dlmsnap", force=True, base="s3://"
        ),
        "verify max_files=0": lambda w: api.verify(w / "a.dlmsnap", limits=limits(max_files=0)),
        "verify max_total_bytes=-1": lambda w: api.verify(
            w / "a.dlmsnap", limits=limits(max_total_bytes=-1)
        ),
        "verify archive=''": lambda w: api.verify(""),
        "verify archive NUL": lambda w: api.verify("a\0.dlmsnap"),
        "ls max_manifest_bytes=0": lambda w: api.ls(
            w / "a.dlmsnap", limits=limits(max_manifest_bytes=0)
        ),
        "cat path=''": lambda w: api.cat(w / "a.dlmsnap", "", io.BytesIO()),
        "unpack dest=''": lambda w: api.unpack(w / "split.dlmsnap", "", force=True),
        "unpack threads=-1": lambda w: api.unpack(
            w / "split.dlmsnap", w / "unpacked", force=True, threads=-1
        ),
        "push jobs=0": lambda w: api.push(w / "a.dlmsnap", str(w / "mirror"), ref="r2", jobs=0),
        "push jobs=1.5": lambda w: api.push(
            w / "a.dlmsnap",
            str(w / "mirror"),
            ref="r2",
            jobs=1.5,  # type: ignore[arg-type]
        ),
        "push ref=''": lambda w: api.push(w / "a.dlmsnap", str(w / "mirror"), ref=""),
        "push url=''": lambda w: api.push(w / "a.dlmsnap", "", ref="r2"),
        "pull target=MIRROR@xyz": lambda w: api.pull(f"{w}/mirror@xyz", w / "hf.dlmsnap"),
        "pull target NUL": lambda w: api.pull(f"{w}/mir\0ror:r", w / "hf.dlmsnap", force=True),
        "pull jobs=-1": lambda w: api.pull(f"{w}/mirror:r", w / "hf.dlmsnap", force=True, jobs=-1),
        "mirror_ls url='s3://'": lambda w: api.mirror_ls("s3://"),
        "mirror_ls url=DIR:": lambda w: api.mirror_ls(f"{w}/mirror:"),
        "push url=DIR@xyz": lambda w: api.push(w / "a.dlmsnap", f"{w}/mirror@xyz"),
        "push lease=0": lambda w: api.push(w / "a.dlmsnap", str(w / "mirror"), ref="r2", lease=0),
        "mirror_rm target=DIR": lambda w: api.mirror_rm(f"{w}/mirror"),
        "mirror_rm lease=-1": lambda w: api.mirror_rm(f"{w}/mirror:r", lease=-1),
        "mirror_rm force='yes'": lambda w: api.mirror_rm(
            f"{w}/mirror@{ARCHIVE_ID}",
            force="yes",  # type: ignore[arg-type]
        ),
        "mirror_gc url=DIR:r": lambda w: api.mirror_gc(f"{w}/mirror:r"),
        "mirror_gc lease='1'": lambda w: api.mirror_gc(
            str(w / "mirror"),
            lease="1",  # type: ignore[arg-type]
        ),
        "mirror_check url=''": lambda w: api.mirror_check(""),
        "mirror_check jobs=0": lambda w: api.mirror_check(str(w / "mirror"), jobs=0),
        "mirror_check url=DIR@ID": lambda w: api.mirror_check(f"{w}/mirror@{ARCHIVE_ID}"),
        "materialize dest=''": lambda w: api.materialize(w / "hf.dlmsnap", "", force=True),
        "materialize_cache repo_id='x'": lambda w: api.materialize_cache(
            w / "hf.dlmsnap", repo_id="x", cache_dir=w / "hub"
        ),
        "materialize_cache cache_dir=''": lambda w: api.materialize_cache(
            w / "hf.dlmsnap", repo_id="org/other", cache_dir=""
        ),
        "export store=''": lambda w: api.export("", "qwen2-audio-7b-instruct"),
        "export processor_dir=''": lambda w: api.export(
            w / "store", "qwen2-audio-7b-instruct", processor_dir=""
        ),
        "keygen public_key=''": lambda w: api.keygen("", w / "keys/k.key", force=True),
        "sign secret_key=''": lambda w: api.sign(w / "a.dlmsnap", ""),
        "sums archive=''": lambda w: api.sums(""),
    }
    return [pytest.param(call, id=name) for name, call in cases.items()]


@pytest.mark.parametrize("call", _api_cases())
def test_the_api_refuses_the_same_values_before_touching_anything(
    call: Callable[[Path], object], world: World
) -> None:
    with pytest.raises(UsageError):
        call(world.root)
    world.assert_untouched()
