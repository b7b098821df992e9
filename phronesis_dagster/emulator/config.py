"""Settings of the provider emulator: seed, latency, rate limits and fault injection."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from phronesis_dagster.resources.registry import PROVIDERS as _REGISTRY
from phronesis_dagster.resources.registry import emulator_name

# The emulated providers, by their emulator names (`anthropic` for Claude), from the registry.
PROVIDERS: tuple[str, ...] = tuple(emulator_name(p) for p in _REGISTRY)

# The providers' published limits as requests per fixed second, the emulator's default (so
# tests and the demo run under the real shape). "provider.group" = one endpoint group.
# Exa /search 10/s; ContactOut 1,200/min (search 60/min); Apollo paid plans: enrichment
# 1,000/min, search 200/min; Anthropic 1,000/min (a common tier); SEC 10/s. Per-minute limits
# as their per-second share, rounded down (the clients enforce the same). Written here, not read
# from the resources: this is the providers' side of the wire, and an emulator that took the
# clients' numbers would agree with a client that got them wrong
# (tests/emulator/test_published_limits.py keeps the two in step).
PUBLISHED_RATE_LIMITS: dict[str, float | None] = {
    "exa": 10,
    "contactout": 20,
    "contactout.search": 1,
    "apollo": 3,
    "apollo.enrichment": 16,
    "apollo.search": 3,
    "anthropic": 16,
    "edgar": 10,
}


@dataclass
class ProviderFaults:
    """Fault injection for one provider; every rate is a probability in [0, 1].

    `timeout_seconds` is how long a request picked by `timeout_rate` sleeps before it is
    answered; set it above the client's read timeout so the client gives up first.
    """

    error_rate: float = 0.0
    timeout_rate: float = 0.0
    timeout_seconds: float = 5.0
    malformed_rate: float = 0.0
    unauthorized: bool = False
    storm_429_rate: float = 0.0
    retry_after_seconds: int = 1
    # SEC EDGAR only: how long an IP stays blocked once over the limit (SEC: 10 minutes).
    block_seconds: float = 600.0
    # A named provider case answered to every request (each provider module lists its own in
    # `scenarios`, e.g. apollo "hourly_quota_spent", contactout and exa "out_of_credits", anthropic
    # "refusal"; every provider has "redirect" and "redirect_loop"). "" = normal answers.
    scenario: str = ""

    def update(self, values: dict[str, Any]) -> None:
        """Replace the given fields, rejecting unknown names so typos do not pass silently."""
        names = {f.name for f in dataclasses.fields(self)}
        for key, value in values.items():
            if key not in names:
                raise ValueError(f"unknown fault setting {key!r}; expected one of {sorted(names)}")
            setattr(self, key, value)


@dataclass
class EmulatorConfig:
    """Everything that steers the emulator.

    Data depends only on `seed`; `rate_limit_per_second` maps a provider name (or
    "provider.group" for one endpoint group) to a request budget per fixed one-second window
    (None = unlimited), by default the published limits; `faults` maps a provider name to its
    `ProviderFaults`.
    """

    seed: int = 0
    latency_ms: float = 0.0
    rate_limit_per_second: dict[str, float | None] = field(
        default_factory=lambda: dict(PUBLISHED_RATE_LIMITS)
    )
    faults: dict[str, ProviderFaults] = field(
        default_factory=lambda: {name: ProviderFaults() for name in PROVIDERS}
    )

    def fault(self, provider: str) -> ProviderFaults:
        """The fault settings of `provider` (created on first use)."""
        return self.faults.setdefault(provider, ProviderFaults())

    def update(self, values: dict[str, Any]) -> None:
        """Apply a partial update, as sent to `POST /_emulator/config`.

        Accepted keys: `seed`, `latency_ms`, `rate_limit_per_second` ({provider: n|None},
        merged), `faults` ({provider: {field: value}}, merged per field) and `reset_faults`
        (true = clear every fault before applying the rest).
        """
        values = dict(values)
        if values.pop("reset_faults", False):
            self.faults = {name: ProviderFaults() for name in PROVIDERS}
        for key, value in values.items():
            if key == "seed":
                self.seed = int(value)
            elif key == "latency_ms":
                self.latency_ms = float(value)
            elif key == "rate_limit_per_second":
                for provider, limit in dict(value).items():
                    _check_provider(provider.partition(".")[0])
                    if "." not in provider:
                        # A provider-wide limit replaces its per-endpoint ones.
                        for key in [
                            k for k in self.rate_limit_per_second if k.startswith(provider + ".")
                        ]:
                            del self.rate_limit_per_second[key]
                    self.rate_limit_per_second[provider] = None if limit is None else float(limit)
            elif key == "faults":
                for provider, settings in dict(value).items():
                    _check_provider(provider)
                    self.fault(provider).update(dict(settings))
            else:
                raise ValueError(f"unknown config key {key!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view, returned by the admin endpoint."""
        return dataclasses.asdict(self)


def _check_provider(name: str) -> None:
    if name not in PROVIDERS:
        raise ValueError(f"unknown provider {name!r}; expected one of {list(PROVIDERS)}")
