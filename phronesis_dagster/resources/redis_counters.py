"""Read-only access to the web app's own provider-call counters in Redis.

The web app does `INCR api_usage:{provider}:{YYYY-MM-DD}` for every successful provider call it
makes (the pipeline's calls are never in Redis), and the keys expire after 90 days.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import date

import dagster as dg
import redis
from pydantic import Field

REDIS_URL_ENV = "REDIS_URL"
KEY_TEMPLATE = "api_usage:{provider}:{day}"
# The counters are a small MGET; a Redis that does not answer within this is treated as down.
CONNECT_TIMEOUT_SECONDS = 2.0
SOCKET_TIMEOUT_SECONDS = 5.0


class RedisUnavailable(RuntimeError):
    """`REDIS_URL` is set but Redis could not be reached."""


def counter_key(provider: str, day: date) -> str:
    """The web app's Redis key for one provider's calls on one UTC day."""
    return KEY_TEMPLATE.format(provider=provider, day=day.isoformat())


class WebAppRedis(dg.ConfigurableResource):
    """The web app's Redis, read for its `api_usage:{provider}:{YYYY-MM-DD}` call counters.

    Optional: with an empty `url` (no `REDIS_URL`) the quota asset uses the pipeline's counters
    only. Nothing is ever written to Redis.
    """

    url: str = Field(
        default_factory=lambda: os.environ.get(REDIS_URL_ENV, ""),
        description=f"redis:// URL of the web app's Redis. Defaults to ${REDIS_URL_ENV}; "
        "empty means there is no web app Redis.",
    )

    @property
    def is_configured(self) -> bool:
        return bool(self.url.strip())

    def daily_counts(
        self, providers: Iterable[str], days: Iterable[date]
    ) -> dict[tuple[str, date], int]:
        """The web app's successful-call count per (provider, day) for every key that exists.

        Missing keys (no calls, or expired) are left out, so callers never overwrite history with
        zeros. Raises `RedisUnavailable` when Redis cannot be reached and `ValueError` when a key
        holds something other than an integer.
        """
        if not self.is_configured:
            return {}
        pairs = [(p, d) for p in providers for d in days]
        if not pairs:
            return {}
        keys = [counter_key(p, d) for p, d in pairs]
        client = redis.Redis.from_url(
            self.url,
            socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
            socket_timeout=SOCKET_TIMEOUT_SECONDS,
        )
        try:
            values = client.mget(keys)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise RedisUnavailable(f"web app Redis unreachable: {exc}") from exc
        except redis.ResponseError as exc:
            raise ValueError(f"web app Redis refused the counter read: {exc}") from exc
        finally:
            client.close()
        counts: dict[tuple[str, date], int] = {}
        for pair, key, raw in zip(pairs, keys, values, strict=True):
            if raw is None:
                continue
            try:
                value = int(raw)
            except ValueError:
                raise ValueError(
                    f"Redis key {key!r} holds {raw!r}, expected an integer call count"
                ) from None
            if value < 0:
                raise ValueError(f"Redis key {key!r} holds a negative call count {value}")
            counts[pair] = value
        return counts
