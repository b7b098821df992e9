"""Request/response types and the provider interface shared by the five provider modules."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from phronesis_dagster.emulator.config import EmulatorConfig

JSON_TYPE = "application/json"


@dataclass
class Request:
    """One parsed HTTP request, with the provider prefix already stripped from `path`."""

    method: str
    prefix: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    _json: Any = field(default=None, repr=False)
    _parsed: bool = field(default=False, repr=False)

    def header(self, name: str) -> str | None:
        """Case-insensitive header lookup."""
        return self.headers.get(name)

    def json(self) -> Any:
        """The JSON body; raises ValueError when the body is not JSON."""
        if not self._parsed:
            self._json = json.loads(self.body.decode("utf-8")) if self.body else None
            self._parsed = True
        return self._json

    def json_object(self) -> dict[str, Any] | None:
        """The JSON body if it is an object, else None (invalid JSON included)."""
        try:
            value = self.json()
        except ValueError:
            return None
        return value if isinstance(value, dict) else None


@dataclass
class Response:
    """What a handler answers; the server adds Content-Length and latency."""

    status: int
    body: bytes = b""
    content_type: str = JSON_TYPE
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
        """A JSON response, compact like the real APIs."""
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        return cls(status, body, JSON_TYPE, dict(headers or {}))

    @classmethod
    def text(
        cls, status: int, text: str, content_type: str, headers: dict[str, str] | None = None
    ) -> Response:
        """A text response (HTML, XML, plain)."""
        return cls(status, text.encode("utf-8"), content_type, dict(headers or {}))


def request_id() -> str:
    """A random request id; ids are not part of the seeded data, like the real APIs."""
    return uuid.uuid4().hex


class Provider:
    """Base class of one emulated provider.

    The server runs, in order: `authenticate`, the rate limit (`rate_limited`), injected
    faults (`server_error`, `rate_limited`, `malformed`) and then `handle`; `decorate` adds
    headers the provider sends on every authenticated answer.
    """

    name: str = ""
    prefixes: tuple[str, ...] = ()
    server_error_statuses: tuple[int, ...] = (500, 502, 503)

    def __init__(self, config_getter: Callable[[], EmulatorConfig]) -> None:
        self._config = config_getter

    @property
    def config(self) -> EmulatorConfig:
        """The live configuration (replaced at runtime by the admin endpoint)."""
        return self._config()

    @property
    def seed(self) -> int:
        """The data seed."""
        return self.config.seed

    # Named cases `ProviderFaults.scenario` switches on (besides the redirect ones below).
    scenarios: tuple[str, ...] = ()

    def request_key(self, req: Request) -> str | None:
        """What was asked for (email, URL, query, CIK...), recorded in the stats."""
        return None

    def rate_group(self, req: Request) -> str | None:
        """The endpoint group the provider limits separately (None = the provider's limit)."""
        return None

    def scenario(self, req: Request, name: str, serve: Callable[[], Response]) -> Response:
        """The answer of the named case `name`; `serve()` is the normal answer.

        `redirect`: a 307 to the same URL with `_redirected=1` (307 keeps the method and body,
        RFC 9110 section 15.4.8; API gateways answer so when a host or path moved), then the
        normal answer; `redirect_loop`: a 307 to itself every time."""
        if name in ("redirect", "redirect_loop"):
            if name == "redirect" and "_redirected" in req.query:
                return serve()
            location = req.prefix + req.path + ("" if name == "redirect_loop" else "?_redirected=1")
            return Response.json(307, {"moved": location}, {"Location": location})
        return self.scenario_answer(req, name, serve)

    def scenario_answer(self, req: Request, name: str, serve: Callable[[], Response]) -> Response:
        """Provider modules answer their own `scenarios` here."""
        raise ValueError(
            f"{self.name}: unknown scenario {name!r}; "
            f"expected one of {sorted({'redirect', 'redirect_loop', *self.scenarios})}"
        )

    def authenticate(self, req: Request) -> Response | None:
        """None when the credentials are acceptable, else the provider's refusal."""
        return None

    def unauthorized(self, req: Request) -> Response:
        """The provider's answer to a bad credential."""
        raise NotImplementedError

    def rate_limited(self, req: Request, retry_after: int) -> Response:
        """The provider's 429 (or equivalent) with its Retry-After."""
        raise NotImplementedError

    def server_error(self, req: Request, status: int) -> Response:
        """The provider's 5xx body for `status`."""
        raise NotImplementedError

    def malformed(self, req: Request, response: Response, rng: random.Random) -> Response:
        """A 200 whose body a client cannot use; by default the body cut in half."""
        cut = max(1, len(response.body) // 2)
        return Response(200, response.body[:cut], response.content_type, dict(response.headers))

    def handle(self, req: Request) -> Response:
        """Answer an authenticated, admitted request."""
        raise NotImplementedError

    def decorate(self, req: Request, response: Response) -> None:
        """Add headers sent on every authenticated answer (rate-limit counters, ids)."""


def api_key(req: Request, *names: str) -> str | None:
    """The first present credential among header `names`; `Authorization: Bearer` too."""
    for name in names:
        value = req.header(name)
        if value is not None:
            return value.strip()
    auth = req.header("authorization") or ""
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return None


def key_is_valid(key: str | None) -> bool:
    """Any non-empty key is accepted except the literal 'invalid'."""
    return bool(key) and key != "invalid"
