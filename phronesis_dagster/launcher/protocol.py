"""What the run launcher and its warm worker say to each other over a Unix socket: one JSON
object per line each way, one request per connection.

Requests: `{"op": "ping"}` -> `{"ok": true, "pid": <worker pid>}`;
`{"op": "execute_run", "args": <serialized ExecuteRunArgs>}` -> `{"ok": true, "pid": <child
pid>}` once the child executing the run is forked, or `{"ok": false, "error": "..."}` when
nothing was forked."""

from __future__ import annotations

import json
import socket
from typing import Any

PING = "ping"
EXECUTE_RUN = "execute_run"
# A reply is a few dozen bytes; a request carries a serialized ExecuteRunArgs (an instance ref
# and a run id: a few kilobytes).
MAX_MESSAGE_BYTES = 1 << 20


class ProtocolError(RuntimeError):
    """The other side closed the connection or sent something that is not one JSON line."""


def send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall(json.dumps(message).encode() + b"\n")


def receive(sock: socket.socket) -> dict[str, Any]:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            raise ProtocolError("connection closed before a complete message")
        chunks.append(chunk)
        size += len(chunk)
        if chunk.endswith(b"\n"):
            break
        if size > MAX_MESSAGE_BYTES:
            raise ProtocolError(f"message longer than {MAX_MESSAGE_BYTES} bytes")
    try:
        message = json.loads(b"".join(chunks))
    except ValueError as exc:
        raise ProtocolError(f"not JSON: {exc}") from exc
    if not isinstance(message, dict):
        raise ProtocolError("not a JSON object")
    return message


def connect(path: str, timeout: float) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        raise
    return sock


def request(path: str, message: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Send `message` to the worker listening on `path` and return its reply."""
    with connect(path, timeout) as sock:
        send(sock, message)
        return receive(sock)
