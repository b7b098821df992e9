"""Pytest fixture `emulator`: a provider emulator on a free port, no latency, no faults.

Import it into a conftest (`from tests.emulator_fixture import emulator`) to use it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from phronesis_dagster.emulator import EmulatorConfig, EmulatorServer


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    """A running `EmulatorServer` (seed 0); `emulator.base_urls()` gives the client URLs."""
    server = EmulatorServer(EmulatorConfig(seed=0, latency_ms=0)).start()
    try:
        yield server
    finally:
        server.stop()
