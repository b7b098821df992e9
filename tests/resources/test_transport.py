"""The provider clients' HTTP/1.1 transport (resources/transport.py), against a scripted server.

Each test's server answers each request with the bytes the test gives it (or closes, or stays
silent), so the cases a real provider or network produces on the wire can be written down:
keep-alive, a connection closed while idle, chunked and gzip bodies, a body cut short, a silent
server. What the provider clients build on is checked as httpx shows it to them: the response,
httpx's exception types, the trace event the call guard takes its rate-limit slot on."""

from __future__ import annotations

import gzip
import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator

import httpx
import pytest
import trustme

from phronesis_dagster.resources.transport import SEND_HEADERS_EVENT, transport_for

# What the server does with one request: the bytes to answer (then it reads the next request,
# or closes when they say `Connection: close`), the bytes and then close, or None: close at once.
Reply = Callable[[bytes], bytes | tuple[bytes, str] | None]
CLOSE = "close"


def answer(status: int, body: bytes, *headers: str) -> bytes:
    head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def ok(body: dict) -> bytes:
    return answer(200, json.dumps(body).encode(), "Content-Type: application/json")


class ScriptedServer:
    """A TCP (or TLS) server on 127.0.0.1: every request gets `reply(request bytes)`."""

    def __init__(self, reply: Reply, tls: ssl.SSLContext | None = None) -> None:
        self.reply = reply
        self.requests: list[bytes] = []
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._tls = tls
        self.port = self._listener.getsockname()[1]
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self._tls is not None:
                conn = self._tls.wrap_socket(conn, server_side=True)
            self._open.append(conn)
            buffer = b""
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, rest = buffer.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(rest) < length:
                    rest += conn.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + rest[:length])
                buffer = rest[length:]
                out = self.reply(self.requests[-1])
                if out is None:
                    conn.close()
                    return
                out, then = out if isinstance(out, tuple) else (out, "")
                conn.sendall(out)
                if then == CLOSE or b"\r\nConnection: close\r\n" in out:
                    conn.close()
                    return
        except OSError:
            return

    def close_idle_connections(self) -> None:
        """What a server's keep-alive timeout does to a connection nobody is using."""
        for conn in self._open:
            try:
                # shutdown, not only close: another thread is blocked reading it.
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def stop(self) -> None:
        self._listener.close()
        self.close_idle_connections()


@pytest.fixture
def serve() -> Iterator[Callable[..., ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(reply: Reply, tls: ssl.SSLContext | None = None) -> ScriptedServer:
        servers.append(ScriptedServer(reply, tls))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def client(
    server: ScriptedServer,
    *,
    scheme: str = "http",
    context: ssl.SSLContext | None = None,
    read_timeout: float = 2.0,
    **kw,
) -> httpx.Client:
    transport = transport_for(httpx, context or ssl.create_default_context())
    assert transport is not None
    return httpx.Client(
        base_url=f"{scheme}://localhost:{server.port}",
        transport=transport,
        timeout=httpx.Timeout(read_timeout, connect=2.0),
        **kw,
    )


def test_requests_share_one_kept_alive_connection(serve):
    """Calls in a row reuse the connection (no TCP set-up per call), and each gets its own
    answer with the request exactly as httpx made it."""
    server = serve(lambda req: ok({"n": req.split(b" ")[1].decode()}))
    with client(server) as http:
        answers = [http.get("/people", params={"q": str(i)}).json()["n"] for i in range(5)]
        posted = http.post("/match", json={"name": "Ada"})
    assert answers == [f"/people?q={i}" for i in range(5)]
    assert posted.status_code == 200
    assert server.connections == 1
    head, _, body = server.requests[-1].partition(b"\r\n\r\n")
    assert head.startswith(b"POST /match HTTP/1.1\r\n")
    assert b"\r\nHost: localhost:" in head and b"\r\nContent-Length: 14" in head
    assert json.loads(body) == {"name": "Ada"}


def test_a_connection_the_server_closed_while_idle_is_not_used(serve):
    """A provider's keep-alive timeout closes idle connections; the next call must not fail
    on one (it opens a new connection instead)."""
    server = serve(lambda req: ok({}))
    with client(server) as http:
        assert http.get("/a").status_code == 200
        server.close_idle_connections()
        assert http.get("/b").status_code == 200
    assert server.connections == 2


def test_chunked_gzip_and_close_delimited_bodies_read_whole(serve):
    """The three ways an HTTP/1.1 body ends, and a gzip body decoded by httpx as before."""
    zipped = gzip.compress(b'{"kind": "gzip"}')
    replies = {
        b"/chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (b'{"kin', b'd": "chunks', b'"}', b"")),
        b"/gzip": answer(200, zipped, "Content-Encoding: gzip"),
        b"/until-close": b'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{"kind": "close"}',
    }
    server = serve(lambda req: replies[req.split(b" ")[1]])
    with client(server) as http:
        assert http.get("/chunked").json() == {"kind": "chunks"}
        assert http.get("/gzip").json() == {"kind": "gzip"}
        closed = http.get("/until-close")
        assert closed.json() == {"kind": "close"}
        assert http.get("/gzip").json() == {"kind": "gzip"}  # on a new connection
    assert closed.headers.get("connection") == "close"
    assert server.connections == 2


def test_failures_raise_httpx_errors(serve):
    """What retries and the SDK's error mapping catch: a body cut short and a server that
    closes without answering are protocol errors, a silent server a read timeout, a refused
    port a connect error."""
    replies: dict[bytes, bytes | tuple[bytes, str] | None] = {
        b"/short": (b'HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{"cut', CLOSE),
        b"/nothing": None,
        b"/garbage": b"NOT HTTP AT ALL\r\n\r\n",
    }
    silent = threading.Event()

    def reply(req: bytes) -> bytes | tuple[bytes, str] | None:
        path = req.split(b" ")[1]
        if path == b"/silent":
            silent.wait(5)
            return None
        return replies[path]

    server = serve(reply)
    with client(server, read_timeout=0.3) as http:
        with pytest.raises(httpx.RemoteProtocolError, match="complete message body"):
            http.get("/short")
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            http.get("/nothing")
        with pytest.raises(httpx.RemoteProtocolError, match="malformed"):
            http.get("/garbage")
        with pytest.raises(httpx.ReadTimeout):
            http.get("/silent")
        silent.set()
    free = socket.create_server(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    with (
        httpx.Client(transport=transport_for(httpx, ssl.create_default_context())) as http,
        pytest.raises(httpx.ConnectError),
    ):
        http.get(f"http://127.0.0.1:{port}/")


def test_trace_event_before_each_request_redirect_hops_included(serve):
    """The call guard takes a rate-limit slot on this event: once per request on the wire,
    each redirect hop too, and nothing is sent when taking the slot fails."""
    replies = {
        b"/old": answer(301, b"", "Location: /new"),
        b"/new": ok({"moved": True}),
    }
    server = serve(lambda req: replies[req.split(b" ")[1]])
    events: list[str] = []
    with client(server, follow_redirects=True) as http:
        moved = http.get("/old", extensions={"trace": lambda event, info: events.append(event)})
        assert moved.json() == {"moved": True}
        assert events == [SEND_HEADERS_EVENT, SEND_HEADERS_EVENT]
        assert len(server.requests) == 2

        def refuse(event: str, info: object) -> None:
            raise TimeoutError("no slot")

        with pytest.raises(TimeoutError, match="no slot"):
            http.get("/new", extensions={"trace": refuse})
        assert len(server.requests) == 2
        assert http.get("/new").json() == {"moved": True}
    assert server.connections == 1


def test_tls_with_a_trusted_and_an_untrusted_certificate(serve):
    """The real providers are HTTPS: the certificate is checked against the client's context
    (one that does not trust the issuer refuses the connection), and the request goes through
    the TLS connection as over TCP."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_context)
    server = serve(lambda req: ok({"tls": True}), tls=server_context)
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    with client(server, scheme="https", context=trusting) as http:
        assert [http.get("/").json() for _ in range(2)] == [{"tls": True}] * 2
    assert server.connections == 1
    with (
        client(server, scheme="https", context=ssl.create_default_context()) as http,
        pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        http.get("/")


def test_a_proxy_in_the_environment_leaves_httpx_default_transport(monkeypatch):
    """httpx's default transport honours HTTPS_PROXY; this one does not speak to proxies, so
    a client in such an environment keeps httpx's own."""
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert transport_for(httpx, ssl.create_default_context()) is None
