"""Set the per-provider concurrency pool limits in a Dagster instance's storage.

Assets that call one provider declare `pool="<provider>"`. `dagster.yaml` can only hold the default
limit for pools; the per-pool limits live in the instance's event-log storage (PostgreSQL), so
they are written once per deploy by this script (the Helm chart in deploy/helm runs it as a
post-upgrade Job). It is idempotent: running it again sets the same numbers.

    DAGSTER_HOME=/opt/dagster/dagster_home python deploy/pool_limits.py
    python deploy/pool_limits.py --set exa=8 --set claude=2   # override for this instance

How to size a pool: a pool slot is one step calling that provider at a time. Each step keeps
about one request in flight, so slots ≈ the provider's requests per second x the typical
latency in seconds, rounded down, and never more than the quota allows per day divided by the
calls a step makes. The client-side rate limiter (resources/rate_limit.py) still holds the
requests-per-second line if the pool is sized too large; an undersized pool only queues steps.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence

import dagster as dg

# Steps allowed to call each provider at once, across all runs.
POOL_LIMITS: dict[str, int] = {
    # ContactOut: small per-minute quota and the most expensive lookups.
    "contactout": 2,
    # Exa: search, fast, a generous per-second limit.
    "exa": 4,
    # SEC EDGAR: 10 requests/s per User-Agent for the whole company, shared with the web app.
    "edgar": 3,
    # Apollo: per-minute and per-day caps on the plan.
    "apollo": 2,
    # Claude: tokens-per-minute bound; a few concurrent summaries saturate it.
    "claude": 4,
}


def apply_pool_limits(
    instance: dg.DagsterInstance, limits: Mapping[str, int] = POOL_LIMITS
) -> dict[str, int]:
    """Write `limits` into the instance's pool storage; returns the limits now stored."""
    for pool, limit in limits.items():
        if limit < 0:
            raise ValueError(f"pool {pool!r}: limit must be >= 0, got {limit}")
        instance.event_log_storage.set_concurrency_slots(pool, limit)
    return {
        pool: instance.event_log_storage.get_concurrency_info(pool).slot_count for pool in limits
    }


def _parse_override(text: str) -> tuple[str, int]:
    pool, sep, limit = text.partition("=")
    if not sep or not pool or not limit.isdigit():
        raise argparse.ArgumentTypeError(f"expected POOL=N, got {text!r}")
    return pool, int(limit)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        type=_parse_override,
        default=[],
        metavar="POOL=N",
        help="override one pool's limit (repeatable)",
    )
    args = parser.parse_args(argv)
    limits = {**POOL_LIMITS, **dict(args.overrides)}
    with dg.DagsterInstance.get() as instance:
        stored = apply_pool_limits(instance, limits)
    for pool, limit in sorted(stored.items()):
        print(f"pool {pool}: {limit} concurrent steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
