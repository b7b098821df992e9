"""HTTP plumbing of the emulator: routing, latency, rate limits, fault injection and stats.

One `ThreadingHTTPServer` serves every provider under a path prefix that stands in for the
provider's host, so real clients only need a different `base_url`.
"""

from __future__ import annotations

import _thread
import copy
import importlib
import json
import math
import random
import threading
import time
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from phronesis_dagster.emulator.base import Provider, Request, Response
from phronesis_dagster.emulator.config import EmulatorConfig
from phronesis_dagster.resources.registry import PROVIDERS, emulator_name

ADMIN_PREFIX = "/_emulator"
# Keys kept per provider in the stats; enough for any test, bounded for long demo runs.
MAX_KEYS_PER_PROVIDER = 200_000
# Request bodies kept for `received()`: what a real client actually sent (privacy tests).
MAX_RECEIVED = 1000


class _Stats:
    """Thread-safe request counters, exposed by `GET /_emulator/stats`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._total = 0
            self._requests: dict[str, int] = defaultdict(int)
            # Per rate-limit bucket ("apollo.enrichment", or the provider's own name for the
            # endpoints it limits together): what a benchmark compares with each limit.
            self._groups: dict[str, int] = defaultdict(int)
            self._responses: dict[str, dict[str, dict[str, int]]] = defaultdict(
                lambda: defaultdict(lambda: defaultdict(int))
            )
            self._keys: dict[str, list[str]] = defaultdict(list)
            # Requests per provider per whole second since the reset: shows whether a
            # benchmark kept its bottleneck provider busy or let it idle.
            self._started = time.monotonic()
            self._per_second: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))

    def record(
        self, provider: str, route: str, status: int, key: str | None, bucket: str | None = None
    ) -> None:
        with self._lock:
            self._total += 1
            self._requests[provider] += 1
            self._groups[bucket or provider] += 1
            self._responses[provider][route][str(status)] += 1
            self._per_second[provider][int(time.monotonic() - self._started)] += 1
            if key is not None and len(self._keys[provider]) < MAX_KEYS_PER_PROVIDER:
                self._keys[provider].append(key)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "total": self._total,
                "requests": dict(self._requests),
                "groups": dict(self._groups),
                "responses": {
                    p: {route: dict(codes) for route, codes in routes.items()}
                    for p, routes in self._responses.items()
                },
                "keys": {p: list(keys) for p, keys in self._keys.items()},
                "per_second": {
                    p: [seconds.get(i, 0) for i in range(max(seconds, default=-1) + 1)]
                    for p, seconds in self._per_second.items()
                },
            }


class _RateLimiter:
    """Fixed one-second windows per provider; answers the seconds until the window ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[int, int]] = {}

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()

    def admit(self, provider: str, limit: float | None) -> int | None:
        """None if admitted, else the Retry-After in whole seconds."""
        if limit is None:
            return None
        now = time.monotonic()
        window = int(now)
        with self._lock:
            start, count = self._windows.get(provider, (window, 0))
            if start != window:
                start, count = window, 0
            if count >= limit:
                return max(1, math.ceil(start + 1 - now))
            self._windows[provider] = (start, count + 1)
            return None


class _Server(ThreadingHTTPServer):
    """One thread per connection, started without waiting for it to run.

    `ThreadingMixIn` starts a `threading.Thread` per accepted connection, and `Thread.start()`
    blocks until the new thread has been scheduled. When a run process opens its ~70 connections
    at once, the accept loop then waits for each thread in turn, behind the GIL: measured on the
    two-run scale-out test, the first request of a new connection reached the handler 50-360 ms
    after it was sent (later connections' requests 2-50 ms), so the rate limit counted it late
    and a window got more than its share. A provider's edge accepts at once, so the emulator
    must too: `_thread.start_new_thread` returns without waiting (first requests: p99 15-47 ms,
    the same run). The handler threads are daemonic either way; `stop()` never joined them.
    """

    def process_request(self, request: Any, client_address: Any) -> None:
        _thread.start_new_thread(self.process_request_thread, (request, client_address))

    daemon_threads = True
    allow_reuse_address = True
    # ~50 concurrent clients opening pools at once must not overflow the listen backlog.
    request_queue_size = 1024
    emulator: EmulatorServer


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 + Content-Length on every answer keeps httpx connection pools alive.
    protocol_version = "HTTP/1.1"
    # Headers and body leave in separate writes; without TCP_NODELAY, Nagle + delayed ACK
    # would add ~40 ms to every keep-alive answer.
    disable_nagle_algorithm = True
    server_version = "phronesis-emulator/1.0"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Silence the per-request stderr log; the stats endpoint is the record."""

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch()

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch()

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch()

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch()

    def _read_body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        body = self._read_body()
        emulator = self.server.emulator
        try:
            if split.path.startswith(ADMIN_PREFIX):
                response = emulator._admin(self.command, split.path, body)
            else:
                response = emulator._serve(
                    self.command, split.path, split.query, self.headers, body
                )
        except Exception as exc:  # a bug in a handler must not kill the connection silently
            response = Response.json(500, {"error": f"emulator bug: {exc!r}"})
        self._send(response)

    def _send(self, response: Response) -> None:
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (timeout fault); nothing left to answer.
            self.close_connection = True


class EmulatorServer:
    """The provider emulator: a real local HTTP server speaking five providers' wire formats.

    Use as a context manager or call `start()` / `stop()`; `base_urls()` gives the
    `base_url` to hand each real client.
    """

    def __init__(
        self, config: EmulatorConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self._config = config or EmulatorConfig()
        self._config_lock = threading.Lock()
        self._host = host
        self._port = port
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stats = _Stats()
        self._received: deque[tuple[str, str, bytes]] = deque(maxlen=MAX_RECEIVED)
        self._limiter = _RateLimiter()
        self._fault_rng = random.Random(self._config.seed)
        self._fault_lock = threading.Lock()
        providers = [cls(self._get_config) for cls in emulated_providers()]
        # Longest prefix first so "/sec/www" is not shadowed by a shorter one.
        self._routes = sorted(
            ((prefix, p) for p in providers for prefix in p.prefixes),
            key=lambda item: -len(item[0]),
        )

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> EmulatorServer:
        """Bind and serve in a daemon thread; returns self."""
        if self._httpd is not None:
            return self
        httpd = _Server((self._host, self._port), _Handler)
        httpd.emulator = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name="provider-emulator",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (after `start()`)."""
        if self._httpd is None:
            raise RuntimeError("emulator not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Root URL, e.g. http://127.0.0.1:54321."""
        return f"http://{self._host}:{self.port}"

    def base_urls(self) -> dict[str, str]:
        """The `base_url` for each provider client."""
        return base_urls_for(self.url)

    # ---- steering --------------------------------------------------------------------------

    @property
    def config(self) -> EmulatorConfig:
        """A copy of the live configuration."""
        with self._config_lock:
            return copy.deepcopy(self._config)

    def configure(self, **values: Any) -> EmulatorConfig:
        """Apply a partial config update in-process (same keys as `POST /_emulator/config`)."""
        with self._config_lock:
            new = copy.deepcopy(self._config)
            new.update(values)
            self._config = new
        if "seed" in values:
            with self._fault_lock:
                self._fault_rng = random.Random(new.seed)
        return self.config

    def stats(self) -> dict[str, Any]:
        """Same payload as `GET /_emulator/stats`."""
        return self._stats.snapshot()

    def received(self, provider: str) -> list[tuple[str, bytes]]:
        """(method and path, raw body) of the last requests `provider` received, oldest first."""
        return [(route, body) for name, route, body in list(self._received) if name == provider]

    def reset_stats(self) -> None:
        """Zero the counters and rate-limit windows."""
        self._stats.reset()
        self._limiter.reset()

    def _get_config(self) -> EmulatorConfig:
        return self._config

    # ---- request handling ------------------------------------------------------------------

    def _admin(self, method: str, path: str, body: bytes) -> Response:
        if path == f"{ADMIN_PREFIX}/stats" and method == "GET":
            return Response.json(200, self.stats())
        if path == f"{ADMIN_PREFIX}/config" and method == "GET":
            return Response.json(200, self.config.to_dict())
        if path == f"{ADMIN_PREFIX}/config" and method == "POST":
            try:
                values = json.loads(body or b"{}")
                if not isinstance(values, dict):
                    raise ValueError("config body must be a JSON object")
                config = self.configure(**values)
            except (ValueError, TypeError) as exc:
                return Response.json(400, {"error": str(exc)})
            return Response.json(200, config.to_dict())
        if path == f"{ADMIN_PREFIX}/reset" and method == "POST":
            self.reset_stats()
            return Response.json(200, {"ok": True})
        if path == f"{ADMIN_PREFIX}/health":
            return Response.json(200, {"ok": True, "base_urls": self.base_urls()})
        return Response.json(404, {"error": f"no admin route {method} {path}"})

    def _route(self, path: str) -> tuple[str, Provider] | None:
        for prefix, provider in self._routes:
            if path == prefix or path.startswith(prefix + "/"):
                return prefix, provider
        return None

    def _draw(self) -> float:
        with self._fault_lock:
            return self._fault_rng.random()

    def _serve(self, method: str, path: str, query: str, headers: Any, body: bytes) -> Response:
        routed = self._route(path)
        if routed is None:
            return Response.json(404, {"error": f"no emulated provider at {path}"})
        prefix, provider = routed
        self._received.append((provider.name, f"{method} {path}", body))
        req = Request(method, prefix, path[len(prefix) :] or "/", parse_qs(query), headers, body)
        config = self._config
        try:
            key = provider.request_key(req)
        except Exception:  # a malformed body has no key; the handler will reject it
            key = None

        # Refused at the door, as a provider's edge does: the rate limit counts a request when
        # it arrives, not after the emulated latency (whose sleep would add its own jitter).
        refusal = self._gate(provider, req, config)
        if config.latency_ms > 0:
            time.sleep(config.latency_ms / 1000)

        response = refusal or self._answer(provider, req, config)
        self._stats.record(
            provider.name,
            f"{method} {path}",
            response.status,
            key,
            self._bucket(provider, req, config),
        )
        return response

    @staticmethod
    def _bucket(provider: Provider, req: Request, config: EmulatorConfig) -> str:
        """The rate-limit bucket `req` counts in: "provider.group" when that endpoint group has
        a limit of its own, else the provider's."""
        group = provider.rate_group(req)
        if group and f"{provider.name}.{group}" in config.rate_limit_per_second:
            return f"{provider.name}.{group}"
        return provider.name

    def _gate(self, provider: Provider, req: Request, config: EmulatorConfig) -> Response | None:
        """401/403 for bad credentials, else 429 over the rate limit, else None."""
        if config.fault(provider.name).unauthorized:
            return provider.unauthorized(req)
        refusal = provider.authenticate(req)
        if refusal is not None:
            return refusal
        bucket = self._bucket(provider, req, config)
        retry_after = self._limiter.admit(bucket, config.rate_limit_per_second.get(bucket))
        if retry_after is not None:
            return provider.rate_limited(req, retry_after)
        return None

    def _answer(self, provider: Provider, req: Request, config: EmulatorConfig) -> Response:
        faults = config.fault(provider.name)
        if faults.storm_429_rate and self._draw() < faults.storm_429_rate:
            return provider.rate_limited(req, faults.retry_after_seconds)
        if faults.error_rate and self._draw() < faults.error_rate:
            with self._fault_lock:
                status = self._fault_rng.choice(provider.server_error_statuses)
            return provider.server_error(req, status)
        if faults.timeout_rate and self._draw() < faults.timeout_rate:
            time.sleep(faults.timeout_seconds)
        if faults.scenario:
            try:
                response = provider.scenario(req, faults.scenario, lambda: provider.handle(req))
            except ValueError as exc:
                return Response.json(500, {"error": f"emulator: {exc}"})
        else:
            response = provider.handle(req)
        if (
            response.status == 200
            and faults.malformed_rate
            and self._draw() < faults.malformed_rate
        ):
            with self._fault_lock:
                rng = random.Random(self._fault_rng.random())
            response = provider.malformed(req, response, rng)
        provider.decorate(req, response)
        return response


def emulated_providers() -> list[type[Provider]]:
    """The emulator's stand-in of every provider of the registry (each resource class names its
    `EMULATOR` module and class), so a new provider is mounted without a list here."""
    classes = []
    for provider in PROVIDERS:
        module, _, name = provider.EMULATOR.partition(":")
        classes.append(getattr(importlib.import_module(module), name))
    return classes


def base_urls_for(url: str) -> dict[str, str]:
    """Provider base URLs under an emulator root URL (also usable for a remote emulator), keyed
    by emulator name (`edgar_www` / `edgar_data` for a provider with several hosts)."""
    urls: dict[str, str] = {}
    for provider in PROVIDERS:
        name, prefixes = emulator_name(provider), provider.EMULATOR_PREFIXES
        for prefix in prefixes:
            key = name if len(prefixes) == 1 else f"{name}_{prefix.rpartition('/')[2]}"
            urls[key] = url + prefix
    return urls


def remote_stats(url: str) -> dict[str, Any]:
    """Stats of an emulator running in another process."""
    return httpx.get(url + f"{ADMIN_PREFIX}/stats", timeout=10).json()


def remote_configure(url: str, **values: Any) -> dict[str, Any]:
    """Reconfigure an emulator running in another process."""
    response = httpx.post(url + f"{ADMIN_PREFIX}/config", json=values, timeout=10)
    response.raise_for_status()
    return response.json()
