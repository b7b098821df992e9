"""The registry's provider resources, in live mode (real APIs, credentials from the environment
through `dg.EnvVar`) or emulator mode (every base URL at the local provider emulator, under
each provider's `EMULATOR_PREFIXES`, with placeholder credentials)."""

from __future__ import annotations

import os

import dagster as dg

from phronesis_dagster.resources.app_db import AppDatabase
from phronesis_dagster.resources.errors import ProviderConfigError
from phronesis_dagster.resources.http_client import RateLimit
from phronesis_dagster.resources.registry import BY_NAME, PROVIDER_NAMES, PROVIDERS

MODE_ENV = "PHRONESIS_PROVIDER_MODE"
EMULATOR_URL_ENV = "PHRONESIS_EMULATOR_URL"
# Every provider's credential variable (API keys, SEC's declared User-Agent).
CREDENTIAL_ENVS: tuple[str, ...] = tuple(p.KEY_ENV for p in PROVIDERS)
# A plan's own limits, shared by all runs: "claude=4000/min,apollo.search=400/min,exa=20".
# `provider=N` (N/s, as before) or `provider=N/min` sets the provider's default group ("*");
# `provider.group=...` one endpoint group (apollo: enrichment, search; contactout: search).
# Unset ones keep the published defaults (each resource's DEFAULT_LIMITS).
RATE_LIMITS_ENV = "PHRONESIS_PROVIDER_RATE_LIMITS"


def provider_mode(env: dict[str, str] | None = None) -> str:
    """`emulator` when asked for, or when no key at all is set and an emulator URL is;
    else `live`."""
    env = dict(os.environ) if env is None else env
    explicit = (env.get(MODE_ENV) or "").strip().lower()
    if explicit in ("emulator", "live"):
        return explicit
    if explicit:
        raise ProviderConfigError("providers", f"{MODE_ENV} must be 'live' or 'emulator'")
    no_keys = not any(env.get(v) for v in CREDENTIAL_ENVS)
    return "emulator" if no_keys and env.get(EMULATOR_URL_ENV) else "live"


def rate_limits(env: dict[str, str] | None = None) -> dict[str, dict[str, RateLimit]]:
    """`PHRONESIS_PROVIDER_RATE_LIMITS` as {provider: {group: RateLimit}} ("*" = the
    provider's default group); a typo is a configuration error at load time, not a silently
    ignored limit."""
    env = dict(os.environ) if env is None else env
    limits: dict[str, dict[str, RateLimit]] = {}
    for item in (env.get(RATE_LIMITS_ENV) or "").split(","):
        if not item.strip():
            continue
        key, _, value = item.partition("=")
        name, _, group = key.strip().lower().partition(".")
        group = group or "*"
        if name not in BY_NAME:
            raise ProviderConfigError(
                "providers",
                f"{RATE_LIMITS_ENV}: unknown provider {name!r} "
                f"(one of {', '.join(PROVIDER_NAMES)})",
            )
        groups = sorted(set(BY_NAME[name].DEFAULT_LIMITS) - {"*"})
        if group != "*" and group not in groups:
            raise ProviderConfigError(
                "providers",
                f"{RATE_LIMITS_ENV}: {name} has no endpoint group {group!r}"
                + (f" (one of {', '.join(groups)})" if groups else " (it has one limit)"),
            )
        try:
            rate = RateLimit.parse(value)
        except ValueError:
            raise ProviderConfigError(
                "providers",
                f"{RATE_LIMITS_ENV}: {key.strip()} needs a whole number of requests >= 1, "
                f"per second (`20`, `20/s`) or per minute (`1200/min`), got {value.strip()!r}",
            ) from None
        limits.setdefault(name, {})[group] = rate
    return limits


def build_provider_resources(
    app_db: AppDatabase, env: dict[str, str] | None = None
) -> dict[str, dg.ConfigurableResource]:
    """One resource per provider of the registry, keyed by provider name (`apollo, contactout,
    exa, edgar, claude`), never mixing live and emulator providers, each limited to its
    `PHRONESIS_PROVIDER_RATE_LIMITS` rate if set. Live mode with only some credentials set is a
    configuration error naming the missing variables."""
    env = dict(os.environ) if env is None else env
    limits = rate_limits(env)
    mode = provider_mode(env)
    root = ""
    if mode == "emulator":
        root = (env.get(EMULATOR_URL_ENV) or "").rstrip("/")
        if not root:
            raise ProviderConfigError("providers", f"emulator mode needs {EMULATOR_URL_ENV}")
    else:
        _check_live_credentials(env)
    resources: dict[str, dg.ConfigurableResource] = {}
    for provider in PROVIDERS:
        fields = provider.emulator_fields(root) if mode == "emulator" else provider.live_fields()
        resources[provider.PROVIDER] = provider(  # type: ignore[call-arg]
            **fields, **_options(app_db, mode, limits.get(provider.PROVIDER, {}))
        )
    return resources


def _options(app_db: AppDatabase, mode: str, plan: dict[str, RateLimit]) -> dict[str, object]:
    rate: dict[str, object] = {}
    if plan:
        rate["endpoint_rate_limits"] = {group: str(limit) for group, limit in plan.items()}
    if "*" in plan:
        rate["requests_per_second"] = plan["*"].per_second
    return {"app_db": app_db, "provider_mode": mode, **rate}


def _check_live_credentials(env: dict[str, str]) -> None:
    missing = [v for v in CREDENTIAL_ENVS if not env.get(v)]
    # With no credential at all the code location still loads (the usage and quota assets need
    # none); a run that needs a provider then fails at resource set-up naming the variable. A
    # partial set is a mistake worth stopping on at load time.
    if missing and len(missing) < len(CREDENTIAL_ENVS):
        raise ProviderConfigError(
            "providers",
            "live mode needs every provider credential; missing: "
            + ", ".join(missing)
            + f" (or set {MODE_ENV}=emulator)",
        )
