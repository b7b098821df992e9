"""The shared base of the provider resources: HTTP session, retries, and the call guard.

Every HTTP provider call goes through `ProviderResource._call`, inside the provider's
`CallGuard` (`call_guard.py`: breaker admission, a shared rate-limit slot per request, and one
write of usage + call log + breaker outcome when the call is decided):

1. the shared circuit breaker admits the call (or raises `CircuitOpenError` without a request);
2. each request takes a slot from the shared rate limiter once its connection is ready, just
   before its headers are written (redirect hops included; `ProviderCall.on_wire`);
3. tenacity retries 429, 5xx, timeouts and connection errors with exponential backoff and
   jitter, waiting at least what `Retry-After` asks (capped); 401/403 and other 4xx are raised
   at once; 404 is a normal "no match" (`None`); redirects are followed (at most
   `MAX_REDIRECTS`), a 3xx is never parsed as an answer;
4. a 429 whose wait is longer than any retry (a spent hour/day quota window) is not retried:
   the shared breaker is held open until the window resets (`CircuitBreaker.hold_open`), and
   so are refusals a provider module marks with `hold_until` (credentials, credits);
5. the guard's one write records the outcome in `api_usage` / `api_call_log` and the breaker.

State that must hold across Dagster runs (breaker, rate-limit budget, usage) lives in the app
database; the `httpx.Client` is per resource instance and closed at teardown.
"""

from __future__ import annotations

import email.utils
import functools
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, TypeVar

import dagster as dg
import httpx
from pydantic import Field, PrivateAttr, ValidationError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from phronesis_dagster.resources.app_db import AppDatabase
from phronesis_dagster.resources.call_guard import CallGuard, ProviderCall
from phronesis_dagster.resources.circuit_breaker import BreakerSettings, CircuitBreaker
from phronesis_dagster.resources.errors import (
    MalformedResponseError,
    ProviderAuthError,
    ProviderConfigError,
    ProviderError,
    ProviderQuotaExhausted,
    ProviderRequestError,
    ProviderUnavailableError,
)
from phronesis_dagster.resources.rate_limit import SharedRateLimiter
from phronesis_dagster.resources.transport import transport_for
from phronesis_dagster.resources.usage import UsageTracker

T = TypeVar("T")

DEFAULT_TIMEOUT_SECONDS = 30.0
CONNECT_TIMEOUT_SECONDS = 5.0
DEFAULT_MAX_RETRIES = 3
RETRY_MIN_WAIT_SECONDS = 0.5
RETRY_MAX_WAIT_SECONDS = 20.0
MAX_RETRY_AFTER_SECONDS = 60.0
RATE_LIMIT_MAX_WAIT_SECONDS = 60.0
ERROR_BODY_EXCERPT_CHARS = 200
# Redirects a call follows before it is a request error (httpx's default is 20).
MAX_REDIRECTS = 5
# How long credentials or credits a provider refused keep its breaker open: long enough that
# a batch stops calling at once, short enough that a fixed key resumes without a restart.
DEFAULT_REFUSAL_HOLD_SECONDS = 300.0
# Request URLs a client keeps merged with its base URL (the endpoints, and EDGAR's per-filing
# paths up to this many; then the cache starts over).
URL_CACHE_SIZE = 512


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """The TLS context of every provider client of this process, built once: httpx builds one
    per client as `verify=True` would (`SSL_CERT_FILE` / `SSL_CERT_DIR`, else certifi's
    bundle), and loading the CA bundle is 20-40 ms of CPU each time. One context serves any
    number of connections and threads."""
    return httpx.create_ssl_context()


class SetCookieCookies(httpx.Cookies):
    """The client's cookie jar, read from an answer only when the answer sets a cookie. httpx
    runs every answer through `http.cookiejar` (a urllib request and response built around
    it, the policy's lock), which was a tenth of a call's CPU; an answer without `Set-Cookie`
    adds nothing to the jar either way."""

    def extract_cookies(self, response: httpx.Response) -> None:
        headers = response.headers
        if "set-cookie" in headers or "set-cookie2" in headers:
            super().extract_cookies(response)


@dataclass(frozen=True)
class RateLimit:
    """A published (or plan) limit: `requests` per `per_seconds` (1 or 60).

    The shared limiter counts requests per second, so a per-minute limit is enforced as its
    per-second share rounded down (1,000/min -> 16/s): no minute can then exceed the limit.
    """

    requests: int
    per_seconds: int = 1

    @property
    def per_second(self) -> int:
        return max(1, self.requests // self.per_seconds)

    def __str__(self) -> str:
        unit = "s" if self.per_seconds == 1 else "min"
        return f"{self.requests}/{unit}"

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        """`20`, `20/s` or `1200/min`; ValueError otherwise."""
        number, _, unit = text.strip().partition("/")
        seconds = {"": 1, "s": 1, "sec": 1, "min": 60, "m": 60}.get(unit.strip().lower())
        if seconds is None:
            raise ValueError(f"unknown unit {unit!r} (use /s or /min)")
        requests = int(number)
        if requests < 1:
            raise ValueError("needs at least 1 request")
        return cls(requests, seconds)


class _RetryableStatus(Exception):
    """A 429 or 5xx answer; carries the server's Retry-After, if any."""

    def __init__(self, status: int, retry_after: float | None, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.retry_after = retry_after


def parse_retry_after(headers: httpx.Headers) -> float | None:
    """Seconds from `retry-after-ms` or `Retry-After` (seconds or an HTTP date)."""
    if value := headers.get("retry-after-ms"):
        try:
            return max(float(value) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


class ProviderResource(dg.ConfigurableResource):
    """Base of the provider clients (not a resource of its own)."""

    PROVIDER: ClassVar[str] = ""
    DEFAULT_RPS: ClassVar[int] = 100
    # The provider's published limits per endpoint group ("*" = every endpoint not listed in
    # ENDPOINT_GROUPS); each group has its own shared limiter.
    DEFAULT_LIMITS: ClassVar[dict[str, RateLimit]] = {}
    # Endpoint path -> the group the provider counts it in (its own per-endpoint limit).
    ENDPOINT_GROUPS: ClassVar[dict[str, str]] = {}

    app_db: AppDatabase
    provider_mode: str = Field(
        default="live", description="`live` or `emulator`; the assets put it in metadata."
    )
    timeout_seconds: float = Field(
        default=DEFAULT_TIMEOUT_SECONDS, description="Read/write timeout of one request."
    )
    max_retries: int = Field(
        default=DEFAULT_MAX_RETRIES,
        description="Retries after the first attempt on 429, 5xx, timeouts, connection errors.",
    )
    retry_min_wait_seconds: float = Field(default=RETRY_MIN_WAIT_SECONDS)
    retry_max_wait_seconds: float = Field(default=RETRY_MAX_WAIT_SECONDS)
    max_retry_after_seconds: float = Field(
        default=MAX_RETRY_AFTER_SECONDS, description="Cap on a server's Retry-After."
    )
    requests_per_second: int | None = Field(
        default=None,
        description="Client-side limit shared by every run and machine (None = the provider's "
        "default).",
    )
    endpoint_rate_limits: dict[str, str] = Field(
        default_factory=dict,
        description="A plan's own per-endpoint limits, {group: '200/min'} (groups as in "
        "DEFAULT_LIMITS); unset groups keep the published default.",
    )
    rate_limit_max_wait_seconds: float = Field(default=RATE_LIMIT_MAX_WAIT_SECONDS)
    refusal_hold_seconds: float = Field(
        default=DEFAULT_REFUSAL_HOLD_SECONDS,
        description="How long refused credentials/credits hold the breaker open.",
    )
    breaker_failure_rate_threshold: float = Field(
        default=0.5, description="Failure share in the window that opens the circuit."
    )
    breaker_min_calls: int = Field(default=10, description="Calls in the window before tripping.")
    breaker_window_seconds: float = Field(default=60.0)
    breaker_reset_timeout_seconds: float = Field(
        default=30.0, description="How long an open circuit skips calls before one probe."
    )
    breaker_probe_timeout_seconds: float = Field(default=120.0)

    _client: httpx.Client | None = PrivateAttr(default=None)
    # A batch's first calls arrive on dozens of threads at once: one of them builds the client
    # (each build loads the CA bundle; a client per thread also meant a connection pool each).
    _client_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _ready: bool = PrivateAttr(default=False)
    _run_id: str | None = PrivateAttr(default=None)
    # A handle on the shared breaker row (its state stays in the database); kept so the row's
    # "ensure it exists" INSERT runs once per resource instance, not on every call.
    _breaker: CircuitBreaker | None = PrivateAttr(default=None)
    # The bookkeeping of every call (handles only; built at the first call, after set-up).
    _guard: CallGuard | None = PrivateAttr(default=None)
    # The retry policy, built once per thread: tenacity keeps the state of the call in flight
    # on the `Retrying` object (thread-local in 9.x, but its maintainers do not promise that
    # one object serves concurrent calls), and a batch's threads are reused call after call.
    _retrying: threading.local = PrivateAttr(default_factory=threading.local)
    # Request URL (as the provider modules write it) -> the client's absolute URL.
    _urls: dict[str, httpx.URL] = PrivateAttr(default_factory=dict)

    # -- lifecycle ---------------------------------------------------------------------------

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # Fail at resource set-up, not as a 403 deep inside a run.
        self._validate()
        self._ready = True
        try:
            run = context.run
        except Exception:  # noqa: BLE001 - no run outside of executions (build_resources)
            run = None
        self._run_id = run.run_id if run is not None else None

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP session (also done at the end of every run)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def _validate(self) -> None:
        for url in self.configured_urls():
            if not url.startswith(("http://", "https://")):
                raise ProviderConfigError(self.PROVIDER, f"base URL must be http(s): {url!r}")
        self.validate_config()

    def configured_urls(self) -> list[str]:
        """The provider base URLs (subclasses declare a `base_url` field)."""
        return [getattr(self, "base_url", "")]

    def validate_config(self) -> None:
        """Subclasses check their secrets here and raise `ProviderConfigError`."""

    def _require_secret(self, value: str | None, env_var: str) -> None:
        if not value or not value.strip():
            raise ProviderConfigError(
                self.PROVIDER, f"missing API key: set the environment variable {env_var}"
            )

    def _ensure_ready(self) -> None:
        if not self._ready:
            self._validate()
            self._ready = True

    def default_headers(self) -> dict[str, str]:
        """Headers on every request (auth goes here)."""
        return {}

    def secrets(self) -> list[str]:
        """Values that must never appear in an error message."""
        return []

    @property
    def http(self) -> httpx.Client:
        client = self._client
        if client is not None:
            return client
        with self._client_lock:
            if self._client is None:
                client = httpx.Client(
                    base_url=self.configured_urls()[0].rstrip("/"),
                    headers=self.default_headers(),
                    timeout=httpx.Timeout(self.timeout_seconds, connect=CONNECT_TIMEOUT_SECONDS),
                    follow_redirects=True,
                    max_redirects=MAX_REDIRECTS,
                    verify=ssl_context(),
                    transport=transport_for(httpx, ssl_context()),
                )
                # httpx has no option for its jar's type: its constructor wraps what it is given.
                client._cookies = SetCookieCookies()  # noqa: SLF001
                self._urls.clear()
                self._client = client
            return self._client

    def _url(self, client: httpx.Client, url: str) -> httpx.URL:
        """`url` merged with the client's base URL as httpx would merge it, once per URL (two
        parses and a copy per request otherwise)."""
        merged = self._urls.get(url)
        if merged is None:
            if len(self._urls) >= URL_CACHE_SIZE:
                self._urls.clear()
            merged = self._urls[url] = client.build_request("GET", url).url
        return merged

    # -- shared machinery --------------------------------------------------------------------

    @property
    def log(self):  # noqa: ANN201 - dagster's logger type is private
        return dg.get_dagster_logger(f"phronesis.{self.PROVIDER}")

    @property
    def breaker(self) -> CircuitBreaker:
        if self._breaker is None:
            self._breaker = self._new_breaker()
        return self._breaker

    def _new_breaker(self) -> CircuitBreaker:
        return CircuitBreaker(
            self.PROVIDER,
            self.app_db,
            BreakerSettings(
                failure_rate_threshold=self.breaker_failure_rate_threshold,
                min_calls=self.breaker_min_calls,
                window_seconds=self.breaker_window_seconds,
                reset_timeout_seconds=self.breaker_reset_timeout_seconds,
                probe_timeout_seconds=self.breaker_probe_timeout_seconds,
            ),
            log=self.log,
        )

    def rate_limits_in_effect(self) -> dict[str, str]:
        """{endpoint group: limit} as this resource enforces it (published default, or the
        plan's own from `PHRONESIS_PROVIDER_RATE_LIMITS`), e.g. {"*": "10/s"}; for run
        metadata."""
        limits = {"*": str(self._limit("*"))}
        for group in sorted({*self.DEFAULT_LIMITS, *self.endpoint_rate_limits} - {"*"}):
            limits[group] = str(self._limit(group))
        return limits

    def run_counters(self) -> dict[str, int]:
        """This run's counters for the asset's metadata: `rate_limit_stale_grants`, the slots
        granted too late after their ask to be used (each cost a slot of the shared budget; many
        of them mean the run's CPU or the database is saturated)."""
        guard = self._guard
        return {"rate_limit_stale_grants": guard.stale_grants() if guard is not None else 0}

    def _limit(self, group: str) -> RateLimit:
        if group in self.endpoint_rate_limits:
            return RateLimit.parse(self.endpoint_rate_limits[group])
        if group == "*" and self.requests_per_second:
            return RateLimit(self.requests_per_second)
        if group in self.DEFAULT_LIMITS:
            return self.DEFAULT_LIMITS[group]
        return self._limit("*") if group != "*" else RateLimit(self.DEFAULT_RPS)

    def limiter_for(self, endpoint: str) -> SharedRateLimiter:
        """The shared limiter of the group `endpoint` counts in (one budget per group)."""
        group = self.ENDPOINT_GROUPS.get(endpoint, "*")
        if (
            group != "*"
            and group not in self.endpoint_rate_limits
            and (group not in self.DEFAULT_LIMITS)
        ):
            group = "*"
        bucket = self.PROVIDER if group == "*" else f"{self.PROVIDER}_{group}"
        return SharedRateLimiter(
            bucket,
            self.app_db,
            self._limit(group).per_second,
            max_wait_seconds=self.rate_limit_max_wait_seconds,
        )

    @property
    def rate_limiter(self) -> SharedRateLimiter:
        """The limiter of the provider's default group ("*")."""
        return self.limiter_for("")

    @property
    def usage(self) -> UsageTracker:
        """Records an attempt outside a guarded call (the breaker is not told)."""
        return UsageTracker(self.app_db, run_id=self._run_id)

    @property
    def guard(self) -> CallGuard:
        """Admission, rate-limit slots and the one write of this provider's calls."""
        guard = self._guard
        if guard is None:
            with self._client_lock:
                if self._guard is None:
                    self._guard = CallGuard(
                        self.PROVIDER,
                        self.app_db,
                        self.breaker,
                        self.limiter_for,
                        run_id=self._run_id,
                        scrub=self._scrub,
                        log=self.log,
                    )
                guard = self._guard
        return guard

    def _scrub(self, text: str) -> str:
        for secret in self.secrets():
            if secret:
                text = text.replace(secret, "***")
        return text

    def refusal(self, response: httpx.Response, method: str, endpoint: str) -> ProviderError | None:
        """A provider's own reading of an error status (its documented codes), or None for the
        generic mapping: `held_refusal` for refusals that stop every call (credits, keys),
        `request_refusal` for one request refused."""
        return None

    def quota_reset(self, response: httpx.Response, retry_after: float | None) -> datetime | None:
        """When a 429 means the quota is spent: the time its window resets, else None (a
        short wait, retried). Generic rule: a `retry-after` longer than any retry waits."""
        if retry_after is not None and retry_after > self.max_retry_after_seconds:
            return datetime.now(UTC) + timedelta(seconds=retry_after)
        return None

    def hold_for_refusal(self) -> datetime:
        """`hold_until` for refused credentials or credits."""
        return datetime.now(UTC) + timedelta(seconds=self.refusal_hold_seconds)

    def _refusal_message(
        self, response: httpx.Response, method: str, endpoint: str, why: str
    ) -> str:
        detail = self._scrub(response.text[:ERROR_BODY_EXCERPT_CHARS].strip())
        return f"{method} {endpoint} -> HTTP {response.status_code}: {why}: {detail}"

    def held_refusal(
        self, response: httpx.Response, method: str, endpoint: str, why: str
    ) -> ProviderAuthError:
        """For `refusal`: the provider refuses every call (credentials, credits, no access),
        `why` in its own documented terms. Not retried; the shared breaker is held open for
        `refusal_hold_seconds`, so no process calls it again before then, and every call it
        skips reports `why`."""
        return ProviderAuthError(
            self.PROVIDER,
            self._refusal_message(
                response,
                method,
                endpoint,
                f"{why}; calls held for {self.refusal_hold_seconds:g} s",
            ),
            http_status=response.status_code,
            hold_until=self.hold_for_refusal(),
        )

    def request_refusal(
        self, response: httpx.Response, method: str, endpoint: str, why: str
    ) -> ProviderRequestError:
        """For `refusal`: this one request is refused (`why`), the provider takes others."""
        return ProviderRequestError(
            self.PROVIDER,
            self._refusal_message(response, method, endpoint, why),
            http_status=response.status_code,
        )

    def _wait(self, state: RetryCallState) -> float:
        backoff = wait_exponential_jitter(
            initial=self.retry_min_wait_seconds, max=self.retry_max_wait_seconds
        )(state)
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return min(max(retry_after, backoff), self.max_retry_after_seconds)
        return backoff

    def _before_sleep(self, state: RetryCallState) -> None:
        # The failed attempt is written before the backoff, so a kill during it loses nothing.
        if (call := CallGuard.current()) is not None:
            call.flush()
        exc = state.outcome.exception() if state.outcome else None
        self.log.info(
            "%s: attempt %d failed (%s); retrying in %.2f s",
            self.PROVIDER,
            state.attempt_number,
            self._scrub(str(exc)),
            state.next_action.sleep if state.next_action else 0.0,
        )

    # -- the call ----------------------------------------------------------------------------

    def _call(
        self,
        *,
        endpoint: str,
        method: str,
        url: str,
        parse: Callable[[httpx.Response], T],
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        not_found_is_empty: bool = True,
        cost: Callable[[T], float | None] | None = None,
    ) -> T | None:
        """One logical provider call (with retries). Returns None on 404 / no match."""
        self._ensure_ready()
        with self.guard.call(endpoint) as call:
            response = self._send(
                call,
                endpoint=endpoint,
                method=method,
                url=url,
                json=json,
                params=params,
                headers=headers,
                not_found_is_empty=not_found_is_empty,
            )
            status = response.status_code
            if status == 404 and not_found_is_empty:
                call.finish("not_found", http_status=404, cost_usd=0.0)
                return None
            try:
                result = parse(response)
            except (
                ValueError,
                KeyError,
                TypeError,
                ValidationError,
                MalformedResponseError,
            ) as exc:
                call.answered("failure", http_status=status)
                raise MalformedResponseError(
                    self.PROVIDER,
                    f"{endpoint}: response does not fit the expected shape "
                    f"({type(exc).__name__}: {self._scrub(str(exc))[:ERROR_BODY_EXCERPT_CHARS]})",
                    http_status=status,
                ) from None
            cost_usd = None
            if cost is not None:
                try:
                    cost_usd = cost(result)
                except Exception:  # noqa: BLE001 - cost is best effort
                    cost_usd = None
            call.finish(
                "not_found" if result is None else "success", http_status=status, cost_usd=cost_usd
            )
            return result

    def _send(
        self,
        call: ProviderCall,
        *,
        endpoint: str,
        method: str,
        url: str,
        json: Any,
        params: dict[str, Any] | None,
        headers: dict[str, str] | None,
        not_found_is_empty: bool,
    ) -> httpx.Response:
        retrying = getattr(self._retrying, "policy", None)
        if retrying is None:
            retrying = self._retrying.policy = Retrying(
                stop=stop_after_attempt(self.max_retries + 1),
                wait=self._wait,
                retry=retry_if_exception_type((_RetryableStatus, httpx.TransportError)),
                before_sleep=self._before_sleep,
                reraise=True,
            )
        try:
            return retrying(
                self._attempt,
                call,
                endpoint,
                method,
                url,
                json,
                params,
                headers,
                not_found_is_empty,
            )
        except _RetryableStatus as exc:
            raise ProviderUnavailableError(
                self.PROVIDER,
                f"{method} {endpoint} still failing after {self.max_retries + 1} attempts: "
                f"{self._scrub(str(exc))}",
                http_status=exc.status,
            ) from None
        except httpx.TooManyRedirects:
            raise ProviderRequestError(
                self.PROVIDER, f"{method} {endpoint}: more than {MAX_REDIRECTS} redirects"
            ) from None
        except httpx.TimeoutException as exc:
            raise ProviderUnavailableError(
                self.PROVIDER,
                f"{method} {endpoint} timed out after {self.max_retries + 1} attempts "
                f"({type(exc).__name__}, timeout {self.timeout_seconds} s)",
            ) from None
        except httpx.TransportError as exc:
            raise ProviderUnavailableError(
                self.PROVIDER,
                f"{method} {endpoint} connection failed after {self.max_retries + 1} attempts "
                f"({type(exc).__name__}: {self._scrub(str(exc))})",
            ) from None

    def _attempt(
        self,
        call: ProviderCall,
        endpoint: str,
        method: str,
        url: str,
        json: Any,
        params: dict[str, Any] | None,
        headers: dict[str, str] | None,
        not_found_is_empty: bool,
    ) -> httpx.Response:
        # A transport error leaves the attempt without an answer: the guard records it as a
        # failure with its latency before the retry (or with the call's outcome).
        call.attempt()
        client = self.http
        response = client.request(
            method,
            self._url(client, url),
            json=json,
            params=params,
            headers=headers,
            extensions={"trace": call.on_wire},
        )
        call.received()
        status = response.status_code
        if status < 300 or (status == 404 and not_found_is_empty):
            return response
        detail = self._scrub(response.text[:ERROR_BODY_EXCERPT_CHARS].strip())
        call.answered("rate_limited" if status == 429 else "failure", http_status=status)
        if status < 400:
            # A redirect httpx could not follow (no Location): never an answer to parse.
            raise ProviderRequestError(
                self.PROVIDER,
                f"{method} {endpoint} -> HTTP {status} redirect without a usable Location",
                http_status=status,
            )
        if (refused := self.refusal(response, method, endpoint)) is not None:
            raise refused
        if status == 429:
            retry_after = parse_retry_after(response.headers)
            if (until := self.quota_reset(response, retry_after)) is not None:
                # Retrying would hold a thread for an hour or a day: stop every process now.
                raise ProviderQuotaExhausted(
                    self.PROVIDER,
                    f"{method} {endpoint} -> HTTP 429: quota spent until {until.isoformat()} "
                    f"(not retried; breaker held open until then): {detail}",
                    http_status=429,
                    hold_until=until,
                )
            raise _RetryableStatus(status, retry_after, detail)
        if status >= 500:
            raise _RetryableStatus(status, parse_retry_after(response.headers), detail)
        if status in (401, 403):
            raise ProviderAuthError(
                self.PROVIDER,
                f"{method} {endpoint} -> HTTP {status}: credentials rejected or access denied "
                f"(not retried): {detail}",
                http_status=status,
            )
        raise ProviderRequestError(
            self.PROVIDER, f"{method} {endpoint} -> HTTP {status}: {detail}", http_status=status
        )


def json_body(response: httpx.Response) -> Any:
    """The JSON body, or `ValueError` (-> MalformedResponseError) when it is not JSON."""
    try:
        return response.json()
    except ValueError as exc:
        raise ValueError(f"body is not JSON: {response.text[:80]!r}") from exc
    except RecursionError:
        # Deeply nested arrays/objects overflow the decoder's stack.
        raise ValueError("body is JSON nested too deeply to parse") from None


def optional_str(value: Any, what: str) -> str | None:
    """A text field of a body: None and strings as they are, numbers as text; anything else
    (booleans, lists, objects) is `TypeError` (-> MalformedResponseError)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"{what} is not a string: {type(value).__name__}")


def optional_object(value: Any, what: str) -> dict[str, Any]:
    """A nested object of a body; missing, null or empty is `{}`, anything else not an object
    is `TypeError`."""
    if not value:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"{what} is not an object: {type(value).__name__}")
    return value
