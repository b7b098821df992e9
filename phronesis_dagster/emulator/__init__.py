"""Provider emulator: a real local HTTP server speaking the wire formats of ContactOut, Exa,
SEC EDGAR, Apollo and the Anthropic Messages API, for tests and demos without network access.

    with EmulatorServer(EmulatorConfig(seed=7)) as emu:
        urls = emu.base_urls()   # contactout, exa, edgar_www, edgar_data, apollo, anthropic
        emu.configure(faults={"exa": {"error_rate": 0.1}}, rate_limit_per_second={"edgar": 10})
        emu.stats()              # requests per provider, per route and status, request keys

Admin endpoints for other processes: `GET /_emulator/stats`, `GET|POST /_emulator/config`
(partial update, same keys as `EmulatorConfig.update`), `POST /_emulator/reset`,
`GET /_emulator/health`. Standalone: `python -m phronesis_dagster.emulator --port 8765`.
"""

from phronesis_dagster.emulator.config import PROVIDERS, EmulatorConfig, ProviderFaults
from phronesis_dagster.emulator.data import edgar_insiders
from phronesis_dagster.emulator.server import (
    EmulatorServer,
    base_urls_for,
    remote_configure,
    remote_stats,
)

__all__ = [
    "PROVIDERS",
    "EmulatorConfig",
    "EmulatorServer",
    "ProviderFaults",
    "base_urls_for",
    "edgar_insiders",
    "remote_configure",
    "remote_stats",
]
