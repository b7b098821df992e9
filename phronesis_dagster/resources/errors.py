"""Exceptions raised by the provider resources.

The enrichment assets catch these per source: `CircuitOpenError` and a refusal with
`hold_until` (the breaker is then held open) mark the source `circuit_open`, every other
`ProviderError` marks it `failed`, each with `str(error)`. No message
ever contains an API key: messages are built from the provider name, the endpoint path and
the HTTP status only.
"""

from __future__ import annotations

from datetime import datetime


class ProviderError(Exception):
    """Base class: something went wrong talking to `provider`.

    `hold_until` set = the provider refuses every call until then (a spent quota window,
    credentials or credits it will not accept): the client holds the provider's shared breaker
    open until that time, so no process keeps calling it.
    """

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        http_status: int | None = None,
        hold_until: datetime | None = None,
    ) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.http_status = http_status
        self.hold_until = hold_until


class ProviderConfigError(ProviderError):
    """The resource is misconfigured (missing key, undeclared SEC User-Agent, bad base URL)."""


class ProviderAuthError(ProviderError):
    """401/403 (Exa's 402): the key is wrong, lacks access, or the account is blocked or out
    of credits. Never retried."""


class ProviderRequestError(ProviderError):
    """Another 4xx: the request itself is wrong. Never retried."""


class ProviderUnavailableError(ProviderError):
    """5xx, 429, timeouts or connection errors that outlasted the retries."""


class ProviderQuotaExhausted(ProviderUnavailableError):
    """A 429 for a spent hour/day window (or a wait longer than any retry): not retried; the
    breaker is held open until the window resets (`hold_until`)."""


class ProviderAnswerError(ProviderError):
    """The provider answered, but the answer cannot be used (a truncated structured output,
    a refusal). The provider is healthy: the breaker counts it as a success."""


class RateLimitWaitExceeded(ProviderUnavailableError):
    """The shared client-side rate limiter had no slot within the maximum wait."""


class CircuitOpenError(ProviderError):
    """The provider's circuit breaker is open: the call was skipped without touching the API."""


class MalformedResponseError(ProviderError):
    """The body could not be parsed or does not fit the expected model."""
