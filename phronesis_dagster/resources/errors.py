"""Exceptions raised by the provider resources.

The enrichment assets catch these per source: `CircuitOpenError` marks the source
`circuit_open`, every other `ProviderError` marks it `failed` with `str(error)`. No message
ever contains an API key: messages are built from the provider name, the endpoint path and
the HTTP status only.
"""

from __future__ import annotations


class ProviderError(Exception):
    """Base class: something went wrong talking to `provider`."""

    def __init__(self, provider: str, message: str, *, http_status: int | None = None) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.http_status = http_status


class ProviderConfigError(ProviderError):
    """The resource is misconfigured (missing key, undeclared SEC User-Agent, bad base URL)."""


class ProviderAuthError(ProviderError):
    """401/403: the key is wrong, lacks access or the account is blocked. Never retried."""


class ProviderRequestError(ProviderError):
    """Another 4xx: the request itself is wrong. Never retried."""


class ProviderUnavailableError(ProviderError):
    """5xx, 429, timeouts or connection errors that outlasted the retries."""


class RateLimitWaitExceeded(ProviderUnavailableError):
    """The shared client-side rate limiter had no slot within the maximum wait."""


class CircuitOpenError(ProviderError):
    """The provider's circuit breaker is open: the call was skipped without touching the API."""


class MalformedResponseError(ProviderError):
    """The body could not be parsed or does not fit the expected model."""
