"""The five enrichment providers, in lineage order: the four data sources, then the summary
that reads them. Every other list of providers (asset specs, the source/column maps, the
resource wiring, the rate-limit names, the emulator's routes) is derived from this one; a new
provider is its resource class (`resources/<provider>.py`), one line here, and its emulator
module."""

from __future__ import annotations

from phronesis_dagster.resources.apollo import ApolloResource
from phronesis_dagster.resources.claude import ClaudeResource
from phronesis_dagster.resources.contactout import ContactOutResource
from phronesis_dagster.resources.contract import Enricher, EnrichmentProvider
from phronesis_dagster.resources.edgar import EdgarResource
from phronesis_dagster.resources.exa import ExaResource

Provider = type[EnrichmentProvider]

PROVIDERS: tuple[Provider, ...] = (
    ApolloResource,
    ContactOutResource,
    ExaResource,
    EdgarResource,
    ClaudeResource,
)
DATA_PROVIDERS: tuple[Provider, ...] = tuple(p for p in PROVIDERS if not p.SUMMARIZES)
(SUMMARY_PROVIDER,) = (p for p in PROVIDERS if p.SUMMARIZES)

# Provider names: the resource keys, and the names in api_usage, the breaker, the rate limits.
PROVIDER_NAMES: tuple[str, ...] = tuple(p.PROVIDER for p in PROVIDERS)
BY_SOURCE: dict[str, Provider] = {p.SOURCE: p for p in PROVIDERS}
BY_NAME: dict[str, Provider] = {p.PROVIDER: p for p in PROVIDERS}


def enricher(resources: object, provider: Provider) -> Enricher:
    """The object bound to `provider`'s resource key in a run's `context.resources`."""
    bound = getattr(resources, provider.PROVIDER)
    if not isinstance(bound, Enricher):
        raise TypeError(
            f"resource {provider.PROVIDER!r} is a {type(bound).__name__}, not an enrichment "
            "provider (it needs enrich, provider_mode, requests_per_second, "
            "rate_limits_in_effect)"
        )
    return bound


def emulator_name(provider: Provider) -> str:
    """The provider's name in the emulator (its module under `emulator/`, e.g. `anthropic` for
    Claude): the key of its faults, rate limits and stats there."""
    return provider.EMULATOR.partition(":")[0].rpartition(".")[2]
