"""A fault-injecting HTTP proxy on 127.0.0.1, in front of the S3 test server.

One request per connection: the proxy reads a request (head and body), tells
the server `Connection: close`, and relays the response back, so a client
that pools connections still opens one connection per request and every
request can be judged on its own. `rule(request)` decides each request's fault:

- `Fault("cut", after=N)`: relay N response bytes, then close the connection
  to the client (a FIN after the bytes relayed: the client reads them, then
  the end of a body that is not complete; a reset instead would let the
  kernel drop what the client had not read yet, and no byte would count);
- `Fault("stall", after=N)`: relay N bytes, then forward nothing more and keep
  the sockets open until the client gives up (or the proxy stops);
- `Fault("drip", chunk=C, delay=D)`: relay the response C bytes at a time, D
  seconds apart;
- `Fault("status", status=503)`: answer with that status (503 is S3's
  `SlowDown`) without asking the server;
- `Fault("stall_upload", after=N)`: read N bytes of the request body, then
  read nothing more (a server that stopped reading an upload: the client's
  sends block once the socket buffers are full) until the client gives up;
- `Fault("drip_upload", chunk=C, delay=D)`: read the request body C bytes at
  a time, D seconds apart (a slow uplink), then relay as usual;
- `Fault("hold", delay=D)`: keep the request D seconds before forwarding it
  (the request, body included, was read whole), then forward it only if the
  client is still connected: a client killed meanwhile never reaches the
  server;
- `reset_connections=K`: the next K connections are reset on connect, before
  a byte of the request is read.

Every request is recorded (method, path, Range header, fault, request body
bytes, response bytes relayed), so tests can count what was fetched and sent.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

FaultKind = Literal["cut", "stall", "drip", "status", "hold", "stall_upload", "drip_upload"]


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    after: int = 0
    chunk: int = 4096
    delay: float = 0.01
    status: int = 503


@dataclass
class Request:
    method: str
    path: str
    range: str | None
    fault: Fault | None
    length: int = 0  # the request body's declared length
    relayed: int = 0  # response bytes sent to the client, head included
    body_relayed: int = 0  # response body bytes sent to the client
    body_sent: int = 0  # request body bytes forwarded to the server


_REASONS = {403: "Forbidden", 404: "Not Found", 500: "Internal Server Error", 503: "Slow Down"}
_CODES = {403: "AccessDenied", 404: "NoSuchKey", 500: "InternalError", 503: "SlowDown"}


def _abort(sock: socket.socket) -> None:
    """Reset a connection (SO_LINGER 0 + shutdown): a recv blocked on it in any
    thread wakes."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


def _gone(sock: socket.socket) -> bool:
    """The peer closed the connection (a FIN or a reset is waiting)."""
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def _read_head(sock: socket.socket) -> tuple[bytes, bytes] | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
        if len(data) > 1 << 20:
            raise ValueError("request head too large")
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _header(lines: list[bytes], name: bytes) -> bytes | None:
    for line in lines[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip()
    return None


@dataclass
class FaultProxy:
    upstream: tuple[str, int]
    rule: Callable[[Request], Fault | None] = lambda request: None
    reset_connections: int = 0
    requests: list[Request] = field(default_factory=list)
    stalled: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, name="fault-proxy", daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self, rule: Callable[[Request], Fault | None] | None = None) -> None:
        """A new rule (default: no faults) and an empty request log."""
        with self._lock:
            self.rule = rule or (lambda request: None)
            self.requests = []
            self.reset_connections = 0
            self.stalled.clear()

    def matching(self, text: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if text in r.path]

    def stop(self) -> None:
        self._stopping.set()
        _abort(self._listener)
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            _abort(sock)
        self._thread.join(timeout=5)

    # --- internals ----------------------------------------------------------------

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._track(client)
            with self._lock:
                reset = self.reset_connections > 0
                if reset:
                    self.reset_connections -= 1
            if reset:
                _abort(client)
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            got = _read_head(client)
            if got is None:
                return
            head, rest = got
            lines = head.split(b"\r\n")
            method, path, _ = lines[0].decode("latin-1").split(" ", 2)
            length = int(_header(lines, b"content-length") or b"0")
            rng = _header(lines, b"range")
            request = Request(method, path, rng.decode() if rng else None, None, length)
            with self._lock:
                request.fault = self.rule(request)
                self.requests.append(request)
            fault = request.fault
            if fault is not None and fault.kind == "stall_upload" and length > fault.after:
                while len(rest) < fault.after:
                    chunk = client.recv(fault.after - len(rest))
                    if not chunk:
                        return
                    rest += chunk
                self.stalled.set()
                self._stopping.wait(120)  # read nothing: the client must give up
                return
            drip = fault is not None and fault.kind == "drip_upload"
            step = fault.chunk if fault is not None and drip else 1 << 20
            while len(rest) < length:
                chunk = client.recv(min(step, length - len(rest)))
                if not chunk:
                    return
                rest += chunk
                if fault is not None and drip:
                    time.sleep(fault.delay)
            if fault is not None and fault.kind == "status":
                self._answer(client, request, fault.status)
                return
            if fault is not None and fault.kind == "hold":
                time.sleep(fault.delay)
                if _gone(client):
                    return
            kept = [line for line in lines[1:] if not line.lower().startswith(b"connection:")]
            out = b"\r\n".join([lines[0], *kept, b"Connection: close"]) + b"\r\n\r\n" + rest
            upstream = socket.create_connection(self.upstream)
            self._track(upstream)
            upstream.sendall(out)
            request.body_sent = len(rest)
            self._relay(upstream, client, request, fault)
        except OSError:
            return
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.close()

    def _answer(self, client: socket.socket, request: Request, status: int) -> None:
        body = (
            f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{_CODES.get(status, 'Error')}"
            f"</Code><Message>injected by the test proxy</Message></Error>"
        ).encode()
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
            f"Content-Type: application/xml\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        client.sendall(head + body)
        request.relayed += len(head) + len(body)

    def _relay(
        self,
        upstream: socket.socket,
        client: socket.socket,
        request: Request,
        fault: Fault | None,
    ) -> None:
        head_left: int | None = None  # bytes of the response head still to come
        seen = b""
        while True:
            data = upstream.recv(fault.chunk if fault and fault.kind == "drip" else 65536)
            if not data:
                return
            if fault is not None and fault.kind in ("cut", "stall"):
                room = fault.after - request.relayed
                if room < len(data):
                    self._send(client, request, data[: max(room, 0)], seen, head_left)
                    if fault.kind == "cut":
                        with contextlib.suppress(OSError):
                            client.shutdown(socket.SHUT_RDWR)
                        _abort(upstream)
                        return
                    self._hold(client)
                    return
            seen, head_left = self._send(client, request, data, seen, head_left)
            if fault is not None and fault.kind == "drip":
                time.sleep(fault.delay)

    def _send(
        self,
        client: socket.socket,
        request: Request,
        data: bytes,
        seen: bytes,
        head_left: int | None,
    ) -> tuple[bytes, int | None]:
        if not data:
            return seen, head_left
        client.sendall(data)
        request.relayed += len(data)
        if head_left is None:
            seen += data
            end = seen.find(b"\r\n\r\n")
            if end < 0:
                return seen, None
            request.body_relayed += len(seen) - end - 4
            return b"", 0
        request.body_relayed += len(data)
        return seen, head_left

    def _hold(self, client: socket.socket) -> None:
        """Stall: keep the connection open, forward nothing, until the client
        hangs up or the proxy stops."""
        self.stalled.set()
        client.settimeout(0.1)
        while not self._stopping.is_set():
            try:
                if not client.recv(65536):
                    return
            except TimeoutError:
                continue
            except OSError:
                return
