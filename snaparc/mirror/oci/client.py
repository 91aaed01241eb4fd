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

Transfers follow the mirrors' contract (spec/OCI.md, section 7): every
socket operation is bounded by the idle timeout (`--idle-timeout`,
`SNAPARC_IDLE_TIMEOUT`, default 30 s: a connect, or a wait for the next byte,
that takes longer fails the request); transient failures (connection
failures, idle timeouts, a body cut short, HTTP 408, 429 and 5xx) are retried
up to `--retries` / `SNAPARC_RETRIES` times (default 5) with the backoff of
`snaparc.mirror.retry.RetryPolicy`; a blob GET that broke off resumes with a
`Range` request for the rest (`read_blob`). `stats` counts bytes and retries.

Errors: 404 → `RegistryNotFoundError`; 401 / 403 → `RegistryAuthError`;
transient failures once the retries are spent → `RegistryTransientError`;
anything else unexpected → `RegistryError` (all exit 10).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, urlencode, urljoin, urlsplit

from snaparc.errors import RemoteError, RemoteNotFoundError
from snaparc.mirror.oci.url import TAG, OCITarget, is_loopback
from snaparc.mirror.retry import RetryPolicy, TransferStats
from snaparc.mirror.url import TransferSettings, transfer_settings

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
RETRY_STATUSES = frozenset((408, 429, 500, 502, 503, 504))
_sleep = time.sleep  # tests replace it
MAX_ERROR_BODY = 4096
MAX_REDIRECTS = 3
TAGS_PAGE = 1000  # tags asked for per page of a listing (`n`)
MAX_TAG_PAGES = 10_000
MAX_TAGS_BYTES = 4 * 1024 * 1024  # one page of a tag listing


class RegistryError(RemoteError):
    """The registry could not be used (exit 10)."""


class RegistryTransientError(RegistryError):
    """A failure a retry may cure (connection, idle timeout, a body cut short,
    HTTP 408, 429, 5xx), raised once the retries are spent or when the
    request cannot be sent again as it is (a streamed body)."""


class BlobLengthError(RegistryError):
    """The registry says a blob has another length than its descriptor's."""

    def __init__(self, message: str, *, length: str) -> None:
        super().__init__(message)
        self.length = length


class RegistryNotFoundError(RegistryError, RemoteNotFoundError):
    """The registry says the repository, manifest or blob does not exist."""


class UploadSessionLost(RegistryError):
    """A chunked upload failed and the registry cannot say how far it got
    (CNCF distribution invalidates an upload URL once the upload moved past
    it); the caller starts the blob over."""


class UploadSessionStore(Protocol):
    """Where a chunked upload's URL is kept across runs (`oci.sessions`)."""

    def find(self, digest: str) -> str | None: ...
    def save(self, digest: str, location: str) -> None: ...
    def done(self, digest: str) -> None: ...


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
        transfer: TransferSettings | None = None,
    ) -> None:
        transfer = transfer if transfer is not None else transfer_settings()
        self.target = target
        self.plain_http = target.loopback or allow_http
        self.credentials = credentials
        self.timeout = transfer.idle_timeout  # every connect and every wait for a byte
        self.policy = RetryPolicy(transfer.retries)
        self.stats = TransferStats()
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
                raise RegistryTransientError(
                    f"registry {self.target.netloc} sent nothing for {self.timeout:g} s "
                    f"({method}; the idle timeout)"
                ) from None
            raise RegistryTransientError(
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
        retries = self.policy.retries
        for attempt in range(retries + 1):
            last = attempt == retries or not replayable
            self.stats.add(requests=1)
            try:
                resp = self._send(method, url, headers, body)
            except RegistryTransientError:
                if last:
                    raise
            else:
                if resp.status not in RETRY_STATUSES or last:
                    return resp
                resp.close()
            self.backoff(attempt)
        raise AssertionError("unreachable")

    def backoff(self, attempt: int) -> None:
        """Count a retry and wait before it (`RetryPolicy`, module `_sleep`)."""
        self.stats.add(retries=1)
        self.policy.pause(attempt, _sleep)

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
        if resp.status in RETRY_STATUSES:
            raise RegistryTransientError(msg + (f": {detail[:300]}" if detail and not code else ""))
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

    def _small(
        self, path: str, limit: int, what: str, headers: dict[str, str]
    ) -> tuple[bytes, Message]:
        """A small body (and the response's headers), read whole; a body that
        breaks off is fetched again, as a transient failure."""
        for attempt in range(self.policy.retries + 1):
            resp = self.request("GET", path, headers=headers, what=what)
            try:
                data = resp.read_limited(limit, what)
            except (OSError, http.client.HTTPException) as exc:
                if attempt == self.policy.retries:
                    raise RegistryTransientError(
                        f"{what} at {self.target.netloc}: the response broke off ({exc!r})"
                    ) from None
            else:
                self.stats.add(received=len(data))
                return data, resp.headers
            finally:
                resp.close()
            self.backoff(attempt)
        raise AssertionError("unreachable")

    def get_small_blob(self, digest: str, limit: int) -> bytes:
        return self._small(self._repo(f"blobs/{digest}"), limit, f"blob {digest}", {})[0]

    def read_blob(
        self, digest: str, size: int, chunk: int = 1 << 20, *, start: int = 0
    ) -> Iterator[bytes]:
        """The first `size` bytes of blob `digest` from byte `start` (a `Range`
        request when it is not 0), in reads of at most `chunk`.

        A response that breaks off (connection cut, idle timeout, an early
        end) is followed by a `Range: bytes=N-` request for the rest; the
        retries (`RetryPolicy`) count failures since the last byte received,
        so a transfer that keeps making progress is never given up. A
        registry that ignores the range (200) has the bytes already received
        read and dropped. `BlobLengthError` if a 200's `Content-Length` is not
        `size`; the caller checks the content.
        """
        if start and start >= size:  # nothing left to read (a size-0 blob is still asked for)
            return
        offset, failures = start, 0
        path, what = self._repo(f"blobs/{digest}"), f"blob {digest}"
        while True:
            headers = {"Range": f"bytes={offset}-"} if offset else {}
            resp = self.request("GET", path, headers=headers, ok=(200, 206), what=what)
            try:
                skip = self._range_start(resp, digest, size, offset)
                while skip:
                    skip -= len(_read_some(resp, min(chunk, skip)))
                while offset < size:
                    data = _read_some(resp, min(chunk, size - offset))
                    offset += len(data)
                    failures = 0
                    self.stats.add(received=len(data))
                    yield data
                return
            except _BodyBroke as exc:
                if failures >= self.policy.retries:
                    raise RegistryTransientError(
                        f"{what} at {self.target.netloc}: the response broke off at byte "
                        f"{offset} of {size} ({exc}), {failures} retries without progress"
                    ) from None
            finally:
                resp.close()
            self.backoff(failures)
            failures += 1

    def _range_start(self, resp: Response, digest: str, size: int, offset: int) -> int:
        """How many bytes of `resp` to drop to reach `offset`."""
        if resp.status == 200:
            length = resp.header("Content-Length")
            if length is not None and length != str(size):
                raise BlobLengthError(
                    f"registry blob {self.describe('@' + digest)} is {length} bytes, not {size}",
                    length=length,
                )
            return offset
        shown = (resp.header("Content-Range") or "").strip()
        got = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)", shown)
        if not got or int(got.group(1)) != offset or got.group(3) not in ("*", str(size)):
            raise RegistryError(
                f"registry {self.target.netloc} answered a range request for blob {digest} from "
                f"byte {offset} with Content-Range {shown!r}"
            )
        return 0

    def upload_blob(
        self,
        digest: str,
        size: int,
        chunks: Iterable[bytes],
        *,
        mount_from: str | None = None,
        chunk_size: int | None = None,
        sessions: UploadSessionStore | None = None,
    ) -> bool:
        """Upload one blob; False if the registry mounted it from `mount_from`
        (another repository of this registry) instead, so no byte was sent.

        A blob of at most `chunk_size` bytes (or any, without one) goes in one
        PUT with `?digest=`; a larger one in PATCH requests of `chunk_size`
        bytes, each resumed once from the offset the registry reports (GET of
        the upload) when its request fails, then a PUT with `?digest=`. If the
        registry cannot report it, `UploadSessionLost`: call again, from the
        blob's first byte.

        With `sessions`, a chunked upload's URL is saved before every PATCH,
        and an upload of the same blob that a killed push left is continued
        from the offset the registry reports for it (its first bytes are read
        from `chunks` and dropped, not sent).
        """
        chunked = chunk_size is not None and size > chunk_size
        if chunked and sessions is not None:
            resumed = self._resume(sessions, digest, size)
            if resumed is not None:
                location, held = resumed
                assert chunk_size is not None
                location = self._upload_chunks(
                    location, size, _skip(chunks, held), chunk_size, digest, held, sessions
                )
                self._finish_upload(location, digest, [], 0)
                sessions.done(digest)
                return True
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
        if chunked:
            assert chunk_size is not None
            location = self._upload_chunks(location, size, chunks, chunk_size, digest, 0, sessions)
            chunks, size = [], 0
        self._finish_upload(location, digest, chunks, size)
        if chunked and sessions is not None:
            sessions.done(digest)
        return True

    def _finish_upload(
        self, location: str, digest: str, chunks: Iterable[bytes], size: int
    ) -> None:
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

    def _resume(
        self, sessions: UploadSessionStore, digest: str, size: int
    ) -> tuple[str, int] | None:
        """The saved upload of `digest` and the bytes the registry holds of it,
        if it still knows it and holds some (more than one byte: a `Range` of
        `0-0` cannot tell none from one), but not all."""
        location = sessions.find(digest)
        if location is None or not self._same_origin(location):
            return None
        try:
            held = self.upload_offset(location)
        except UploadSessionLost:
            return None
        return (location, held) if 1 < held < size else None

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
        self,
        location: str,
        size: int,
        chunks: Iterable[bytes],
        chunk_size: int,
        digest: str,
        offset: int = 0,
        sessions: UploadSessionStore | None = None,
    ) -> str:
        for piece in _rechunk(chunks, chunk_size):
            end = offset + len(piece)
            if sessions is not None:
                sessions.save(digest, location)
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

    def list_tags(self) -> list[str]:
        """Every tag of the repository (`GET /v2/<repo>/tags/list`), following
        the `Link: <…>; rel="next"` pages (`n`, `last`); sorted. Entries that
        are not tags are dropped; a page that leaves the registry or loops is
        refused."""
        url: str | None = self._repo("tags/list") + "?" + urlencode({"n": TAGS_PAGE})
        tags: set[str] = set()
        seen: set[str] = set()
        while url is not None:
            if url in seen or len(seen) >= MAX_TAG_PAGES:
                raise RegistryError(f"registry {self.target.netloc} pages its tag list in a loop")
            seen.add(url)
            data, headers = self._small(url, MAX_TAGS_BYTES, "the tag list", {})
            try:
                obj = json.loads(data)
            except ValueError:
                raise RegistryError(
                    f"registry {self.target.netloc} sent a tag list that is not JSON"
                ) from None
            page = obj.get("tags") if isinstance(obj, dict) else None
            if page is not None and not isinstance(page, list):
                raise RegistryError(f"registry {self.target.netloc} sent a tag list without tags")
            tags.update(t for t in page or () if isinstance(t, str) and TAG.match(t))
            url = _next_link(headers.get("Link"), self.base + self._repo(""))
            if url is not None and not self._same_origin(url):
                raise RegistryError(f"registry sent a tag list page on another host: {url}")
        return sorted(tags)

    def get_manifest(self, reference: str, limit: int) -> tuple[bytes, str]:
        """The manifest bytes and their content type."""
        data, headers = self._small(
            self._repo(f"manifests/{reference}"),
            limit,
            f"manifest {reference}",
            {"Accept": OCI_MANIFEST},
        )
        return data, (headers.get("Content-Type") or "").split(";")[0].strip()

    def get_manifest_as(self, reference: str, limit: int, accept: str) -> bytes:
        """The bytes of a manifest or index, asked for as `accept`."""
        path = self._repo(f"manifests/{reference}")
        return self._small(path, limit, f"manifest {reference}", {"Accept": accept})[0]

    def get_referrers(self, digest: str, limit: int) -> bytes:
        """The referrers API's image index for `digest` (`RegistryNotFoundError`
        from a registry without it)."""
        path = self._repo(f"referrers/{digest}")
        accept = {"Accept": "application/vnd.oci.image.index.v1+json"}
        return self._small(path, limit, f"the referrers of {digest}", accept)[0]

    def put_manifest(self, reference: str, data: bytes) -> str | None:
        return self.put_manifest_with_headers(reference, data, OCI_MANIFEST)[0]

    def put_manifest_with_headers(
        self, reference: str, data: bytes, content_type: str
    ) -> tuple[str | None, Message]:
        """PUT a manifest (or an index); its digest and the response's headers."""
        resp = self.request(
            "PUT",
            self._repo(f"manifests/{reference}"),
            headers={"Content-Type": content_type},
            body=data,
            ok=(201,),
            what=f"manifest {reference}",
        )
        try:
            return resp.header("Docker-Content-Digest"), resp.headers
        finally:
            resp.close()


_LINK_NEXT = re.compile(r'<([^>]*)>\s*;\s*rel="?next"?')


def _next_link(header: str | None, base: str) -> str | None:
    """The `rel="next"` URL of a `Link` header, resolved against `base`."""
    match = _LINK_NEXT.search(header or "")
    return urljoin(base, match.group(1)) if match else None


def _skip(chunks: Iterable[bytes], n: int) -> Iterator[bytes]:
    """`chunks` without their first `n` bytes."""
    for chunk in chunks:
        if n >= len(chunk):
            n -= len(chunk)
            continue
        yield chunk[n:] if n else chunk
        n = 0


class _BodyBroke(Exception):
    """A response body ended before its last byte (internal to `read_blob`)."""


def _read_some(resp: Response, n: int) -> bytes:
    try:
        data = resp.read(n)
    except (OSError, http.client.HTTPException) as exc:
        raise _BodyBroke(repr(exc)) from None
    if not data:
        raise _BodyBroke("early end")
    return data


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
