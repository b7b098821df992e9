"""The emulator's default limits (the providers' side of the wire) and the clients' default
limits (ours) are two statements of the same published facts, kept apart on purpose: an
emulator that read the clients' numbers would follow a client that got them wrong. This test
is what keeps the two in step."""

from __future__ import annotations

from phronesis_dagster.emulator.config import PUBLISHED_RATE_LIMITS
from phronesis_dagster.resources.http_client import RateLimit
from phronesis_dagster.resources.registry import PROVIDERS, emulator_name


def client_defaults() -> dict[str, int]:
    """{emulator bucket: requests/s} as the resources enforce them with no plan of their own."""
    limits: dict[str, int] = {}
    for provider in PROVIDERS:
        name = emulator_name(provider)
        published = {"*": RateLimit(provider.DEFAULT_RPS), **provider.DEFAULT_LIMITS}
        for group, limit in published.items():
            limits[name if group == "*" else f"{name}.{group}"] = limit.per_second
    return limits


def test_the_emulator_enforces_the_limits_the_clients_keep_to():
    assert {k: v for k, v in PUBLISHED_RATE_LIMITS.items() if v is not None} == client_defaults()
