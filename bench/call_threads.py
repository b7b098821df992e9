"""Benchmark: a batch's provider calls as a run makes them, without the run (issue 11).

bench/enrichment.py measures CPU per provider request in whole Dagster runs (four at a time, a
2,000-prospect job: four and a half minutes, and its figure moves by 10-20 % from one run to the
next on a shared machine). bench/call_cost.py measures one call at a time on one thread. This
sits between the two: `assets/enrichment/calls.run_calls`, the fan-out `enrich_batch` uses (one
thread pool per provider, its width from `pool_width`, each outcome stored as it arrives, a
prospect's summary as soon as its four data sources are in), in this process, against the
emulator at `--latency-ms` and the published rate limits, as in a bulk run; no Dagster run, no
other run process. A round of 300 prospects takes about 35 s (Exa's 10/s).

Printed per round: the provider requests the emulator saw, this process's CPU per request, and
its context switches per request (voluntary: a thread blocked, on a socket, a lock, a sleep or
the GIL; involuntary: preempted), then the median over the rounds of each, and each provider's
`enrich` CPU per call on its own thread (`time.thread_time`: its request, the guard's slot and
write, parsing; not the stored outcome).

Usage: `.venv/bin/python bench/call_threads.py [--prospects 300] [--rounds 3] [--latency-ms 50]
[--workers N]`. The ratio of the median CPU per request to the 2 ms target is the last line.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import dagster as dg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from enrichment import Emulator, _new_pg_db, fresh_db, prospect_inputs, seed  # noqa: E402

from phronesis_dagster.assets.enrichment.calls import pool_width, run_calls  # noqa: E402
from phronesis_dagster.enrichment.constants import COMPLETE  # noqa: E402
from phronesis_dagster.enrichment.progress import ProgressLogger  # noqa: E402
from phronesis_dagster.enrichment.store import SourceOutcome  # noqa: E402
from phronesis_dagster.resources.contract import Enricher, ProspectInput, ProviderAnswer  # noqa: E402
from phronesis_dagster.resources.providers import build_provider_resources  # noqa: E402
from phronesis_dagster.resources.registry import (  # noqa: E402
    DATA_PROVIDERS,
    PROVIDERS,
    SUMMARY_PROVIDER,
    Provider,
)

TARGET_MS = 2.0


class TimedEnricher:
    """A provider resource whose `enrich` adds its thread's CPU to a shared tally."""

    def __init__(self, inner: Enricher, source: str, tally: Counter[str], lock: threading.Lock):
        self._inner = inner
        self._source = source
        self._tally = tally
        self._lock = lock

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    def enrich(self, prospect: ProspectInput) -> ProviderAnswer:
        started = time.thread_time()
        try:
            return self._inner.enrich(prospect)
        finally:
            spent = time.thread_time() - started
            with self._lock:
                self._tally[self._source] += spent
                self._tally[f"{self._source}#calls"] += 1


def one_round(
    app_db_url: str,
    batch_key: str,
    chunk: list[ProspectInput],
    clients: dict[Provider, Enricher],
    workers: int,
) -> None:
    """`run_calls` over `chunk` as `enrich_batch` makes it: the four data sources for every
    prospect, the summary of each as soon as its data sources are in."""
    found: dict[uuid.UUID, dict[str, SourceOutcome]] = {}

    def summary_due(
        provider: Provider, prospect: ProspectInput, outcome: SourceOutcome
    ) -> list[ProspectInput]:
        mine = found.setdefault(prospect.id, {})
        mine[provider.SOURCE] = outcome
        if len(mine) < len(DATA_PROVIDERS):
            return []
        data = {s: o.data for s, o in mine.items() if o.status == COMPLETE and o.data}
        return [dataclasses.replace(prospect, found=data)]

    run_calls(
        app_db_url=app_db_url,
        batch_key=batch_key,
        run_id="bench",
        work={p: chunk for p in DATA_PROVIDERS},
        clients=clients,
        widths={p: workers or pool_width(p, clients[p], len(chunk)) for p in PROVIDERS},
        progress=ProgressLogger(lambda _: None, label=batch_key, total=len(chunk)),
        follow_up=(SUMMARY_PROVIDER, summary_due),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prospects", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--workers", type=int, default=0, help="threads per provider (0: run's)")
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "PHRONESIS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    # The emulator enforces the published limits (no --rate-limit), the resources theirs.
    emulator = Emulator(latency_ms=args.latency_ms)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            app_db = fresh_db(_new_pg_db(args.database_url, "threads"), Path(tmp))
            _, ids = seed(app_db, args.prospects * args.rounds, 0.1, 5)
            prospects = prospect_inputs(app_db, ids)
            resources = build_provider_resources(app_db, {**os.environ, **emulator.provider_env()})
            tally: Counter[str] = Counter()
            lock = threading.Lock()
            clients: dict[Provider, Enricher] = {}
            with dg.build_init_resource_context() as context:
                for provider in PROVIDERS:
                    resources[provider.PROVIDER].setup_for_execution(context)
                    clients[provider] = TimedEnricher(
                        resources[provider.PROVIDER], provider.SOURCE, tally, lock
                    )
                resources[SUMMARY_PROVIDER.PROVIDER].warm_up()
                print(
                    f"run_calls in this process: {args.prospects} prospects per round, emulator "
                    f"latency {args.latency_ms} ms, published limits, threads per provider: "
                    f"{args.workers or 'as a run sizes them'}"
                )
                cpu, voluntary, involuntary = [], [], []
                for i in range(args.rounds):
                    chunk = prospects[i * args.prospects : (i + 1) * args.prospects]
                    seen = sum(emulator.stats()["requests"].values())
                    before = resource.getrusage(resource.RUSAGE_SELF)
                    cpu_before, wall_before = time.process_time(), time.perf_counter()
                    one_round(app_db.database_url, f"round-{i}", chunk, clients, args.workers)
                    spent = time.process_time() - cpu_before
                    wall = time.perf_counter() - wall_before
                    after = resource.getrusage(resource.RUSAGE_SELF)
                    made = sum(emulator.stats()["requests"].values()) - seen
                    cpu.append(spent * 1000 / made)
                    voluntary.append((after.ru_nvcsw - before.ru_nvcsw) / made)
                    involuntary.append((after.ru_nivcsw - before.ru_nivcsw) / made)
                    print(
                        f"  round {i + 1}: {made} requests in {wall:.1f} s, "
                        f"{cpu[-1]:.2f} ms CPU per request, context switches per request: "
                        f"{voluntary[-1]:.1f} voluntary, {involuntary[-1]:.1f} involuntary"
                    )
                for provider in PROVIDERS:
                    resources[provider.PROVIDER].teardown_after_execution(context)
            print(
                f"  median: {statistics.median(cpu):.2f} ms CPU per request, "
                f"{statistics.median(voluntary):.1f} voluntary context switches per request"
            )
            print("  enrich's CPU per call on its thread (all rounds):")
            for provider in PROVIDERS:
                calls = tally[f"{provider.SOURCE}#calls"]
                per_call = tally[provider.SOURCE] * 1000 / max(calls, 1)
                print(f"    {provider.SOURCE:<10}{per_call:6.2f} ms ({calls} calls)")
            ratio = statistics.median(cpu) / TARGET_MS
            print(f"\nCPU per provider request / {TARGET_MS:g} ms target = {ratio:.2f}")
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
