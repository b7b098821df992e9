"""The test fake of a provider: one per source, bound under the provider's resource key.

The enrichment asset reads every fact of a provider (asset key, skip reason, pool width) from its
class in the registry; only `enrich` - the call - is faked, scripted per prospect name."""

from __future__ import annotations

import threading
from collections import Counter

from phronesis_dagster.resources.contract import JsonObject, ProspectInput, ProviderAnswer
from phronesis_dagster.resources.errors import CircuitOpenError, ProviderUnavailableError
from phronesis_dagster.resources.registry import PROVIDERS, Provider


class FakeProvider:
    """Stands in for `provider`'s resource. `behaviour[name]` is 'ok' (data), 'none' (not
    found), 'fail' (a provider error after retries) or 'open' (circuit open) per prospect name;
    `calls` counts the calls per name."""

    provider_mode = "emulator"
    requests_per_second: int | None = 10

    def __init__(self, provider: Provider, behaviour: dict[str, str] | None = None) -> None:
        self.provider = provider
        self.behaviour = behaviour or {}
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.warmed_up = False

    def rate_limits_in_effect(self) -> dict[str, str]:
        return {}

    def run_counters(self) -> dict[str, int]:
        return {}

    def warm_up(self) -> None:
        self.warmed_up = True

    def enrich(self, prospect: ProspectInput) -> ProviderAnswer:
        # The asset never calls a provider for a prospect it does not apply to.
        assert self.provider.skip_reason(prospect) is None, (self.provider.SOURCE, prospect)
        name = prospect.name or ""
        with self._lock:
            self.calls[name] += 1
        mode = self.behaviour.get(name, "ok")
        if mode == "fail":
            raise ProviderUnavailableError(
                self.provider.PROVIDER, "HTTP 503 after 3 attempts", http_status=503
            )
        if mode == "open":
            raise CircuitOpenError(self.provider.PROVIDER, "circuit open")
        if mode == "none":
            return ProviderAnswer(None)
        return ProviderAnswer(self.data(prospect))

    def data(self, prospect: ProspectInput) -> JsonObject:
        if self.provider.SUMMARIZES:
            # The summary's shape: the prose the web app shows, and the sources it was made from.
            return {
                "summary": f"{prospect.name} from {sorted(prospect.found)}",
                "key_facts": [],
                "wealth_signals": [],
                "talking_points": [],
                "sources": sorted(prospect.found),
            }
        return {"who": prospect.name}


def fake_providers() -> dict[str, FakeProvider]:
    """One fake per provider of the registry, by resource key."""
    return {p.PROVIDER: FakeProvider(p) for p in PROVIDERS}
