"""The heartbeat of a running enrichment batch, in the app database.

A run launcher that watches its workers (Kubernetes: `K8sRunLauncher`) lets Dagster's run
monitoring fail a run whose pod died, and the code server fails a run whose subprocess it saw
die. Neither can tell when the process died together with whatever was watching it: the daemon
and its code server killed with their runs, a run started by `dagster job execute`, a lost
host. Such a run stays STARTED for ever and its requests `running`.

So the batch says it is alive: while its steps run, a thread of the run process stamps the
run's row of `enrichment_run_heartbeats` every `interval` seconds (database server clock), and
`enrichment_recovery_sensor` fails a STARTED run silent for longer than the silence bound;
Dagster's run retries then re-execute it from failure, and the stored source results keep the
finished sources from being called again.

The thread never dies of a fault: a beat that fails (PostgreSQL restarting, pool exhausted) is
logged and the next one is tried `interval` seconds later. It is also a fence: when it finds its
run already failed or canceled in Dagster (the recovery sensor gave up on it while it was merely
stalled), the process exits at once, so that it cannot race the retry that replaces it.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import dagster as dg
import sqlalchemy as sa

from phronesis_dagster.db.sql_files import load_sql

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS_ENV = "PHRONESIS_HEARTBEAT_SECONDS"
SILENCE_SECONDS_ENV = "PHRONESIS_RECOVERY_SILENCE_SECONDS"
# A beat every 5 s and a 60 s silence bound: a dozen missed beats (a PostgreSQL restart, a GC
# pause, a saturated CPU) before anyone acts, and a killed batch resumes within about
# 60 s + a sensor interval + the run queue, inside the 2-minute target.
DEFAULT_HEARTBEAT_SECONDS = 5.0
DEFAULT_SILENCE_SECONDS = 60.0
# Exit status of a process fenced off by its own heartbeat (EX_SOFTWARE).
FENCED_EXIT_CODE = 70
_FINISHED = {dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


def _seconds(env: str, default: float) -> float:
    raw = os.environ.get(env)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{env} must be a number of seconds, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{env} must be positive, got {raw!r}")
    return value


def heartbeat_seconds() -> float:
    """Seconds between two beats (`PHRONESIS_HEARTBEAT_SECONDS`, default 5)."""
    return _seconds(HEARTBEAT_SECONDS_ENV, DEFAULT_HEARTBEAT_SECONDS)


def silence_seconds() -> float:
    """How long a STARTED run may stay silent before it is failed
    (`PHRONESIS_RECOVERY_SILENCE_SECONDS`, default 60); always at least three beats."""
    return max(_seconds(SILENCE_SECONDS_ENV, DEFAULT_SILENCE_SECONDS), 3 * heartbeat_seconds())


def beat(engine: sa.Engine, *, run_id: str, batch_key: str) -> None:
    """Stamp the run's heartbeat row now (created on the first beat)."""
    with engine.begin() as conn:
        conn.execute(
            sa.text(load_sql("recovery_heartbeat_beat")),
            {
                "run_id": run_id,
                "batch_key": batch_key,
                "host": socket.gethostname()[:255],
                "pid": os.getpid(),
            },
        )


class BatchHeartbeat:
    """The beating thread of one run's batch step (see the module docstring)."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        batch_key: str,
        run_id: str,
        instance: dg.DagsterInstance | None = None,
        interval: float | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.engine = engine
        self.batch_key = batch_key
        self.run_id = run_id
        self.instance = instance
        self.interval = interval or heartbeat_seconds()
        self.log = log or logger.warning
        self.beats = 0
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name=f"heartbeat {batch_key}", daemon=True
        )

    def start(self) -> None:
        self._beat()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(self.interval + 5)
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.text(load_sql("recovery_heartbeat_stop")), {"run_id": self.run_id})
        except Exception as exc:  # noqa: BLE001 - the step's own outcome matters more
            self.log(f"{self.batch_key}: could not record the end of the heartbeat ({exc})")

    def _beat(self) -> None:
        try:
            beat(self.engine, run_id=self.run_id, batch_key=self.batch_key)
        except Exception as exc:  # noqa: BLE001 - a missed beat is only a missed beat
            self.failures += 1
            self.log(
                f"{self.batch_key}: heartbeat failed ({type(exc).__name__}: {exc}); "
                f"next try in {self.interval:g} s"
            )
        else:
            self.beats += 1

    def _fenced(self) -> str | None:
        """Why this process must stop: its run is over in Dagster while it still runs."""
        if self.instance is None:
            return None
        try:
            run = self.instance.get_run_by_id(self.run_id)
        except Exception:  # noqa: BLE001 - Dagster's storage unreachable: keep working
            return None
        if run is not None and run.status in _FINISHED:
            return f"run {self.run_id} is {run.status.value} in Dagster"
        return None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            # Nothing here may raise: this thread must outlive every fault of the database.
            try:
                reason = self._fenced()
                if reason:
                    message = (
                        f"{self.batch_key}: {reason}; stopping this process so that it does "
                        "not race the retry that replaces it"
                    )
                    logger.error(message)
                    print(message, file=sys.stderr, flush=True)
                    os._exit(FENCED_EXIT_CODE)
                self._beat()
            except Exception:  # noqa: BLE001 - logged; the loop goes on
                logger.exception("%s: heartbeat loop error", self.batch_key)


@contextmanager
def batch_heartbeat(
    engine: sa.Engine,
    *,
    batch_key: str,
    run_id: str,
    instance: dg.DagsterInstance | None = None,
    interval: float | None = None,
    log: Callable[[str], None] | None = None,
) -> Iterator[BatchHeartbeat]:
    """Beat for `run_id` while the block runs; record the end when it leaves."""
    heart = BatchHeartbeat(
        engine, batch_key=batch_key, run_id=run_id, instance=instance, interval=interval, log=log
    )
    heart.start()
    try:
        yield heart
    finally:
        heart.stop()
