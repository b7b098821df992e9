"""Live / emulator mode selection of the five provider resources."""

from __future__ import annotations

import dagster as dg
import pytest

from phronesis_dagster.resources.edgar import EdgarResource
from phronesis_dagster.resources.errors import ProviderConfigError
from phronesis_dagster.resources.providers import build_provider_resources, provider_mode

ALL_LIVE = {
    "CONTACTOUT_API_KEY": "a",
    "EXA_API_KEY": "b",
    "APOLLO_API_KEY": "c",
    "ANTHROPIC_API_KEY": "d",
    "SEC_USER_AGENT": "Acme ops@acme.com",
}
KEYS = ["contactout", "exa", "edgar", "apollo", "claude"]


def test_emulator_mode_points_everything_at_the_emulator(emu, rdb):
    resources = build_provider_resources(rdb, env={"PHRONESIS_EMULATOR_URL": emu.url})
    assert sorted(resources) == sorted(KEYS)
    assert {r.provider_mode for r in resources.values()} == {"emulator"}
    assert resources["edgar"].user_agent == EdgarResource.EMULATOR_CREDENTIAL
    assert resources["edgar"].data_base_url == emu.url + "/sec/data"
    assert resources["claude"].base_url == emu.url + "/anthropic"
    # Every resource really talks to the emulator.
    with dg.build_resources(resources) as built:
        assert built.contactout.enrich_person(email="jane.doe@acme.com") is not None
        assert built.exa.search_mentions(name="Jane Doe", company="Acme") is not None
        assert built.edgar.cik_for_ticker("AAPL") == "0000320193"
        assert isinstance(built.apollo.search_people(titles=["CFO"], per_page=2), list)
        assert built.claude.summarize_prospect(prospect={"name": "Jane"}, sources={}).summary
    assert set(emu.stats()["requests"]) == {"contactout", "exa", "edgar", "apollo", "anthropic"}


def test_live_mode_reads_every_secret_through_envvar(rdb):
    resources = build_provider_resources(rdb, env=ALL_LIVE)
    assert {r.provider_mode for r in resources.values()} == {"live"}
    assert isinstance(resources["exa"].api_key, dg.EnvVar)
    assert isinstance(resources["edgar"].user_agent, dg.EnvVar)
    assert resources["contactout"].base_url == "https://api.contactout.com"


def test_partial_live_keys_name_the_missing_variables(rdb):
    env = {k: v for k, v in ALL_LIVE.items() if k not in ("APOLLO_API_KEY", "SEC_USER_AGENT")}
    env["PHRONESIS_EMULATOR_URL"] = "http://127.0.0.1:1"  # keys set: never silently emulate
    with pytest.raises(ProviderConfigError) as info:
        build_provider_resources(rdb, env=env)
    assert "APOLLO_API_KEY" in str(info.value) and "SEC_USER_AGENT" in str(info.value)
    assert "EXA_API_KEY" not in str(info.value)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "live"),
        ({"PHRONESIS_EMULATOR_URL": "http://x"}, "emulator"),
        ({"PHRONESIS_EMULATOR_URL": "http://x", "EXA_API_KEY": "k"}, "live"),
        ({"PHRONESIS_PROVIDER_MODE": "emulator", "EXA_API_KEY": "k"}, "emulator"),
        ({"PHRONESIS_PROVIDER_MODE": "live", "PHRONESIS_EMULATOR_URL": "http://x"}, "live"),
    ],
)
def test_mode_selection(env, expected):
    assert provider_mode(env) == expected


def test_emulator_mode_without_url_is_an_error(rdb):
    with pytest.raises(ProviderConfigError, match="PHRONESIS_EMULATOR_URL"):
        build_provider_resources(rdb, env={"PHRONESIS_PROVIDER_MODE": "emulator"})


def test_no_credentials_still_loads_and_fails_at_setup_naming_the_variable(rdb, monkeypatch):
    for name in ALL_LIVE:
        monkeypatch.delenv(name, raising=False)
    resources = build_provider_resources(rdb, env={})
    assert {r.provider_mode for r in resources.values()} == {"live"}
    with pytest.raises(Exception, match="EXA_API_KEY"):
        with dg.build_resources({"exa": resources["exa"]}):
            pass


def test_rate_limits_from_the_environment_reach_the_shared_limiter(rdb):
    env = {**ALL_LIVE, "PHRONESIS_PROVIDER_RATE_LIMITS": "claude=80, EDGAR=5"}
    resources = build_provider_resources(rdb, env=env)
    assert resources["claude"].rate_limiter.requests_per_second == 80
    assert resources["edgar"].rate_limiter.requests_per_second == 5
    # Providers left out keep their published defaults.
    assert resources["exa"].rate_limiter.requests_per_second == 10
    assert isinstance(resources["claude"].api_key, dg.EnvVar)


def test_published_defaults_per_endpoint_are_the_limits_in_effect(rdb):
    resources = build_provider_resources(rdb, env=ALL_LIVE)
    in_effect = {name: r.rate_limits_in_effect() for name, r in resources.items()}
    assert in_effect == {
        "exa": {"*": "10/s"},
        "contactout": {"*": "1200/min", "search": "60/min"},
        "apollo": {"*": "200/min", "enrichment": "1000/min", "search": "200/min"},
        "claude": {"*": "1000/min"},
        "edgar": {"*": "10/s"},
    }
    apollo = resources["apollo"]
    # Each endpoint group has its own shared budget, a per-minute limit as its per-second share.
    assert apollo.limiter_for("/api/v1/people/match").requests_per_second == 16
    assert apollo.limiter_for("/api/v1/people/match").provider == "apollo_enrichment"
    assert apollo.limiter_for("/api/v1/mixed_people/api_search").requests_per_second == 3
    assert resources["contactout"].limiter_for("/v1/people/enrich").requests_per_second == 20


def test_a_plans_own_limits_per_endpoint_from_the_environment(rdb):
    value = "apollo.search=600/min, apollo.enrichment=30/s, contactout=3000/min, exa=20/s"
    env = {**ALL_LIVE, "PHRONESIS_PROVIDER_RATE_LIMITS": value}
    resources = build_provider_resources(rdb, env=env)
    assert resources["apollo"].rate_limits_in_effect() == {
        "*": "200/min",
        "enrichment": "30/s",
        "search": "600/min",
    }
    assert (
        resources["apollo"].limiter_for("/api/v1/mixed_people/api_search").requests_per_second == 10
    )
    assert resources["contactout"].rate_limits_in_effect()["*"] == "3000/min"
    assert resources["contactout"].limiter_for("/v1/people/enrich").requests_per_second == 50
    assert resources["exa"].rate_limiter.requests_per_second == 20


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("claud=80", "unknown provider 'claud'"),
        ("claude=0", "claude needs a whole number"),
        ("claude=fast", "got 'fast'"),
        ("claude", "got ''"),
        ("claude=100/hour", "per minute"),
        ("exa.search=5", "exa has no endpoint group 'search'"),
        ("apollo.people=5", "one of enrichment, search"),
    ],
)
def test_a_bad_rate_limit_setting_stops_the_load_with_a_clear_error(rdb, value, message):
    with pytest.raises(ProviderConfigError, match=message):
        build_provider_resources(rdb, env={**ALL_LIVE, "PHRONESIS_PROVIDER_RATE_LIMITS": value})
