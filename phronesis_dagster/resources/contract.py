"""What an enrichment provider is, in one place: the facts the pipeline reads about it and the
one typed call it answers.

Each provider's resource class (`resources/<provider>.py`) subclasses `EnrichmentProvider` and
fills in its facts as class attributes: the web app's source key, the provider name used by the
usage counters / breaker / rate limits, the asset it materializes, the prospect column it fills,
the UI's kind tag and description, the credential's environment variable, where the emulator
serves it, and when it does not apply to a prospect. `resources/registry.py` lists the five;
everything else (asset specs, column maps, resource wiring, the emulator's routes) derives from
it.

The call path: the enrichment asset gives a provider a `ProspectInput` and gets a
`ProviderAnswer` back (`enrich`); the provider's `enrich` calls its own typed client method,
which makes the HTTP request through `ProviderResource._call` (`resources/http_client.py`).
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Protocol, TypeAlias, runtime_checkable

import dagster as dg
from pydantic import BaseModel

# A JSON object as stored in a prospect's data column (JSONB).
JsonObject: TypeAlias = dict[str, object]

# The credential the emulator accepts for every keyed provider (it checks presence, not value).
EMULATOR_KEY = "emulator-key"


# Values that are JSON data as they are (exact types: a subclass, such as an enum, takes the
# encoder's way).
_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})


def _plain(value: object) -> object:
    """`value` as `json.loads(json.dumps(value, default=str))` gives it, with a dataclass as
    `dataclasses.asdict` gives it, without the round trip: `asdict` deep-copies every field and
    the round trip encodes and parses every string; the results of one call (an EDGAR report's
    transactions) made them a quarter of its CPU (bench/call_cost.py, 2026-12-07). Anything
    else than dataclasses, dicts, lists, tuples and exact scalars goes the encoder's way, which
    gives the same value (an encoding is made of its parts' encodings)."""
    if type(value) in _JSON_SCALARS:
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        plain = {k: _plain(v) for k, v in value.items()}
        if all(type(k) is str for k in plain):
            return plain
        return json.loads(json.dumps(plain, default=str))  # the encoder's keys: 1 -> "1"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return json.loads(json.dumps(value, default=str))


def as_json(value: object) -> JsonObject:
    """A provider result (frozen dataclass or pydantic model) as plain JSON data."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return _plain(value)  # type: ignore[return-value]


@dataclass(frozen=True)
class ProspectInput:
    """What a provider may read of one prospect of a batch (a row of `prospects`).

    `found` holds the data the data sources returned for it, {source: data}; only the summary
    (Claude) reads it. The phone is not here: no provider is asked by phone."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str | None = None
    company: str | None = None
    title: str | None = None
    email: str | None = None
    linkedin_url: str | None = None
    location: str | None = None
    is_public_company: bool = False
    company_ticker: str | None = None
    company_cik: str | None = None
    found: Mapping[str, JsonObject] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: Mapping[str, object]) -> ProspectInput:
        """From a row of `enrichment.store.batch_prospects` (extra keys are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)} - {"found"}
        values = {k: row[k] for k in names if k in row}
        values["is_public_company"] = bool(values.get("is_public_company"))
        return cls(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ProviderAnswer:
    """A provider's answer for one prospect: `data` for the source's column, or None when the
    provider answered that it knows nobody / nothing (`not_found`). Failures are raised as
    `ProviderError` (`CircuitOpenError` when the breaker let no call through)."""

    data: JsonObject | None

    @classmethod
    def of(cls, result: object | None) -> ProviderAnswer:
        """`result` (a client's typed result, None for nothing found) as an answer."""
        return cls(None if result is None else as_json(result))


@runtime_checkable
class Enricher(Protocol):
    """What the enrichment asset needs of the object bound to a provider's resource key: the
    real resource, or a test's fake."""

    provider_mode: str
    requests_per_second: int | None

    def enrich(self, prospect: ProspectInput) -> ProviderAnswer:
        """Enrich one prospect; raises `ProviderError` on failure."""
        ...

    def rate_limits_in_effect(self) -> dict[str, str]:
        """{endpoint group: "1000/min"} as enforced, for run metadata."""
        ...

    def run_counters(self) -> dict[str, int]:
        """This run's provider-specific counters for run metadata (EDGAR: cache hits)."""
        ...

    def warm_up(self) -> None:
        """Start the provider's one-time set-up in the background: the batch will call it."""
        ...


class EnrichmentProvider:
    """The facts of one enrichment provider (class attributes) and its typed call (`enrich`).

    Mixed into the provider's `ProviderResource` subclass; the registry holds the classes, so a
    fact is read without an instance (asset specs are built at import time)."""

    # The web app's key in `prospects.enrichment_source_status` (EDGAR's is `sec`).
    SOURCE: ClassVar[str]
    # The resource key, and the name in api_usage, api_call_log, the breaker, the rate limits
    # and the Redis counters.
    PROVIDER: ClassVar[str]
    ASSET_KEY: ClassVar[str]
    # The prospects JSONB column the source's data goes to.
    DATA_COLUMN: ClassVar[str]
    # The kind tag the UI shows on the asset, and the asset's description.
    KIND: ClassVar[str]
    DESCRIPTION: ClassVar[str]
    # The environment variable holding the credential (an API key, SEC's declared User-Agent).
    KEY_ENV: ClassVar[str]
    # The provider's real hosts, and the emulator's path prefix standing in for each (same order).
    LIVE_URLS: ClassVar[tuple[str, ...]]
    EMULATOR_PREFIXES: ClassVar[tuple[str, ...]]
    # "module:Class" of the emulator's stand-in, so the emulator mounts it without a list of its
    # own (a string, so that production code never imports the emulator).
    EMULATOR: ClassVar[str]
    EMULATOR_CREDENTIAL: ClassVar[str] = EMULATOR_KEY
    # True for the summary: it reads the data sources' answers and runs after them.
    SUMMARIZES: ClassVar[bool] = False
    # Requests one `enrich` makes in parallel by itself (EDGAR fetches documents 4 at a time):
    # the asset narrows the provider's thread pool by that much.
    FANOUT: ClassVar[int] = 1
    # Requests per second when the plan sets none (`ProviderResource` subclasses define it).
    DEFAULT_RPS: ClassVar[int]
    # Calls per month of the plan we run on: `api_quota_daily`'s default allowance
    # (`PHRONESIS_QUOTA_<PROVIDER>` overrides it).
    MONTHLY_QUOTA: ClassVar[int]

    @classmethod
    def skip_reason(cls, prospect: ProspectInput) -> str | None:
        """Why this provider does not apply to `prospect` (so it is not called), or None."""
        return None

    def warm_up(self) -> None:
        """Start slow one-time set-up (Claude: importing the SDK) in the background, so that
        it overlaps the batch's first calls instead of delaying the provider's first one.
        Nothing to do by default."""

    @abstractmethod
    def enrich(self, prospect: ProspectInput) -> ProviderAnswer:
        """Enrich one prospect (one provider call, its retries included); raises
        `ProviderError` on failure."""

    # -- wiring (resources/providers.py) --------------------------------------------------------

    @classmethod
    def connection_fields(cls, urls: tuple[str, ...], credential: str | dg.EnvVar) -> dict:
        """The resource's config fields for these base URLs and credential."""
        return {"api_key": credential, "base_url": urls[0]}

    @classmethod
    def live_fields(cls) -> dict:
        return cls.connection_fields(cls.LIVE_URLS, dg.EnvVar(cls.KEY_ENV))

    @classmethod
    def emulator_fields(cls, root: str) -> dict:
        urls = tuple(root.rstrip("/") + prefix for prefix in cls.EMULATOR_PREFIXES)
        return cls.connection_fields(urls, cls.EMULATOR_CREDENTIAL)
