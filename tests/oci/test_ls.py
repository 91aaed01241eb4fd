"""`mirror ls oci://HOST/REPO` against the real registry: every tag (every
page of the listing), its manifest digest, the archive id it carries, the
bytes shared between archives; other artifacts listed as such."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qsl, urlsplit

import pytest

import snaparc
from snaparc.cli import main
from snaparc.errors import SnaparcError, UsageError
from snaparc.mirror.oci.client import RegistryClient
from snaparc.mirror.oci.layout import OCI_MANIFEST, canonical_json, sha256_digest
from snaparc.mirror.oci.url import parse_oci_target

from .conftest import Registry, adapter_files, pack, write_tree


@pytest.fixture
def filled(repo: str, archive_v1: Path, tmp_path: Path) -> dict[str, object]:
    """v1 under tags v1 and latest, v2 (one file changed) under v2, and a
    plain OCI image (not snaparc's) under `image`."""
    files = adapter_files()
    files["adapter/adapter_config.json"] = b'{"r": 16, "lora_alpha": 32}\n'
    archive_v2 = pack(write_tree(tmp_path / "src_v2", files), tmp_path / "v2.dlmsnap")
    p1 = snaparc.push(archive_v1, f"{repo}:v1").report
    snaparc.push(archive_v1, f"{repo}:latest")
    p2 = snaparc.push(archive_v2, f"{repo}:v2").report
    client = RegistryClient(parse_oci_target(repo))
    config = b"{}"
    client.upload_small_blob(sha256_digest(config), config)
    image = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sha256_digest(config),
                "size": len(config),
            },
            "layers": [],
        }
    )
    client.put_manifest("image", image)
    return {"v1": p1, "v2": p2, "image": sha256_digest(image)}


def test_lists_every_tag_with_its_digest_and_archive(repo: str, filled: dict) -> None:  # type: ignore[type-arg]
    p1, p2 = filled["v1"], filled["v2"]
    done = snaparc.mirror_ls(repo)
    assert isinstance(done, snaparc.OCIListed)
    j = done.to_json()
    assert j["refs"] == {"latest": p1.archive_id, "v1": p1.archive_id, "v2": p2.archive_id}
    assert j["archives"] == sorted({p1.archive_id, p2.archive_id})
    assert j["tags"]["v1"] == {"digest": p1.manifest_digest, "archive_id": p1.archive_id}
    assert j["tags"]["latest"]["digest"] == p1.manifest_digest
    assert j["tags"]["v2"] == {"digest": p2.manifest_digest, "archive_id": p2.archive_id}
    image = j["tags"]["image"]
    assert image["digest"] == filled["image"] and image["archive_id"] is None
    assert "not an artifact snaparc pushed" in image["problem"]
    # v1 and v2 share every blob but the changed config, the manifest and the record
    s1, s2 = j["sizes"][p1.archive_id], j["sizes"][p2.archive_id]
    assert 0 < s1["shared_bytes"] < s1["size"] and 0 < s2["shared_bytes"] < s2["size"]
    assert j["logical_bytes"] == s1["size"] + s2["size"]
    assert j["stored_bytes"] == j["logical_bytes"] - s1["shared_bytes"]


def test_cli_json_and_text(repo: str, filled: dict, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[type-arg]
    assert main(["mirror", "ls", repo, "--json"]) == 0
    j = json.loads(capsys.readouterr().out)
    assert set(j) >= {"refs", "archives", "sizes", "logical_bytes", "stored_bytes", "tags"}
    assert main(["mirror", "ls", repo]) == 0
    out = capsys.readouterr().out
    assert f"tag v1 -> {filled['v1'].archive_id}" in out  # type: ignore[attr-defined]
    assert "tag image -> sha256:" in out and "not a snaparc artifact" in out
    assert "2 archives under 4 tags" in out


class _PagingRegistry(http.server.BaseHTTPRequestHandler):
    """Tags in pages of `n` with `Link: <...?last=X&n=N>; rel="next"`, as the
    distribution spec describes (the CNCF registry of the tests returns every
    tag in one page whatever `n` is)."""

    tags = sorted([*(f"t{i:02d}" for i in range(7)), "not a tag!"])
    paths: ClassVar[list[str]] = []
    next_host: ClassVar[str] = ""  # set: the next page is on another host

    def do_GET(self) -> None:
        self.paths.append(self.path)
        url = urlsplit(self.path)
        q = dict(parse_qsl(url.query))
        n, last = int(q.get("n", "100")), q.get("last", "")
        page = [t for t in self.tags if t > last][:n]
        body = json.dumps({"name": "team/x", "tags": page}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if page and page[-1] != self.tags[-1]:
            where = f"http://{self.next_host}{url.path}" if self.next_host else url.path
            self.send_header("Link", f'<{where}?last={page[-1]}&n={n}>; rel="next"')
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_pages_of_the_tag_list_are_followed(monkeypatch: pytest.MonkeyPatch) -> None:
    from snaparc.mirror.oci import client as client_mod

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PagingRegistry)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(client_mod, "TAGS_PAGE", 3)
        client = RegistryClient(parse_oci_target(f"oci://127.0.0.1:{server.server_port}/team/x"))
        assert client.list_tags() == [f"t{i:02d}" for i in range(7)]  # the bad entry dropped
        assert _PagingRegistry.paths == [
            "/v2/team/x/tags/list?n=3",
            "/v2/team/x/tags/list?last=t01&n=3",
            "/v2/team/x/tags/list?last=t04&n=3",
        ]
        # a page on another host is refused, and not asked for
        _PagingRegistry.paths.clear()
        monkeypatch.setattr(_PagingRegistry, "next_host", "elsewhere.invalid")
        with pytest.raises(SnaparcError, match="on another host") as info:
            client.list_tags()
        assert info.value.exit_code == 10 and len(_PagingRegistry.paths) == 1
    finally:
        server.shutdown()
        server.server_close()


def test_refusals(repo: str, registry: Registry) -> None:
    with pytest.raises(UsageError, match="takes the repository alone"):
        snaparc.mirror_ls(f"{repo}:v1")
    with pytest.raises(UsageError, match="--allow-http must be True or False"):
        snaparc.mirror_ls(repo, allow_http="yes")  # type: ignore[arg-type]
    with pytest.raises(SnaparcError) as info:
        snaparc.mirror_ls(registry.url("team/never-pushed"))
    assert info.value.exit_code == 10
    assert main(["mirror", "ls", f"{repo}@sha256:{'a' * 64}"]) == 2
