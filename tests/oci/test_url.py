"""`oci://` targets: what parses, and what is refused as a usage error (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

import snaparc
from snaparc.errors import UsageError
from snaparc.mirror.oci.url import parse_oci_target
from snaparc.sources.archive import classify_source

D = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "host", "port", "repo", "tag", "digest"),
    [
        ("oci://127.0.0.1:5000/team/adapter:v1", "127.0.0.1", 5000, "team/adapter", "v1", None),
        (f"oci://localhost/a@{D}", "localhost", None, "a", None, D),
        ("oci://[::1]:5000/a/b/c:V_1.2-x", "::1", 5000, "a/b/c", "V_1.2-x", None),
        (
            "oci://registry.example.com/org/my.model__x-y:latest",
            "registry.example.com",
            None,
            "org/my.model__x-y",
            "latest",
            None,
        ),
        ("oci://Reg.Example.com:443/a", "Reg.Example.com", 443, "a", None, None),
    ],
)
def test_parses(
    text: str, host: str, port: int | None, repo: str, tag: str | None, digest: str | None
) -> None:
    t = parse_oci_target(text)
    assert (t.host, t.port, t.repository, t.tag, t.digest) == (host, port, repo, tag, digest)
    assert str(t) == text


@pytest.mark.parametrize(
    "text",
    [
        "oci://",
        "oci:///repo:tag",
        "oci://host",
        "oci://host/",
        "oci://host/Repo:tag",
        "oci://host/repo/:tag",
        "oci://host/repo:",
        "oci://host/repo:-tag",
        "oci://host/repo:" + "t" * 129,
        "oci://host/repo@sha256:abc",
        "oci://host/repo@md5:" + "0" * 32,
        f"oci://host/repo:tag@{D}",
        "oci://host:0/repo:tag",
        "oci://host:99999/repo:tag",
        "oci://host:port/repo:tag",
        "oci://ho_st/repo:tag",
        "oci://[::1/repo:tag",
        "oci://[nope]:5000/repo:tag",
        "oci://host/repo:tag?x=1",
        "oci://host/re po:tag",
        "oci://host/repo\u00e9:tag",
        "oci://host/" + "a" * 256 + ":tag",
    ],
)
def test_refused_as_usage_errors(text: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_oci_target(text)
    assert info.value.exit_code == 2


def test_a_reading_command_needs_a_tag_or_digest() -> None:
    with pytest.raises(UsageError, match=r"ARCHIVE: .* append :TAG or @sha256:DIGEST"):
        classify_source("oci://127.0.0.1:5000/team/adapter")


def test_api_names_the_option(tmp_path: Path, archive_v1: Path) -> None:
    with pytest.raises(UsageError, match=r"^URL:REF\|URL@ID: "):
        snaparc.pull("oci://host/Bad:tag", tmp_path / "x")
    with pytest.raises(UsageError, match=r"^URL: "):
        snaparc.push(archive_v1, "oci://host/repo:bad tag")
    with pytest.raises(UsageError, match=r"^--ref: "):
        snaparc.push(archive_v1, "oci://host/repo", ref="-bad")
    with pytest.raises(UsageError, match=r"@sha256:\.\.\. is for pull"):
        snaparc.push(archive_v1, f"oci://host/repo@{D}")
    with pytest.raises(UsageError, match=r"tag given twice"):
        snaparc.push(archive_v1, "oci://host/repo:a", ref="b")
    with pytest.raises(UsageError, match=r"--allow-http must be True or False"):
        snaparc.push(archive_v1, "oci://host/repo:a", allow_http="yes")  # type: ignore[arg-type]
    assert not (tmp_path / "x").exists()


def test_cli_exit_2_names_the_argument(archive_v1: Path) -> None:
    from snaparc_testlib import run_snaparc

    p = run_snaparc("verify", "oci://127.0.0.1:5000/Team/x:v1")
    assert p.returncode == 2 and b"ARCHIVE: " in p.stderr
    p = run_snaparc("push", str(archive_v1), "oci://127.0.0.1:5000/x:v1", "--ref", "y")
    assert p.returncode == 2 and b"tag given twice" in p.stderr


def test_a_missing_registry_binary_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from .conftest import _need

    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="missing in CI"):
        _need("docker-registry")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        _need("docker-registry")


# --- https by default, plain http only to loopback or with --allow-http ----------------

REMOTE = "oci://example.invalid/team/x:v1"  # never contacted: the client's one way out is patched


def _reading_commands(tmp_path: Path, archive: Path, target: str) -> list[list[str]]:
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True, exist_ok=True)
    (src / "a" / "f.txt").write_bytes(b"x")
    return [
        ["verify", target],
        ["ls", target],
        ["cat", target, "README.md"],
        ["unpack", target, "-C", str(tmp_path / "tree")],
        ["materialize", target, str(tmp_path / "dest")],
        ["pull", target, "-o", str(tmp_path / "out.dlmsnap")],
        ["pack", str(src), "-o", str(tmp_path / "thin.dlmsnap"), "--base", target],
    ]


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The URLs the registry client would have sent requests to (none is sent)."""
    from snaparc.mirror.oci.client import RegistryClient, RegistryTransientError

    urls: list[str] = []

    def send(self: RegistryClient, method: str, url: str, headers: object, body: object) -> None:
        urls.append(url)
        raise RegistryTransientError("no network in this test")

    monkeypatch.setattr(RegistryClient, "_send", send)
    monkeypatch.setenv("SNAPARC_RETRIES", "0")
    return urls


def test_every_reading_command_speaks_https_unless_allow_http(
    tmp_path: Path, archive_v1: Path, no_network: list[str]
) -> None:
    from snaparc.cli import main

    for argv in _reading_commands(tmp_path, archive_v1, REMOTE):
        no_network.clear()
        assert main([*argv, "--quiet"] if argv[0] in ("pull", "pack") else argv) == 10, argv
        assert no_network and all(u.startswith("https://example.invalid/v2/") for u in no_network)
        no_network.clear()
        assert main([*argv, "--allow-http"]) == 10, argv
        assert no_network and all(u.startswith("http://example.invalid/v2/") for u in no_network)
    assert not any((tmp_path / n).exists() for n in ("tree", "dest", "out.dlmsnap", "thin.dlmsnap"))


def test_a_plain_http_url_is_refused_without_a_request(
    tmp_path: Path, archive_v1: Path, no_network: list[str]
) -> None:
    """`http://HOST/REPO:TAG` is no registry address (oci:// is; --allow-http
    picks plain http for it): exit 2, nothing contacted, nothing written."""
    from snaparc.cli import main

    for argv in _reading_commands(tmp_path, archive_v1, "http://example.invalid/team/x:v1"):
        assert main([*argv, "--allow-http"]) == 2, argv
    assert no_network == []
    for call in (
        lambda: snaparc.verify(REMOTE, allow_http="yes"),  # type: ignore[arg-type]
        lambda: snaparc.ls(REMOTE, allow_http=1),  # type: ignore[arg-type]
        lambda: snaparc.unpack(REMOTE, tmp_path / "tree", allow_http=None),  # type: ignore[arg-type]
        lambda: snaparc.pull(REMOTE, tmp_path / "o", allow_http="no"),  # type: ignore[arg-type]
    ):
        with pytest.raises(UsageError, match=r"--allow-http must be True or False"):
            call()
    assert no_network == []
    assert not any((tmp_path / n).exists() for n in ("tree", "o"))


def test_loopback_is_plain_http_without_the_flag(no_network: list[str], tmp_path: Path) -> None:
    from snaparc.cli import main

    assert main(["verify", "oci://127.0.0.1:9/team/x:v1"]) == 10
    assert no_network and no_network[0].startswith("http://127.0.0.1:9/v2/")


@pytest.mark.parametrize("value", ["abc", "0", "1048575", str(4 * 1024**3 + 1), "-5"])
def test_a_bad_chunk_size_is_a_usage_error_before_any_request(
    value: str, archive_v1: Path, no_network: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SNAPARC_OCI_CHUNK_SIZE", value)
    with pytest.raises(UsageError, match="SNAPARC_OCI_CHUNK_SIZE must be a number of bytes"):
        snaparc.push(archive_v1, "oci://127.0.0.1:9/team/x:v1")
    assert no_network == []
