"""The HTTP/1.1 transport under the provider clients' httpx (and the anthropic SDK's httpx2).

httpx stays the client of every provider call: URLs, headers, redirects, cookies, content
decoding (gzip), timeouts and event hooks are httpx's own. Under it, httpx's default transport
(httpcore over h11) is replaced by this one, through the seam httpx offers for it
(`transport=`, a `BaseTransport` with `handle_request`:
https://www.python-httpx.org/advanced/transports/).

Why a transport of our own: the CPU of a provider request is the cost that decides how many
runs a core serves (issue 11: at most 2 ms a request, bookkeeping included), and on a bulk run
at the providers' published limits every call starts on a core that went idle, where each
function a request passes through costs several times what it costs in a loop. httpcore and h11
were a third of a whole call's Python (cProfile of 300 Apollo calls: header validation with a
regex per header, a state machine of events per request and per response, `enforce_bytes` and
`trace` per step). With this transport bench/call_cost.py's whole call (the five providers'
mean, alternating runs on 2026-12-07) went from 2.05-2.07 to 1.52-1.79 ms in a loop and from
2.90-2.93 to 2.32-2.41 ms after 50 ms idle. What is left of a request is httpx's own client
and the response parser, httptools (Node's llhttp in C, the parser uvicorn uses): the Python
per request is one `sendall` and a `recv` or two. No well-kept library sits at this seam with
less per request: httpx's other transports are httpcore's, urllib3 parses headers with the
`email` package, and pycurl would replace httpx's timeouts and errors rather than serve them.

What it does, as httpcore does: HTTP/1.1 (no HTTP/2: the clients never enable it), a pool of
idle keep-alive connections per origin (at most `MAX_IDLE_PER_ORIGIN`, dropped after
`KEEPALIVE_EXPIRY_SECONDS`, and dropped when the server closed them while idle), TLS with the
client's `ssl.SSLContext` (SNI, handshake within the connect timeout), the request's timeouts
(connect, write, read per receive), httpcore's trace event "http11.send_request_headers.started"
just before a request's bytes are written (the call guard takes its rate-limit slot there), and
httpx's exceptions for every failure (`ConnectTimeout`, `ConnectError`, `WriteTimeout`,
`WriteError`, `ReadTimeout`, `ReadError`, `RemoteProtocolError`), so retries and the SDK's
error mapping see what they saw before.

What it does not do: proxies (`transport_for` leaves the client on httpx's default transport,
which honours HTTP(S)_PROXY, when the environment names one); streaming (a response's body is
read whole before `handle_request` returns: provider answers are JSON documents and filings of
at most a few MB; the SDK is used without `stream=True`); pipelining and `Expect: 100-continue`
(never sent by these clients).
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
import time
import urllib.request
from functools import cache
from types import ModuleType
from typing import Any

import httptools

# httpx's own defaults (`httpx.Limits`): idle connections kept per pool, and for how long.
MAX_IDLE_PER_ORIGIN = 20
KEEPALIVE_EXPIRY_SECONDS = 5.0
RECEIVE_BYTES = 64 * 1024
DEFAULT_PORTS = {b"http": 80, b"https": 443}
# httpcore's name for the moment a request's headers are about to be written; the call guard's
# trace hook (`ProviderCall.on_wire`) takes its rate-limit slot on it.
SEND_HEADERS_EVENT = "http11.send_request_headers.started"
NO_RESPONSE = "Server disconnected without sending a response."  # httpcore's words


class _Response:
    """One response as httptools parses it (its callbacks)."""

    __slots__ = ("parser", "status", "reason", "headers", "body", "complete", "keep_alive")

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0  # set once the headers are in
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.complete = False
        self.keep_alive = False

    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.complete = True
        # Asked here: once this callback returns, the parser is reset for a next message.
        self.keep_alive = self.parser.should_keep_alive()

    def delimited(self) -> bool:
        """The body's end is marked (Content-Length or chunked), not the connection's close."""
        return any(
            name.lower() in (b"content-length", b"transfer-encoding") for name, _ in self.headers
        )


def _closed_while_idle(sock: socket.socket) -> bool:
    """An idle keep-alive connection that reads as ready has either been closed by the server
    (EOF) or holds bytes nobody asked for: either way it cannot carry a request (httpcore's
    `is_readable` check)."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


class _Http11:
    """The transport's logic, for either httpx module (see `transport_for`)."""

    def __init__(self, http: ModuleType, ssl_context: ssl.SSLContext) -> None:
        self._http = http
        self.ssl_context = ssl_context
        self._idle: dict[tuple[bytes, str, int], list[tuple[socket.socket, float]]] = {}
        self._lock = threading.Lock()
        self._closed = False

    # -- httpx's BaseTransport ---------------------------------------------------------------

    def handle_request(self, request: Any) -> Any:
        http = self._http
        url = request.url
        scheme = url.raw_scheme
        if scheme not in DEFAULT_PORTS:
            raise http.UnsupportedProtocol(f"unsupported URL scheme {scheme!r}", request=request)
        origin = (scheme, url.raw_host.decode("ascii"), url.port or DEFAULT_PORTS[scheme])
        timeouts = request.extensions.get("timeout", {})
        payload = self._payload(request)
        sock = self._checkout(origin) or self._connect(origin, timeouts.get("connect"), request)
        try:
            trace = request.extensions.get("trace")
            if trace is not None:
                trace(SEND_HEADERS_EVENT, {"request": request})
        except BaseException:
            self._checkin(origin, sock)  # nothing was written: the connection is as it was
            raise
        try:
            self._send(sock, payload, timeouts.get("write"), request)
            answer, reusable = self._receive(sock, timeouts.get("read"), request)
        except BaseException:
            sock.close()
            raise
        if reusable:
            self._checkin(origin, sock)
        else:
            sock.close()
        return http.Response(
            answer.status,
            headers=answer.headers,
            stream=http.ByteStream(b"".join(answer.body)),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": answer.reason},
        )

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for sock, _ in conns:
                sock.close()

    # -- the steps -----------------------------------------------------------------------------

    @staticmethod
    def _payload(request: Any) -> bytes:
        """The request's bytes: its line, its headers as httpx made them (Host, Content-Length
        or Transfer-Encoding included), its body (read whole; a streamed body goes out as one
        chunk)."""
        body = request.read()
        lines = [request.method.encode("ascii"), b" ", request.url.raw_path, b" HTTP/1.1\r\n"]
        chunked = False
        for name, value in request.headers.raw:
            lines += (name, b": ", value, b"\r\n")
            chunked = chunked or (
                name.lower() == b"transfer-encoding" and value.lower() == b"chunked"
            )
        lines.append(b"\r\n")
        if chunked:
            lines += (b"%x\r\n" % len(body), body, b"\r\n0\r\n\r\n") if body else (b"0\r\n\r\n",)
        else:
            lines.append(body)
        return b"".join(lines)

    def _checkout(self, origin: tuple[bytes, str, int]) -> socket.socket | None:
        """An idle connection to `origin` still fit to carry a request, else None."""
        now = time.monotonic()
        stale = []
        found = None
        with self._lock:
            idle = self._idle.get(origin)
            while idle:
                sock, since = idle.pop()
                if now - since <= KEEPALIVE_EXPIRY_SECONDS and not _closed_while_idle(sock):
                    found = sock
                    break
                stale.append(sock)
        for sock in stale:
            sock.close()
        return found

    def _checkin(self, origin: tuple[bytes, str, int], sock: socket.socket) -> None:
        with self._lock:
            idle = self._idle.setdefault(origin, [])
            if not self._closed and len(idle) < MAX_IDLE_PER_ORIGIN:
                idle.append((sock, time.monotonic()))
                return
        sock.close()

    def _connect(
        self, origin: tuple[bytes, str, int], timeout: float | None, request: Any
    ) -> socket.socket:
        http = self._http
        scheme, host, port = origin
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except TimeoutError as exc:
            raise http.ConnectTimeout(str(exc) or "connect timed out", request=request) from exc
        except OSError as exc:
            raise http.ConnectError(str(exc), request=request) from exc
        try:
            # As httpcore does: a request's bytes go out at once, not after the peer's ACK.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if scheme == b"https":
                # The handshake runs here, within the connect timeout (the socket's).
                sock = self.ssl_context.wrap_socket(sock, server_hostname=host)
        except TimeoutError as exc:
            sock.close()
            raise http.ConnectTimeout(
                str(exc) or "TLS handshake timed out", request=request
            ) from exc
        except OSError as exc:  # ssl.SSLError included: a refused certificate, say
            sock.close()
            raise http.ConnectError(str(exc), request=request) from exc
        return sock

    def _send(
        self, sock: socket.socket, payload: bytes, timeout: float | None, request: Any
    ) -> None:
        http = self._http
        sock.settimeout(timeout)
        try:
            sock.sendall(payload)
        except TimeoutError as exc:
            raise http.WriteTimeout(str(exc) or "write timed out", request=request) from exc
        except OSError as exc:
            raise http.WriteError(str(exc), request=request) from exc

    def _receive(
        self, sock: socket.socket, timeout: float | None, request: Any
    ) -> tuple[_Response, bool]:
        """The whole response, and whether its connection can carry another request."""
        http = self._http
        answer = _Response()
        sock.settimeout(timeout)
        received = False
        head = request.method == "HEAD"
        while not answer.complete:
            try:
                data = sock.recv(RECEIVE_BYTES)
            except TimeoutError as exc:
                raise http.ReadTimeout(str(exc) or "read timed out", request=request) from exc
            except OSError as exc:
                raise http.ReadError(str(exc), request=request) from exc
            if not data:
                if answer.status and not answer.delimited():
                    return answer, False  # a body that ends with the connection
                raise http.RemoteProtocolError(
                    "peer closed connection without sending complete message body"
                    if received
                    else NO_RESPONSE,
                    request=request,
                )
            received = True
            try:
                answer.parser.feed_data(data)
            except httptools.HttpParserError as exc:
                raise http.RemoteProtocolError(
                    f"malformed HTTP response: {exc}", request=request
                ) from exc
            if head and answer.status:
                return answer, False  # no body follows; not worth keeping
        return answer, answer.keep_alive


@cache
def _transport_class(http: ModuleType) -> type:
    """The transport as a `BaseTransport` of `http` (httpx, or the SDK's httpx2: the same
    API under another name): the type each module's client is declared to take, and the base's
    context-manager methods."""
    return type("Http11Transport", (_Http11, http.BaseTransport), {"__module__": __name__})


def transport_for(http: ModuleType, ssl_context: ssl.SSLContext) -> Any | None:
    """The transport for a client of `http` (httpx or httpx2), or None when the environment
    names a proxy: the client then builds httpx's default transport, which honours it."""
    if urllib.request.getproxies():
        return None
    return _transport_class(http)(http, ssl_context)
