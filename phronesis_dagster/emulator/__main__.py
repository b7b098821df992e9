"""Run the emulator standalone: `python -m phronesis_dagster.emulator --port 8765`."""

from __future__ import annotations

import argparse
import json
import signal
import threading

from phronesis_dagster.emulator.config import PROVIDERS, PUBLISHED_RATE_LIMITS, EmulatorConfig
from phronesis_dagster.emulator.server import EmulatorServer


def _provider_map(text: str) -> dict[str, float]:
    """Parse 'exa=100,edgar=10' into {'exa': 100.0, 'edgar': 10.0}."""
    result: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        if name not in PROVIDERS:
            raise argparse.ArgumentTypeError(f"unknown provider {name!r}")
        result[name] = _number(part, value)
    return result


def _rate_map(text: str) -> dict[str, float | None]:
    """Parse 'exa=100,apollo.search=5,edgar=none' into per-second limits per provider or
    "provider.group" (none = unlimited)."""
    result: dict[str, float | None] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, _, value = part.partition("=")
        name, _, group = key.strip().partition(".")
        if name not in PROVIDERS:
            raise argparse.ArgumentTypeError(f"unknown provider {name!r}")
        groups = {k.partition(".")[2] for k in PUBLISHED_RATE_LIMITS if k.startswith(name + ".")}
        if group and group not in groups:
            raise argparse.ArgumentTypeError(
                f"{name} has no endpoint group {group!r}"
                + (f" (one of {', '.join(sorted(groups))})" if groups else "")
            )
        result[key.strip()] = None if value.strip().lower() == "none" else _number(part, value)
    return result


def _number(part: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{part!r}: expected provider=number") from None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line's arguments (sys.argv when `argv` is None)."""
    parser = argparse.ArgumentParser(prog="python -m phronesis_dagster.emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument(
        "--rate-limit",
        type=_rate_map,
        default={},
        help="override the published limits (the default) in requests per second, per provider "
        "or endpoint group, e.g. exa=100,apollo.search=5,edgar=none (none = unlimited); a "
        "provider-wide value replaces its endpoint groups' limits",
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
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, start the server and block until interrupted."""
    args = parse_args(argv)
    config = build_config(args)
    server = EmulatorServer(config, host=args.host, port=args.port).start()
    print(f"provider emulator listening on {server.url}", flush=True)
    print(json.dumps(server.base_urls(), indent=2), flush=True)
    print(f"rate limits (requests/s): {json.dumps(config.rate_limit_per_second)}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def build_config(args: argparse.Namespace) -> EmulatorConfig:
    """The emulator's settings from the parsed arguments: the published rate limits, except
    those `--rate-limit` overrides (merged as `POST /_emulator/config` merges them)."""
    config = EmulatorConfig(seed=args.seed, latency_ms=args.latency_ms)
    if args.rate_limit:
        config.update({"rate_limit_per_second": args.rate_limit})
    for setting in ("error_rate", "timeout_rate", "malformed_rate", "storm_429_rate"):
        for provider, rate in getattr(args, setting).items():
            setattr(config.fault(provider), setting, rate)
    return config


if __name__ == "__main__":
    main()
