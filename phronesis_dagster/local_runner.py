"""Drive enrichment without the Dagster daemon: evaluate the request sensors, run the batches they
ask for in this process, repeat until nothing is pending. Used by the demo and the tests; in
production the daemon does the same with the real sensor ticks and run launcher."""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import dagster as dg
import sqlalchemy as sa

# `python -m phronesis_dagster.local_runner` imports Dagster only now, after the package's own
# gc.freeze() (phronesis_dagster/__init__.py): freezing again here keeps Dagster's objects out
# of the collections while the code below loads, as in a launched run.
gc.freeze()

from phronesis_dagster.assets.enrichment.partitions import (  # noqa: E402
    enrichment_batch_partitions,
)
from phronesis_dagster.db.models import (  # noqa: E402
    EnrichmentRequest,
    EnrichmentSourceResult,
    Prospect,
)
from phronesis_dagster.enrichment.requests import utcnow  # noqa: E402
from phronesis_dagster.enrichment.store import fail_batch  # noqa: E402
from phronesis_dagster.sensors.enrichment import (  # noqa: E402
    REQUEST_SENSOR_NAMES,
    TICK_WAIT_ENV,
)


@dataclass
class EnrichmentRunSummary:
    """What `run_pending_enrichment` did."""

    ticks: int = 0
    runs: list[tuple[str, str, bool]] = field(default_factory=list)  # (batch, run_id, success)
    # {source: {status: count}} over the batches run
    source_outcomes: dict[str, dict[str, int]] = field(default_factory=dict)
    # {enrichment_status: count} of the prospects in those batches
    prospect_status: dict[str, int] = field(default_factory=dict)
    # {status: count} of every enrichment request
    request_status: dict[str, int] = field(default_factory=dict)

    @property
    def batches(self) -> list[str]:
        return [b for b, _, _ in self.runs]


@contextmanager
def _no_tick_wait() -> Iterator[None]:
    """An idle interactive tick returns at once here: the runner ticks again itself."""
    before = os.environ.get(TICK_WAIT_ENV)
    os.environ[TICK_WAIT_ENV] = "0"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(TICK_WAIT_ENV, None)
        else:
            os.environ[TICK_WAIT_ENV] = before


def run_pending_enrichment(
    instance: dg.DagsterInstance,
    defs: dg.Definitions,
    *,
    sensor_names: Sequence[str] = REQUEST_SENSOR_NAMES,
    max_ticks: int = 50,
    log: Callable[[str], None] | None = None,
    run_config: dict | None = None,
) -> EnrichmentRunSummary:
    """Evaluate the request sensors `sensor_names` that `defs` has (with `build_sensor_context`
    on the persistent `instance`; an idle tick does not wait for a click), add their batch
    partitions, execute each requested batch run in this process, and tick again until a round
    of ticks requests no new run. A failed run closes its batch the way
    `enrichment_run_failure_sensor` would. Returns per-source outcome counts of those batches.

    `defs` must bind `app_db` and the provider resources (contactout, exa, edgar - the `sec`
    source -, apollo, claude). `run_config` goes to every batch run (the demo quiets the console
    logger)."""
    say = log or (lambda _msg: None)
    defined = {s.name for s in defs.sensors or []}
    names = [name for name in sensor_names if name in defined]
    if not names:
        raise ValueError(f"defs has none of the request sensors {', '.join(sensor_names)}")
    app_db = defs.resources["app_db"]
    summary = EnrichmentRunSummary()
    cursors: dict[str, str | None] = dict.fromkeys(names)
    executed: set[str] = set()
    for _ in range(max_ticks):
        requests: list[dg.RunRequest] = []
        for name in names:
            context = dg.build_sensor_context(
                instance=instance,
                cursor=cursors[name],
                definitions=defs,
                sensor_name=name,
                resources={"app_db": app_db},
            )
            with _no_tick_wait():
                result = defs.resolve_sensor_def(name)(context)
            summary.ticks += 1
            if isinstance(result, dg.SensorResult):
                cursors[name] = result.cursor
            requests += [
                r
                for r in (getattr(result, "run_requests", None) or [])
                if r.run_key not in executed
            ]
        if not requests:
            break
        instance.add_dynamic_partitions(
            enrichment_batch_partitions.name, [r.partition_key for r in requests]
        )
        for request in requests:
            batch = request.partition_key
            executed.add(request.run_key)
            say(f"running {batch} ({request.tags.get('phronesis/batch_prospects')} prospects)")
            outcome = execute_batch(
                defs, batch, instance=instance, tags=dict(request.tags), run_config=run_config
            )
            summary.runs.append((batch, outcome.run_id, outcome.success))
    _fill_counts(app_db.engine, summary)
    return summary


def _fill_counts(engine: sa.Engine, summary: EnrichmentRunSummary) -> None:
    batches = summary.batches
    res, req, pros = (
        EnrichmentSourceResult.__table__,
        EnrichmentRequest.__table__,
        Prospect.__table__,
    )
    with engine.connect() as conn:
        if batches:
            for r in conn.execute(
                sa.select(res.c.source, res.c.status, sa.func.count())
                .where(res.c.batch_key.in_(batches))
                .group_by(res.c.source, res.c.status)
            ):
                summary.source_outcomes.setdefault(r[0], {})[r[1]] = int(r[2])
            in_batches = sa.select(req.c.prospect_id).where(req.c.batch_key.in_(batches))
            for r in conn.execute(
                sa.select(pros.c.enrichment_status, sa.func.count())
                .where(pros.c.id.in_(in_batches))
                .group_by(pros.c.enrichment_status)
            ):
                summary.prospect_status[r[0]] = int(r[1])
        for r in conn.execute(sa.select(req.c.status, sa.func.count()).group_by(req.c.status)):
            summary.request_status[r[0]] = int(r[1])


def execute_batch(
    defs: dg.Definitions,
    batch_key: str,
    *,
    instance: dg.DagsterInstance | None = None,
    max_workers_per_provider: int | None = None,
    tags: dict[str, str] | None = None,
    run_config: dict | None = None,
) -> dg.ExecuteInProcessResult:
    """Execute `enrichment_batch_job` for one batch in this process (a throwaway instance unless
    one is given). A failed run closes its batch like the failure sensor would."""
    from phronesis_dagster.jobs import enrichment_batch_job

    instance = instance or dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(enrichment_batch_partitions.name, [batch_key])
    run_config = dict(run_config or {})
    if max_workers_per_provider:
        run_config["ops"] = {
            "enrich_batch": {"config": {"max_workers_per_provider": max_workers_per_provider}}
        }
    job = defs.resolve_job_def(enrichment_batch_job.name)
    result = job.execute_in_process(
        instance=instance,
        partition_key=batch_key,
        raise_on_error=False,
        run_config=run_config or None,
        tags=tags,
    )
    if not result.success:
        fail_batch(
            defs.resources["app_db"].engine,
            batch_key,
            error="run failed (see the run's logs)",
            run_id=result.run_id,
            now=utcnow(),
        )
    return result


def main(argv: list[str] | None = None) -> int:
    """`python -m phronesis_dagster.local_runner DB_URL BATCH_KEY [WORKERS]`: run one
    batch in a fresh process, the way a launched run does; providers from the environment
    (`PHRONESIS_PROVIDER_MODE`, `PHRONESIS_EMULATOR_URL` or the API keys)."""
    import sys

    from phronesis_dagster.assets.enrichment import ENRICHMENT_ASSETS
    from phronesis_dagster.jobs import enrichment_batch_job
    from phronesis_dagster.resources.app_db import AppDatabase
    from phronesis_dagster.resources.providers import build_provider_resources

    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (2, 3):
        print(main.__doc__)
        return 2
    app_db = AppDatabase(url=args[0])
    defs = dg.Definitions(
        assets=ENRICHMENT_ASSETS,
        jobs=[enrichment_batch_job],
        resources={"app_db": app_db, **build_provider_resources(app_db)},
    )
    gc.freeze()  # the code location's objects too, as definitions.py does
    workers = int(args[2]) if len(args) == 3 else None
    return 0 if execute_batch(defs, args[1], max_workers_per_provider=workers).success else 1


if __name__ == "__main__":
    raise SystemExit(main())
