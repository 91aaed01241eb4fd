"""Authentication: anonymous, then basic (a registry behind htpasswd) and
bearer (a token server in front of the registry) challenge flows;
credentials from SNAPARC_OCI_USERNAME/PASSWORD or ~/.docker/config.json."""

from __future__ import annotations

import base64
import http.client
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

import snaparc
from snaparc.errors import SnaparcError
from snaparc.mirror.oci.client import Credentials, credentials_for

from .conftest import PASSWORD, USER, Registry


def _env_creds(monkeypatch: pytest.MonkeyPatch, user: str = USER, pw: str = PASSWORD) -> None:
    monkeypatch.setenv("SNAPARC_OCI_USERNAME", user)
    monkeypatch.setenv("SNAPARC_OCI_PASSWORD", pw)


def test_basic_auth_with_env_credentials(
    auth_registry: Registry, archive_v1: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = auth_registry.url("team/basic")
    with pytest.raises(SnaparcError, match="needs credentials") as info:
        snaparc.push(archive_v1, f"{url}:v1")
    assert info.value.exit_code == 10
    _env_creds(monkeypatch)
    snaparc.push(archive_v1, f"{url}:v1")
    out = tmp_path / "pulled.dlmsnap"
    snaparc.pull(f"{url}:v1", out)
    assert out.read_bytes() == archive_v1.read_bytes()
    _env_creds(monkeypatch, pw="wrong")
    with pytest.raises(SnaparcError, match="not permitted") as info:
        snaparc.verify(f"{url}:v1")
    assert info.value.exit_code == 10


def test_basic_auth_with_docker_config(
    auth_registry: Registry, archive_v1: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "docker"
    config.mkdir()
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    auths = {"auths": {auth_registry.host: {"auth": token}}}
    (config / "config.json").write_text(json.dumps(auths))
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    url = auth_registry.url("team/docker-config")
    snaparc.push(archive_v1, f"{url}:v1")
    assert snaparc.verify(f"{url}:v1").archive_id == snaparc.verify(archive_v1).archive_id


def test_credentials_lookup(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    assert credentials_for("r.example:5000", env) is None
    (tmp_path / ".docker").mkdir()
    cfg = {
        "auths": {
            "https://r.example:5000": {"username": "u", "password": "p"},
            "other": {"auth": base64.b64encode(b"a:b:c").decode()},
            "bad": {"auth": "!!!"},
        }
    }
    (tmp_path / ".docker/config.json").write_text(json.dumps(cfg))
    assert credentials_for("r.example:5000", env) == Credentials("u", "p")
    assert credentials_for("other", env) == Credentials("a", "b:c")
    assert credentials_for("bad", env) is None
    env.update(SNAPARC_OCI_USERNAME="e", SNAPARC_OCI_PASSWORD="f")
    assert credentials_for("r.example:5000", env) == Credentials("e", "f")
    assert "f" not in repr(Credentials("e", "f"))


# --- bearer: a token server and a gate in front of the anonymous registry -------


TOKEN = "test-token-1"


class _Gate(http.server.BaseHTTPRequestHandler):
    """Issues tokens at /token (basic auth) and forwards /v2/ requests that
    carry the token to the real registry; others get a Bearer challenge."""

    upstream = ""
    seen_scopes: ClassVar[list[str]] = []

    def log_message(self, *args: object) -> None:
        pass

    def _challenge(self) -> None:
        self.send_response(401)
        host = self.headers["Host"]
        self.send_header(
            "WWW-Authenticate",
            f'Bearer realm="http://{host}/token",service="gate",scope="repository:x:pull,push"',
        )
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _handle(self) -> None:
        if self.path.startswith("/token"):
            want = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            self.seen_scopes.append(self.path)
            if self.headers.get("Authorization") != want:
                self.send_response(401)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = json.dumps({"token": TOKEN}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            self._challenge()
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        conn = http.client.HTTPConnection(self.upstream, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "authorization"}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        conn.close()

    do_GET = do_PUT = do_POST = do_HEAD = do_PATCH = _handle


@pytest.fixture
def bearer_registry(registry: Registry) -> Iterator[str]:
    handler = type("Gate", (_Gate,), {"upstream": registry.host, "seen_scopes": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_bearer_token_flow(
    bearer_registry: str, archive_v1: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"oci://{bearer_registry}/team/bearer"
    with pytest.raises(SnaparcError) as info:
        snaparc.push(archive_v1, f"{url}:v1")  # anonymous: the token server says no
    assert info.value.exit_code == 10
    _env_creds(monkeypatch)
    snaparc.push(archive_v1, f"{url}:v1")
    out = tmp_path / "pulled.dlmsnap"
    snaparc.pull(f"{url}:v1", out)
    assert out.read_bytes() == archive_v1.read_bytes()


def test_https_by_default_http_only_for_loopback() -> None:
    from snaparc.mirror.oci.client import RegistryAuthError, RegistryClient
    from snaparc.mirror.oci.url import parse_oci_target

    remote = parse_oci_target("oci://registry.example.com/team/x:v1")
    assert RegistryClient(remote).base == "https://registry.example.com"
    assert RegistryClient(remote, allow_http=True).base == "http://registry.example.com"
    for host in ("127.0.0.1:5000", "localhost:5000", "[::1]:5000"):
        assert RegistryClient(parse_oci_target(f"oci://{host}/x:v1")).base == f"http://{host}"
    # credentials are never sent in plain http to a host that is not loopback
    client = RegistryClient(remote, credentials=Credentials("u", "p"), allow_http=True)
    with pytest.raises(RegistryAuthError, match="plain http"):
        client._answer('Basic realm="x"')
