"""Benchmark: the CPU one provider request costs in a run process, part by part (issue 11).

bench/enrichment.py measures CPU per provider request in a whole bulk job (threads, waits for
rate-limit slots, a shared machine). This measures the same path one call at a time on one
thread, so each part's own cost shows, and nothing else runs in the process:

- the parts of every call: a rate-limit slot (`SharedRateLimiter.acquire` on a free bucket),
  the HTTP request (httpx to the emulator, keep-alive), the call's one bookkeeping write
  (`CallGuard.write` -> `call_ledger.write_call`: usage, call log, breaker) and the stored outcome
  (`enrichment.store.save_result`: the result row and the prospect's column);
- a whole call per provider: the resource's `enrich` (its request(s), retries machinery,
  parsing, the guard's bookkeeping) + `save_result`, the work a bulk run repeats per call,
  divided by the requests the emulator saw (EDGAR's call makes several);
- the summary's prompt (`claude.build_prompt`: allow-list, contact scrubbing, JSON) made from
  what the four data sources answered in the whole calls, as a bulk run makes it (the whole
  Claude call above summarises one short web mention);
- the same stored outcome and whole calls after `--idle-ms` of sleep before each (default 50 ms,
  the bulk benchmark's emulator latency): a call in a bulk run starts when its answer arrives,
  after its thread slept, and on a mostly idle machine (bulk runs at the published limits keep
  the cores ~10 % busy) the same code then costs several times its CPU in a tight loop (caches,
  branch predictors and, under a hypervisor, the vCPU itself went cold). What a call costs in a
  run lies between the two figures.

CPU is the calling thread's (`time.thread_time`), median of `--rounds` rounds of `--calls`
calls each; the emulator runs in its own process with no latency and limits far above the
calls made, so no wait is measured. PostgreSQL: a database of the bench's own on the server of
`--database-url`.

Usage: `.venv/bin/python bench/call_cost.py [--calls 100] [--rounds 3] [--idle-ms 50]`. The
ratio of the mean CPU per request (tight loop) to the 2 ms target is the last line.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from enrichment import (  # noqa: E402
    EMULATOR_SEED,
    Emulator,
    _new_pg_db,
    fresh_db,
    prospect_inputs,
    seed,
)

from phronesis_dagster.enrichment.store import SourceOutcome, save_result  # noqa: E402
from phronesis_dagster.resources.app_db import AppDatabase  # noqa: E402
from phronesis_dagster.resources.call_ledger import (  # noqa: E402
    BreakerCount,
    CallRecord,
)
from phronesis_dagster.resources.claude import build_prompt, summary_input  # noqa: E402
from phronesis_dagster.resources.contract import ProspectInput  # noqa: E402
from phronesis_dagster.resources.providers import build_provider_resources  # noqa: E402
from phronesis_dagster.resources.rate_limit import SharedRateLimiter  # noqa: E402
from phronesis_dagster.resources.registry import PROVIDERS, emulator_name  # noqa: E402

TARGET_MS = 2.0
HIGH = 1000  # requests per second: far above what the bench makes, so no call waits


def cpu_ms(fn: Callable[[], object], calls: int, rounds: int, idle_s: float = 0.0) -> float:
    """Median over `rounds` of this thread's CPU per call of `fn`, in ms; with `idle_s`, the
    thread sleeps that long before each call (the sleep is not counted)."""
    fn()  # connections, pools, caches: not part of a call's cost
    figures = []
    for _ in range(rounds):
        spent = 0.0
        for _ in range(calls):
            if idle_s:
                time.sleep(idle_s)
            started = time.thread_time()
            fn()
            spent += time.thread_time() - started
        figures.append(spent * 1000 / calls)
    return statistics.median(figures)


def whole_call(
    resource: dg.ConfigurableResource,
    provider: type,
    prospects: Iterator[ProspectInput],
    app_db: AppDatabase,
    tenant: uuid.UUID,
    answers: dict[uuid.UUID, dict[str, object]],
) -> Callable[[], None]:
    """One call as a bulk run makes it: the provider's `enrich`, then its stored outcome (and
    its data kept in `answers`, for the prompts)."""

    def call() -> None:
        p = next(prospects)
        answer = resource.enrich(p)
        if answer.data is not None and not provider.SUMMARIZES:
            answers.setdefault(p.id, {})[provider.SOURCE] = answer.data
        save_result(
            app_db.database_url,
            batch_key=f"bench-{provider.SOURCE}",
            prospect_id=p.id,
            tenant_id=tenant,
            source=provider.SOURCE,
            outcome=SourceOutcome(status="complete", data=answer.data, at=datetime.now(UTC)),
            run_id="bench",
        )

    return call


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle-ms", type=float, default=50.0)
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "PHRONESIS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    high = ",".join(f"{emulator_name(p)}={HIGH}" for p in PROVIDERS)
    emulator = Emulator(latency_ms=0, rate_limit=high)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            app_db = fresh_db(_new_pg_db(args.database_url, "callcost"), Path(tmp))
            n = args.calls * args.rounds + 1
            # n prospects for the tight loop, n others for the calls after an idle.
            tenant, ids = seed(app_db, 2 * n, 1.0, 5)
            prospects = prospect_inputs(app_db, ids)
            print(
                f"CPU per call on one thread (median of {args.rounds} x {args.calls} calls), "
                f"PostgreSQL, emulator without latency, seed {EMULATOR_SEED}:"
            )

            env = {
                **os.environ,
                **emulator.provider_env(),
                "PHRONESIS_PROVIDER_RATE_LIMITS": ",".join(
                    f"{p.PROVIDER}={HIGH}" for p in PROVIDERS
                ),
            }
            resources = build_provider_resources(app_db, env)

            # The parts.
            limiter = SharedRateLimiter("bench", app_db, 1_000_000)
            record = CallRecord("apollo", "people/match", "success", 200, 50.0, None)
            count = BreakerCount("apollo", False, False, None, 20, 0.5, 60.0)
            guard = resources["apollo"].guard  # the write every call makes: CallGuard.write

            outcome = SourceOutcome(
                status="complete", data={"k": "v"}, latency_ms=50.0, at=datetime.now(UTC)
            )
            targets = iter(prospects * 3)

            def save() -> None:
                p = next(targets)
                save_result(
                    app_db.database_url,
                    batch_key="bench",
                    prospect_id=p.id,
                    tenant_id=tenant,
                    source="exa",
                    outcome=outcome,
                    run_id="bench",
                )

            http = httpx.Client(base_url=emulator.url)
            parts = {
                "rate-limit slot (free bucket)": cpu_ms(limiter.acquire, args.calls, args.rounds),
                "HTTP request (httpx, keep-alive)": cpu_ms(
                    lambda: http.get("/_emulator/config"), args.calls, args.rounds
                ),
                "call bookkeeping write (CallGuard.write)": cpu_ms(
                    lambda: guard.write(record, count), args.calls, args.rounds
                ),
                "stored outcome (save_result)": cpu_ms(save, args.calls, args.rounds),
            }
            http.close()
            for name, ms in parts.items():
                print(f"  {name:<40}{ms:6.2f} ms")
            print(f"  {'sum of the parts':<40}{sum(parts.values()):6.2f} ms")

            idle_s = args.idle_ms / 1000
            saved_after_idle = cpu_ms(save, args.calls, args.rounds, idle_s)

            # Whole calls, per provider, in a tight loop and after an idle each.
            print(
                "  whole call (enrich + save_result), per request the emulator saw, in a tight "
                f"loop and after {args.idle_ms:g} ms idle:"
            )
            per_request: dict[str, float] = {}
            # Per call, not per request: EDGAR's calls of the second pass find most of what
            # they need in its cross-run cache (the same few companies), and make few requests.
            per_call: dict[str, float] = {}
            after_idle: dict[str, float] = {}
            answers: dict[uuid.UUID, dict[str, object]] = {}
            for provider in PROVIDERS:
                resource = resources[provider.PROVIDER]
                # The summary is made from what the data sources found.
                found = {"web": {"mentions": [{"title": "Pledges $4 million to the opera"}]}}
                given = [
                    dataclasses.replace(p, found=found) if provider.SUMMARIZES else p
                    for p in prospects
                ]
                todo = [p for p in given if provider.skip_reason(p) is None]
                with dg.build_init_resource_context() as context:
                    resource.setup_for_execution(context)
                    resource.warm_up()
                    # Round and round if a provider applies to fewer than 2n of them.
                    queue = itertools.cycle(todo)
                    call = whole_call(resource, provider, queue, app_db, tenant, answers)
                    seen = emulator.stats()["requests"].get(emulator_name(provider), 0)
                    ms = cpu_ms(call, args.calls, args.rounds)
                    made = emulator.stats()["requests"].get(emulator_name(provider), 0) - seen
                    per_request[provider.SOURCE] = ms * n / max(made, 1)
                    per_call[provider.SOURCE] = ms
                    after_idle[provider.SOURCE] = cpu_ms(call, args.calls, args.rounds, idle_s)
                    print(
                        f"    {provider.SOURCE:<10}{ms:6.2f} ms per call, "
                        f"{made / n:4.1f} requests per call: "
                        f"{per_request[provider.SOURCE]:6.2f} ms per request; "
                        f"after idle {after_idle[provider.SOURCE]:6.2f} ms per call"
                    )
                    resource.teardown_after_execution(context)
            mean = statistics.mean(per_request.values())
            print(
                f"  mean over the five providers: {mean:.2f} ms per request; per call "
                f"{statistics.mean(per_call.values()):.2f} ms in the tight loop, "
                f"{statistics.mean(after_idle.values()):.2f} ms after idle"
            )
            print(
                f"  stored outcome (save_result) after {args.idle_ms:g} ms idle: "
                f"{saved_after_idle:.2f} ms ({parts['stored outcome (save_result)']:.2f} ms in "
                "the tight loop)"
            )

            by_id = {p.id: p for p in prospects}
            prompts = [(summary_input(by_id[i]), f) for i, f in answers.items() if f]
            asked = iter(prompts * (args.rounds + 1) * (args.calls // max(len(prompts), 1) + 1))
            ms = cpu_ms(lambda: build_prompt(*next(asked)), args.calls, args.rounds)
            sources = statistics.mean(len(f) for _, f in prompts)
            print(
                f"  summary prompt (build_prompt) of {len(prompts)} prospects' answers "
                f"({sources:.1f} sources each): {ms:.2f} ms"
            )
            print(f"\nCPU per provider request / {TARGET_MS:g} ms target = {mean / TARGET_MS:.2f}")
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
