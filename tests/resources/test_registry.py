"""The provider registry is the one list of providers: each class states every fact, the facts
are unique, and the places that need them (the web app's columns, the emulator) agree."""

from __future__ import annotations

import pytest

from phronesis_dagster.db.models import Prospect
from phronesis_dagster.emulator.server import emulated_providers
from phronesis_dagster.resources.contract import Enricher
from phronesis_dagster.resources.registry import (
    BY_SOURCE,
    DATA_PROVIDERS,
    PROVIDERS,
    SUMMARY_PROVIDER,
    emulator_name,
)

FACTS = (
    "SOURCE",
    "PROVIDER",
    "ASSET_KEY",
    "DATA_COLUMN",
    "KIND",
    "DESCRIPTION",
    "KEY_ENV",
    "LIVE_URLS",
    "EMULATOR_PREFIXES",
    "EMULATOR",
)


@pytest.mark.parametrize("provider", PROVIDERS, ids=lambda p: p.__name__)
def test_each_provider_states_every_fact_in_its_own_class(provider):
    for fact in FACTS:
        assert fact in vars(provider), f"{provider.__name__} does not state {fact}"
        assert getattr(provider, fact), (provider.__name__, fact)
    assert len(provider.LIVE_URLS) == len(provider.EMULATOR_PREFIXES)
    assert "enrich" in vars(provider)


@pytest.mark.parametrize("fact", ["SOURCE", "PROVIDER", "ASSET_KEY", "DATA_COLUMN", "KEY_ENV"])
def test_facts_that_name_something_are_unique(fact):
    values = [getattr(p, fact) for p in PROVIDERS]
    assert len(set(values)) == len(values), values


def test_sources_are_the_web_apps_keys_and_fill_its_columns():
    # ../shared/webapp/README.md: enrichment_source_status keys, EDGAR's is `sec`.
    assert set(BY_SOURCE) == {"apollo", "contactout", "exa", "sec", "claude"}
    columns = set(Prospect.__table__.columns.keys())
    assert {p.DATA_COLUMN for p in PROVIDERS} <= columns
    assert DATA_PROVIDERS + (SUMMARY_PROVIDER,) == PROVIDERS  # the summary comes last


def test_the_emulator_mounts_each_provider_where_its_resource_points():
    emulated = {cls.name: cls for cls in emulated_providers()}
    assert set(emulated) == {emulator_name(p) for p in PROVIDERS}
    for provider in PROVIDERS:
        assert emulated[emulator_name(provider)].prefixes == provider.EMULATOR_PREFIXES


def test_a_real_resource_is_an_enricher(rdb):
    # The asset accepts what is bound under a provider's key only if it has the typed call.
    for provider in PROVIDERS:
        resource = provider(app_db=rdb, **provider.emulator_fields("http://127.0.0.1:1"))
        assert isinstance(resource, Enricher), provider.__name__
