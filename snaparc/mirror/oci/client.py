"""The OCI distribution API over HTTP, with the standard library only.

What snaparc needs of a registry (distribution-spec v1.1): `GET /v2/`, HEAD
and GET of blobs, the two-request monolithic blob upload (POST, then PUT
with `?digest=`), and GET / PUT of manifests. Every response is a claim: this
client returns bytes and sizes, and callers check digests themselves.

Authentication follows the registry's `WWW-Authenticate` challenge on the
first 401: `Basic` sends the credentials, `Bearer` fetches a token from the
challenge's realm (with the credentials, if any, as Basic auth) for the
scope it names and retries once. Credentials come from `Credentials`
(`credentials_for`: `SNAPARC_OCI_USERNAME` / `SNAPARC_OCI_PASSWORD`, else
the host's entry in the `auths` of `$DOCKER_CONFIG/config.json` or
`~/.docker/config.json`); anonymous otherwise. A credential is never sent
over plain http to a host that is not loopback, nor to a redirect target.

Errors: 404 → `RegistryNotFoundError`; 401 / 403 → `RegistryAuthError`;
anything else unexpected, and connection failures → `RegistryError`
(all exit 10).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import random
import re
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode, urljoin, urlsplit

from snaparc.errors import RemoteError, RemoteNotFoundError
from snaparc.mirror.oci.url import OCITarget, is_loopback

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
TIMEOUT = 60.0
RETRIES = 3  # after the first attempt, for transient failures of replayable requests
RETRY_STATUSES = frozenset((408, 429, 500, 502, 503, 504))
_sleep = time.sleep  # tests replace it
MAX_ERROR_BODY = 4096
MAX_REDIRECTS = 3


class RegistryError(RemoteError):
    """The registry could not be used (exit 10)."""


class RegistryNotFoundError(RegistryError, RemoteNotFoundError):
    """The registry says the repository, manifest or blob does not exist."""


class UploadSessionLost(RegistryError):
    """A chunked upload failed and the registry cannot say how far it got
    (CNCF distribution invalidates an upload URL once the upload moved past
    it); the caller starts the blob over."""


class RegistryAuthError(RegistryError):
    """The registry refused the request: unauthenticated or not permitted."""


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=...)"

    def basic(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


def credentials_for(netloc: str, env: Mapping[str, str] | None = None) -> Credentials | None:
    """Env credentials first, then the docker config's `auths` entry for `netloc`."""
    env = os.environ if env is None else env
    user, password = env.get("SNAPARC_OCI_USERNAME"), env.get("SNAPARC_OCI_PASSWORD")
    if user and password is not None:
        return Credentials(user, password)
    config_dir = env.get("DOCKER_CONFIG") or str(
        Path(env.get("HOME", "~")).expanduser() / ".docker"
    )
    try:
        with open(Path(config_dir) / "config.json", "rb") as f:
            config = json.loads(f.read(1 << 20))
    except (OSError, ValueError):
        return None
    auths = config.get("auths") if isinstance(config, dict) else None
    if not isinstance(auths, dict):
        return None
    for key in (netloc, f"https://{netloc}", f"http://{netloc}", f"https://{netloc}/v2/"):
        entry = auths.get(key)
        if isinstance(entry, dict):
            return _docker_entry(entry)
    return None


def _docker_entry(entry: dict[str, object]) -> Credentials | None:
    auth = entry.get("auth")
    if isinstance(auth, str) and auth:
        try:
            text = base64.b64decode(auth, validate=True).decode()
            user, sep, password = text.partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return Credentials(user, password) if sep and user else None
    name, secret = entry.get("username"), entry.get("password")
    if isinstance(name, str) and isinstance(secret, str) and name:
        return Credentials(name, secret)
    return None


_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, params = header.strip().partition(" ")
    return scheme.lower(), dict(_CHALLENGE_PARAM.findall(params))


class Response:
    """A response whose body is read by the caller, at most `limit` bytes at once."""

    def __init__(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse) -> None:
        self._conn, self._resp = conn, resp
        self.status = resp.status
        self.headers = resp.headers

    def header(self, name: str) -> str | None:
        return self._resp.getheader(name)

    def read(self, n: int = -1) -> bytes:
        return self._resp.read(n) if n >= 0 else self._resp.read()

    def read_limited(self, limit: int, what: str) -> bytes:
        data = self._resp.read(limit + 1)
        if len(data) > limit:
            raise RegistryError(f"{what} is larger than {limit} bytes; refusing it")
        return data

    def close(self) -> None:
        self._resp.close()
        self._conn.close()


class RegistryClient:
    """One repository of one registry. Thread-safe; a connection per request."""

    def __init__(
        self,
        target: OCITarget,
        *,
        credentials: Credentials | None = None,
        allow_http: bool = False,
        timeout: float = TIMEOUT,
    ) -> None:
        self.target = target
        self.plain_http = target.loopback or allow_http
        self.credentials = credentials
        self.timeout = timeout
        self._auth: str | None = None
        self._lock = threading.Lock()
        self.bytes_sent = 0  # request body bytes, for reports and tests

    @property
    def base(self) -> str:
        return f"{'http' if self.plain_http else 'https'}://{self.target.netloc}"

    def describe(self, path: str = "") -> str:
        return f"{self.target.repository_url}{path}"

    # --- requests ------------------------------------------------------------

    def _connect(self, url: str) -> tuple[http.client.HTTPConnection, str]:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(host, port, timeout=self.timeout)
        elif parts.scheme == "http":
            conn = http.client.HTTPConnection(host, port, timeout=self.timeout)
        else:
            raise RegistryError(f"registry sent a {parts.scheme!r} URL: {url}")
        path = parts.path or "/"
        return conn, path + (f"?{parts.query}" if parts.query else "")

    def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | Iterable[bytes] | None,
    ) -> Response:
        conn, path = self._connect(url)
        try:
            conn.request(method, path, body=body, headers=headers)
            return Response(conn, conn.getresponse())
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            if isinstance(exc, socket.timeout | TimeoutError):
                raise RegistryError(f"registry {self.target.netloc} timed out ({method})") from None
            raise RegistryError(
                f"cannot talk to registry {self.target.netloc}: {exc}"
                + ("" if self.plain_http else " (https; a loopback registry is spoken to in http)")
            ) from None

    def _send_retrying(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | Iterable[bytes] | None,
        replayable: bool,
    ) -> Response:
        """`_send`, retried with exponential backoff and jitter on connection
        failures, timeouts and HTTP 408, 429 and 5xx, when the request can be
        sent again as it is (no streamed body; a PATCH never: its chunk may
        have arrived, `_upload_chunks` asks the registry instead)."""
        replayable = replayable and method != "PATCH"
        for attempt in range(RETRIES + 1):
            last = attempt == RETRIES or not replayable
            try:
                resp = self._send(method, url, headers, body)
            except RegistryError:
                if last:
                    raise
            else:
                if resp.status not in RETRY_STATUSES or last:
                    return resp
                resp.close()
            _sleep(min(8.0, 0.25 * 2**attempt) * (0.5 + random.random()))
        raise AssertionError("unreachable")

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        stream: Iterable[bytes] | None = None,
        length: int | None = None,
        ok: tuple[int, ...] = (200,),
        what: str = "",
    ) -> Response:
        """Send, answering one auth challenge and following redirects; the
        caller closes the response. `stream` bodies cannot be retried after a
        challenge, so uploads first authenticate with a bodiless request."""
        url = path if "://" in path else self.base + path
        hdrs = dict(headers or {})
        if length is not None:
            hdrs["Content-Length"] = str(length)
        elif body is not None:
            hdrs["Content-Length"] = str(len(body))
        payload: bytes | Iterable[bytes] | None = body if stream is None else stream
        for attempt in range(2):
            auth = self._auth
            if auth and self._same_origin(url):
                hdrs["Authorization"] = auth
            else:
                hdrs.pop("Authorization", None)
            resp = self._send_retrying(method, url, hdrs, payload, stream is None)
            if resp.status == 401 and attempt == 0 and stream is None:
                challenge = resp.header("WWW-Authenticate") or ""
                resp.close()
                self._answer(challenge)
                continue
            break
        redirects = 0
        while resp.status in (301, 302, 303, 307, 308) and method in ("GET", "HEAD"):
            location = resp.header("Location")
            resp.close()
            if not location or redirects >= MAX_REDIRECTS:
                raise RegistryError(f"{what or path}: too many or empty redirects")
            redirects += 1
            url = urljoin(url, location)
            hdrs.pop("Authorization", None)  # never to a redirect target
            if self._auth and self._same_origin(url):
                hdrs["Authorization"] = self._auth
            resp = self._send_retrying(method, url, hdrs, None, True)
        if resp.status in ok:
            if body is not None or stream is not None:
                self.bytes_sent += int(hdrs.get("Content-Length", "0"))
            return resp
        self._raise(resp, method, what or path)
        raise AssertionError("unreachable")

    def _same_origin(self, url: str) -> bool:
        return url.startswith(self.base + "/")

    def _answer(self, challenge: str) -> None:
        scheme, params = parse_challenge(challenge)
        creds = self.credentials
        if creds is not None and self.plain_http and not self.target.loopback:
            raise RegistryAuthError(
                f"registry {self.target.netloc} asks for credentials over plain http; "
                "refusing to send them (use https)"
            )
        if scheme == "basic":
            if creds is None:
                raise RegistryAuthError(
                    f"registry {self.target.netloc} needs credentials: set SNAPARC_OCI_USERNAME "
                    "and SNAPARC_OCI_PASSWORD, or log in (docker login) so that "
                    "~/.docker/config.json holds them"
                )
            with self._lock:
                self._auth = creds.basic()
            return
        if scheme == "bearer" and params.get("realm"):
            with self._lock:
                self._auth = "Bearer " + self._fetch_token(params, creds)
            return
        raise RegistryAuthError(
            f"registry {self.target.netloc} refused the request with an unsupported "
            f"challenge {challenge[:100]!r}"
        )

    def _fetch_token(self, params: dict[str, str], creds: Credentials | None) -> str:
        realm = params["realm"]
        parts = urlsplit(realm)
        if parts.scheme not in ("https", "http") or (
            parts.scheme == "http" and not is_loopback(parts.hostname or "")
        ):
            raise RegistryAuthError(f"token realm {realm!r} is not an https URL; refusing it")
        query: dict[str, str] = {k: params[k] for k in ("service", "scope") if k in params}
        if "scope" not in query:
            query["scope"] = f"repository:{self.target.repository}:pull,push"
        url = realm + ("&" if "?" in realm else "?") + urlencode(query)
        headers = {"Authorization": creds.basic()} if creds else {}
        resp = self._send("GET", url, headers, None)
        try:
            if resp.status != 200:
                raise RegistryAuthError(
                    f"token server {parts.hostname} refused a token (HTTP {resp.status})"
                )
            try:
                obj = json.loads(resp.read_limited(1 << 20, "token response"))
            except ValueError:
                raise RegistryAuthError("token server sent no JSON") from None
        finally:
            resp.close()
        token = obj.get("token") or obj.get("access_token") if isinstance(obj, dict) else None
        if not isinstance(token, str) or not token:
            raise RegistryAuthError("token server sent no token")
        return token

    def _raise(self, resp: Response, method: str, what: str) -> None:
        try:
            detail = resp.read(MAX_ERROR_BODY).decode("utf-8", "replace").strip()
        except (OSError, http.client.HTTPException):
            detail = ""
        finally:
            resp.close()
        where = f"{method} {what} at {self.target.netloc}"
        code = _error_code(detail)
        msg = f"{where}: HTTP {resp.status}" + (f" {code}" if code else "")
        if resp.status == 404:
            raise RegistryNotFoundError(f"{msg}: not found in {self.describe()}")
        if resp.status in (401, 403):
            raise RegistryAuthError(f"{msg}: not permitted (check the credentials)")
        raise RegistryError(f"{msg}" + (f": {detail[:300]}" if detail and not code else ""))

    # --- the distribution API ---------------------------------------------------

    def _repo(self, rest: str) -> str:
        return f"/v2/{self.target.repository}/{rest}"

    def ping(self) -> None:
        self.request("GET", "/v2/", what="/v2/").close()

    def head_blob(self, digest: str) -> int | None:
        """The size the registry reports for a blob, or None if it has none."""
        try:
            resp = self.request("HEAD", self._repo(f"blobs/{digest}"), what=f"blob {digest}")
        except RegistryNotFoundError:
            return None
        try:
            length = resp.header("Content-Length")
            return int(length) if length and length.isdigit() else -1
        finally:
            resp.close()

    @contextmanager
    def get_blob(self, digest: str) -> Iterator[Response]:
        resp = self.request("GET", self._repo(f"blobs/{digest}"), what=f"blob {digest}")
        try:
            yield resp
        finally:
            resp.close()

    def get_small_blob(self, digest: str, limit: int) -> bytes:
        with self.get_blob(digest) as resp:
            return resp.read_limited(limit, f"blob {digest}")

    def upload_blob(
        self,
        digest: str,
        size: int,
        chunks: Iterable[bytes],
        *,
        mount_from: str | None = None,
        chunk_size: int | None = None,
    ) -> bool:
        """Upload one blob; False if the registry mounted it from `mount_from`
        (another repository of this registry) instead, so no byte was sent.

        A blob of at most `chunk_size` bytes (or any, without one) goes in one
        PUT with `?digest=`; a larger one in PATCH requests of `chunk_size`
        bytes, each resumed once from the offset the registry reports (GET of
        the upload) when its request fails, then a PUT with `?digest=`. If the
        registry cannot report it, `UploadSessionLost`: call again, from the
        blob's first byte.
        """
        path = self._repo("blobs/uploads/")
        if mount_from is not None:
            path += "?" + urlencode({"mount": digest, "from": mount_from})
        resp = self.request(
            "POST", path, headers={"Content-Length": "0"}, ok=(201, 202), what="a blob upload"
        )
        mounted = resp.status == 201
        location = self._location(resp)
        if mounted:
            return False
        if chunk_size is not None and size > chunk_size:
            location = self._upload_chunks(location, size, chunks, chunk_size, digest)
            chunks, size = [], 0
        url = location + ("&" if "?" in location else "?") + "digest=" + quote(digest, safe="")
        self.request(
            "PUT",
            url,
            headers={"Content-Type": "application/octet-stream"},
            stream=chunks,
            length=size,
            ok=(201,),
            what=f"blob {digest}",
        ).close()
        return True

    def _location(self, resp: Response) -> str:
        location = resp.header("Location")
        resp.close()
        if not location:
            raise RegistryError(
                f"registry {self.target.netloc} answered an upload without Location"
            )
        url = urljoin(self.base + "/", location)
        if not self._same_origin(url):
            raise RegistryError(f"registry sent an upload location on another host: {location}")
        return url

    def upload_offset(self, location: str) -> int:
        """How many bytes of an upload session the registry holds (its `Range`);
        `UploadSessionLost` if it no longer knows the session by `location`."""
        try:
            resp = self.request("GET", location, ok=(204,), what="an upload's status")
        except RegistryError as exc:
            raise UploadSessionLost(f"the registry lost the upload session: {exc}") from None
        rng = resp.header("Range") or ""
        resp.close()
        match = re.fullmatch(r"(?:bytes=)?0-(\d+)", rng.strip())
        return int(match.group(1)) + 1 if match else 0

    def _upload_chunks(
        self, location: str, size: int, chunks: Iterable[bytes], chunk_size: int, digest: str
    ) -> str:
        offset = 0
        for piece in _rechunk(chunks, chunk_size):
            end = offset + len(piece)
            for attempt in range(2):
                try:
                    resp = self.request(
                        "PATCH",
                        location,
                        headers={
                            "Content-Type": "application/octet-stream",
                            "Content-Range": f"{offset}-{end - 1}",
                        },
                        body=bytes(piece),
                        ok=(202,),
                        what=f"blob {digest}",
                    )
                    location = self._location(resp)
                    break
                except RegistryError:
                    if attempt:
                        raise
                    held = self.upload_offset(location)
                    if held == end:
                        break  # the chunk arrived; only its answer was lost
                    if held != offset:
                        raise
            offset = end
        if offset != size:
            raise RegistryError(f"blob {digest}: {offset} bytes uploaded, not {size}")
        return location

    def upload_small_blob(self, digest: str, data: bytes) -> None:
        self.upload_blob(digest, len(data), [data])

    def get_manifest(self, reference: str, limit: int) -> tuple[bytes, str]:
        """The manifest bytes and their content type."""
        resp = self.request(
            "GET",
            self._repo(f"manifests/{reference}"),
            headers={"Accept": OCI_MANIFEST},
            what=f"manifest {reference}",
        )
        try:
            data = resp.read_limited(limit, f"manifest {reference}")
            return data, (resp.header("Content-Type") or "").split(";")[0].strip()
        finally:
            resp.close()

    def put_manifest(self, reference: str, data: bytes) -> str | None:
        resp = self.request(
            "PUT",
            self._repo(f"manifests/{reference}"),
            headers={"Content-Type": OCI_MANIFEST},
            body=data,
            ok=(201,),
            what=f"manifest {reference}",
        )
        try:
            return resp.header("Docker-Content-Digest")
        finally:
            resp.close()


def _rechunk(chunks: Iterable[bytes], size: int) -> Iterator[bytearray]:
    buf = bytearray()
    for chunk in chunks:
        buf += chunk
        while len(buf) >= size:
            yield buf[:size]
            del buf[:size]
    if buf:
        yield buf


def _error_code(detail: str) -> str:
    try:
        obj = json.loads(detail)
        errors = obj.get("errors") if isinstance(obj, dict) else None
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("code", ""))[:64]
    except ValueError:
        pass
    return ""
