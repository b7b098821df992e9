"""The five provider resources, in live mode (real APIs, keys from the environment) or
emulator mode (every base URL at the local provider emulator, placeholder keys)."""

from __future__ import annotations

import os
from collections.abc import Callable

import dagster as dg

from phronesis_dagster.resources.apollo import APOLLO_BASE_URL, ApolloResource
from phronesis_dagster.resources.app_db import AppDatabase
from phronesis_dagster.resources.claude import ANTHROPIC_BASE_URL, ClaudeResource
from phronesis_dagster.resources.contactout import CONTACTOUT_BASE_URL, ContactOutResource
from phronesis_dagster.resources.edgar import SEC_DATA_BASE_URL, SEC_WWW_BASE_URL, EdgarResource
from phronesis_dagster.resources.errors import ProviderConfigError
from phronesis_dagster.resources.exa import EXA_BASE_URL, ExaResource
from phronesis_dagster.resources.http_client import RateLimit

MODE_ENV = "PHRONESIS_PROVIDER_MODE"
EMULATOR_URL_ENV = "PHRONESIS_EMULATOR_URL"
KEY_ENVS: dict[str, str] = {
    "contactout": "CONTACTOUT_API_KEY",
    "exa": "EXA_API_KEY",
    "apollo": "APOLLO_API_KEY",
    "claude": "ANTHROPIC_API_KEY",
}
SEC_USER_AGENT_ENV = "SEC_USER_AGENT"
# A plan's own limits, shared by all runs: "claude=4000/min,apollo.search=400/min,exa=20".
# `provider=N` (N/s, as before) or `provider=N/min` sets the provider's default group ("*");
# `provider.group=...` one endpoint group (apollo: enrichment, search; contactout: search).
# Unset ones keep the published defaults (each resource's DEFAULT_LIMITS).
RATE_LIMITS_ENV = "PHRONESIS_PROVIDER_RATE_LIMITS"
PROVIDERS = ("contactout", "exa", "edgar", "apollo", "claude")
RESOURCE_CLASSES = {
    "contactout": ContactOutResource,
    "exa": ExaResource,
    "edgar": EdgarResource,
    "apollo": ApolloResource,
    "claude": ClaudeResource,
}
EMULATOR_KEY = "emulator-key"
EMULATOR_SEC_USER_AGENT = "phronesis-dagster emulator demo@example.com"
# Path prefixes under which the emulator serves each provider's host.
EMULATOR_PREFIXES: dict[str, str] = {
    "contactout": "/contactout",
    "exa": "/exa",
    "edgar_www": "/sec/www",
    "edgar_data": "/sec/data",
    "apollo": "/apollo",
    "claude": "/anthropic",
}


def provider_mode(env: dict[str, str] | None = None) -> str:
    """`emulator` when asked for, or when no key at all is set and an emulator URL is;
    else `live`."""
    env = dict(os.environ) if env is None else env
    explicit = (env.get(MODE_ENV) or "").strip().lower()
    if explicit in ("emulator", "live"):
        return explicit
    if explicit:
        raise ProviderConfigError("providers", f"{MODE_ENV} must be 'live' or 'emulator'")
    no_keys = not any(env.get(v) for v in (*KEY_ENVS.values(), SEC_USER_AGENT_ENV))
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
        if name not in PROVIDERS:
            raise ProviderConfigError(
                "providers",
                f"{RATE_LIMITS_ENV}: unknown provider {name!r} (one of {', '.join(PROVIDERS)})",
            )
        groups = sorted(set(RESOURCE_CLASSES[name].DEFAULT_LIMITS) - {"*"})
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
    """Resources keyed `contactout, exa, edgar, apollo, claude`, never mixing live and
    emulator providers, each limited to its `PHRONESIS_PROVIDER_RATE_LIMITS` rate if set. Live
    mode with only some keys set is a configuration error naming the missing variables."""
    env = dict(os.environ) if env is None else env
    limits = rate_limits(env)
    if provider_mode(env) == "emulator":
        return _emulator_resources(app_db, env, limits)
    return _live_resources(app_db, env, limits)


def _common(
    app_db: AppDatabase, mode: str, limits: dict[str, dict[str, RateLimit]]
) -> Callable[[str], dict]:
    def options(provider: str) -> dict:
        plan = limits.get(provider, {})
        rate: dict = {}
        if plan:
            rate["endpoint_rate_limits"] = {group: str(limit) for group, limit in plan.items()}
        if "*" in plan:
            rate["requests_per_second"] = plan["*"].per_second
        return {"app_db": app_db, "provider_mode": mode, **rate}

    return options


def _emulator_resources(
    app_db: AppDatabase, env: dict[str, str], limits: dict[str, dict[str, RateLimit]]
) -> dict[str, dg.ConfigurableResource]:
    root = (env.get(EMULATOR_URL_ENV) or "").rstrip("/")
    if not root:
        raise ProviderConfigError("providers", f"emulator mode needs {EMULATOR_URL_ENV}")
    url = {name: root + prefix for name, prefix in EMULATOR_PREFIXES.items()}
    common = _common(app_db, "emulator", limits)
    return {
        "contactout": ContactOutResource(
            api_key=EMULATOR_KEY, base_url=url["contactout"], **common("contactout")
        ),
        "exa": ExaResource(api_key=EMULATOR_KEY, base_url=url["exa"], **common("exa")),
        "edgar": EdgarResource(
            user_agent=EMULATOR_SEC_USER_AGENT,
            www_base_url=url["edgar_www"],
            data_base_url=url["edgar_data"],
            **common("edgar"),
        ),
        "apollo": ApolloResource(api_key=EMULATOR_KEY, base_url=url["apollo"], **common("apollo")),
        "claude": ClaudeResource(api_key=EMULATOR_KEY, base_url=url["claude"], **common("claude")),
    }


def _live_resources(
    app_db: AppDatabase, env: dict[str, str], limits: dict[str, dict[str, RateLimit]]
) -> dict[str, dg.ConfigurableResource]:
    credentials = (*KEY_ENVS.values(), SEC_USER_AGENT_ENV)
    missing = [v for v in credentials if not env.get(v)]
    # With no credential at all the code location still loads (the usage and quota assets need
    # none); a run that needs a provider then fails at resource set-up naming the variable. A
    # partial set is a mistake worth stopping on at load time.
    if missing and len(missing) < len(credentials):
        raise ProviderConfigError(
            "providers",
            "live mode needs every provider credential; missing: "
            + ", ".join(missing)
            + f" (or set {MODE_ENV}=emulator)",
        )
    common = _common(app_db, "live", limits)
    return {
        "contactout": ContactOutResource(
            api_key=dg.EnvVar(KEY_ENVS["contactout"]),
            base_url=CONTACTOUT_BASE_URL,
            **common("contactout"),
        ),
        "exa": ExaResource(
            api_key=dg.EnvVar(KEY_ENVS["exa"]), base_url=EXA_BASE_URL, **common("exa")
        ),
        "edgar": EdgarResource(
            user_agent=dg.EnvVar(SEC_USER_AGENT_ENV),
            www_base_url=SEC_WWW_BASE_URL,
            data_base_url=SEC_DATA_BASE_URL,
            **common("edgar"),
        ),
        "apollo": ApolloResource(
            api_key=dg.EnvVar(KEY_ENVS["apollo"]), base_url=APOLLO_BASE_URL, **common("apollo")
        ),
        "claude": ClaudeResource(
            api_key=dg.EnvVar(KEY_ENVS["claude"]), base_url=ANTHROPIC_BASE_URL, **common("claude")
        ),
    }
