"""The five provider resources, in live mode (real APIs, keys from the environment) or
emulator mode (every base URL at the local provider emulator, placeholder keys)."""

from __future__ import annotations

import os

import dagster as dg

from phronesis_dagster.resources.apollo import APOLLO_BASE_URL, ApolloResource
from phronesis_dagster.resources.app_db import AppDatabase
from phronesis_dagster.resources.claude import ANTHROPIC_BASE_URL, ClaudeResource
from phronesis_dagster.resources.contactout import CONTACTOUT_BASE_URL, ContactOutResource
from phronesis_dagster.resources.edgar import SEC_DATA_BASE_URL, SEC_WWW_BASE_URL, EdgarResource
from phronesis_dagster.resources.errors import ProviderConfigError
from phronesis_dagster.resources.exa import EXA_BASE_URL, ExaResource

MODE_ENV = "PHRONESIS_PROVIDER_MODE"
EMULATOR_URL_ENV = "PHRONESIS_EMULATOR_URL"
KEY_ENVS: dict[str, str] = {
    "contactout": "CONTACTOUT_API_KEY",
    "exa": "EXA_API_KEY",
    "apollo": "APOLLO_API_KEY",
    "claude": "ANTHROPIC_API_KEY",
}
SEC_USER_AGENT_ENV = "SEC_USER_AGENT"
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


def build_provider_resources(
    app_db: AppDatabase, env: dict[str, str] | None = None
) -> dict[str, dg.ConfigurableResource]:
    """Resources keyed `contactout, exa, edgar, apollo, claude`, never mixing live and
    emulator providers. Live mode with only some keys set is a configuration error naming the
    missing variables."""
    env = dict(os.environ) if env is None else env
    mode = provider_mode(env)
    if mode == "emulator":
        root = (env.get(EMULATOR_URL_ENV) or "").rstrip("/")
        if not root:
            raise ProviderConfigError("providers", f"emulator mode needs {EMULATOR_URL_ENV}")
        url = {name: root + prefix for name, prefix in EMULATOR_PREFIXES.items()}
        common = {"app_db": app_db, "provider_mode": "emulator"}
        return {
            "contactout": ContactOutResource(
                api_key=EMULATOR_KEY, base_url=url["contactout"], **common
            ),
            "exa": ExaResource(api_key=EMULATOR_KEY, base_url=url["exa"], **common),
            "edgar": EdgarResource(
                user_agent=EMULATOR_SEC_USER_AGENT,
                www_base_url=url["edgar_www"],
                data_base_url=url["edgar_data"],
                **common,
            ),
            "apollo": ApolloResource(api_key=EMULATOR_KEY, base_url=url["apollo"], **common),
            "claude": ClaudeResource(api_key=EMULATOR_KEY, base_url=url["claude"], **common),
        }

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
    common = {"app_db": app_db, "provider_mode": "live"}
    return {
        "contactout": ContactOutResource(
            api_key=dg.EnvVar(KEY_ENVS["contactout"]), base_url=CONTACTOUT_BASE_URL, **common
        ),
        "exa": ExaResource(api_key=dg.EnvVar(KEY_ENVS["exa"]), base_url=EXA_BASE_URL, **common),
        "edgar": EdgarResource(
            user_agent=dg.EnvVar(SEC_USER_AGENT_ENV),
            www_base_url=SEC_WWW_BASE_URL,
            data_base_url=SEC_DATA_BASE_URL,
            **common,
        ),
        "apollo": ApolloResource(
            api_key=dg.EnvVar(KEY_ENVS["apollo"]), base_url=APOLLO_BASE_URL, **common
        ),
        "claude": ClaudeResource(
            api_key=dg.EnvVar(KEY_ENVS["claude"]), base_url=ANTHROPIC_BASE_URL, **common
        ),
    }
