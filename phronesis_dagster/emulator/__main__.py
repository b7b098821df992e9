"""Run the emulator standalone: `python -m phronesis_dagster.emulator --port 8765`."""

from __future__ import annotations

import argparse
import json
import signal
import threading

from phronesis_dagster.emulator.config import PROVIDERS, EmulatorConfig
from phronesis_dagster.emulator.server import EmulatorServer


def _provider_map(text: str) -> dict[str, float]:
    """Parse 'exa=100,edgar=10' into {'exa': 100.0, 'edgar': 10.0}."""
    result: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        if name not in PROVIDERS:
            raise argparse.ArgumentTypeError(f"unknown provider {name!r}")
        result[name] = float(value)
    return result


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, start the server and block until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m phronesis_dagster.emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument(
        "--rate-limit",
        type=_provider_map,
        default={},
        help="requests per second per provider, e.g. exa=100,edgar=10",
    )
    parser.add_argument(
        "--error-rate",
        type=_provider_map,
        default={},
        help="5xx probability per provider, e.g. anthropic=0.05",
    )
    parser.add_argument("--timeout-rate", type=_provider_map, default={})
    parser.add_argument("--malformed-rate", type=_provider_map, default={})
    parser.add_argument("--storm-429-rate", type=_provider_map, default={})
    args = parser.parse_args(argv)

    config = EmulatorConfig(
        seed=args.seed, latency_ms=args.latency_ms, rate_limit_per_second=dict(args.rate_limit)
    )
    for setting in ("error_rate", "timeout_rate", "malformed_rate", "storm_429_rate"):
        for provider, rate in getattr(args, setting).items():
            setattr(config.fault(provider), setting, rate)

    server = EmulatorServer(config, host=args.host, port=args.port).start()
    print(f"provider emulator listening on {server.url}", flush=True)
    print(json.dumps(server.base_urls(), indent=2), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
