"""A circuit breaker per provider whose state lives in the app database.

Dagster runs are separate processes (in production, separate machines), so the breaker state
cannot live in process memory: it is the `provider_circuit_state` row of the provider, which
every process reaches. Every transition is one conditional UPDATE, so two processes can never
both "win" a transition:

- closed: calls pass; each outcome bumps the counters of a fixed window of `window_seconds`
  (a new window starts when the old one is over). Once the window has `min_calls` calls and
  `failures / calls >= failure_rate_threshold`, the state becomes open.
- open: calls fail fast with `CircuitOpenError` until `reset_timeout_seconds` after
  `opened_at`; then exactly one process wins the compare-and-set `open -> half_open`
  (stamping `probe_started_at`) and makes the probe call; everybody else still gets
  `CircuitOpenError`. A probe that never reports back (crashed process) is taken over by
  another process after `probe_timeout_seconds`.
- half_open: probe success -> closed with a fresh window; probe failure -> open again.

Why not pybreaker (1.4.1, checked): it has pluggable storage (memory, Redis) but it only counts
*consecutive* failures (`fail_max`), has no failure-rate window, no SQL storage, and its
storage interface has no compare-and-set, so several processes could all run the half-open
probe at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from phronesis_dagster.db.models import ProviderCircuitState
from phronesis_dagster.resources.app_db import AppDatabase
from phronesis_dagster.resources.errors import CircuitOpenError

logger = logging.getLogger(__name__)

_T = ProviderCircuitState.__table__
LAST_ERROR_MAX_CHARS = 500


_STATE = sa.select(_T.c.state).where(_T.c.provider == sa.bindparam("s_provider"))


def _build_bump() -> sa.Update:
    """Count one outcome in the closed breaker's window (a new window once the old one is
    over). Built once with bound parameters: building it per call cost more CPU than the
    UPDATE itself, inside the write transaction."""
    now = sa.bindparam("b_now", type_=_T.c.updated_at.type)
    fail = sa.bindparam("b_fail", type_=sa.Integer())
    expired = sa.or_(
        _T.c.window_started_at.is_(None),
        _T.c.window_started_at < sa.bindparam("b_window_start", type_=_T.c.updated_at.type),
    )
    return (
        sa.update(_T)
        .where(_T.c.provider == sa.bindparam("b_provider"), _T.c.state == "closed")
        .values(
            window_started_at=sa.case((expired, now), else_=_T.c.window_started_at),
            window_calls=sa.case((expired, 1), else_=_T.c.window_calls + 1),
            window_failures=sa.case((expired, fail), else_=_T.c.window_failures + fail),
            updated_at=now,
        )
    )


_BUMP = _build_bump()


@dataclass(frozen=True)
class BreakerSettings:
    failure_rate_threshold: float = 0.5
    min_calls: int = 10
    window_seconds: float = 60.0
    reset_timeout_seconds: float = 30.0
    probe_timeout_seconds: float = 120.0


@dataclass(frozen=True)
class CircuitSnapshot:
    """The breaker row as read from the database."""

    provider: str
    state: str
    window_calls: int
    window_failures: int
    opened_at: datetime | None
    probe_started_at: datetime | None
    last_error: str | None


class CircuitBreaker:
    """Shared circuit breaker for one provider, backed by `provider_circuit_state`."""

    def __init__(
        self,
        provider: str,
        app_db: AppDatabase,
        settings: BreakerSettings,
        log: logging.Logger | None = None,
    ) -> None:
        self.provider = provider
        self.app_db = app_db
        self.settings = settings
        self.log = log or logger
        self._row_ensured = False

    # -- helpers -----------------------------------------------------------------------------

    def _now(self) -> datetime:
        return datetime.now(UTC)

    def _ensure_row(self, conn: sa.Connection, *, force: bool = False) -> None:
        # Once per breaker object: `ProviderResource` keeps one breaker per resource instance,
        # so the (write) INSERT runs once per run, and `before_call` is a pure read after that.
        if self._row_ensured and not force:
            return
        conn.execute(
            postgresql.insert(_T)
            .values(provider=self.provider, state="closed", window_calls=0, window_failures=0)
            .on_conflict_do_nothing(index_elements=[_T.c.provider])
        )
        self._row_ensured = True

    def snapshot(self) -> CircuitSnapshot:
        """The current state row (a fresh closed one if the provider was never called)."""
        query = sa.select(_T).where(_T.c.provider == self.provider)
        with self.app_db.begin() as conn:
            self._ensure_row(conn)
            row = conn.execute(query).one_or_none()
            if row is None:  # the row was removed behind our back: create it again
                self._ensure_row(conn, force=True)
                row = conn.execute(query).one()
        return CircuitSnapshot(
            provider=row.provider,
            state=row.state,
            window_calls=row.window_calls,
            window_failures=row.window_failures,
            opened_at=row.opened_at,
            probe_started_at=row.probe_started_at,
            last_error=row.last_error,
        )

    # -- the call protocol -------------------------------------------------------------------

    def before_call(self) -> bool:
        """Admit a call. Returns True when this call is the half-open probe; raises
        `CircuitOpenError` when the call must be skipped."""
        # Every call asks, so the common case (closed) is one prebuilt single-column read
        # without a transaction; the full snapshot is read only when the circuit is not closed.
        with self.app_db.connect() as conn:
            state = conn.execute(_STATE, {"s_provider": self.provider}).scalar_one_or_none()
        if state == "closed":
            return False
        snap = self.snapshot()
        if snap.state == "closed":
            return False
        now = self._now()
        reset = timedelta(seconds=self.settings.reset_timeout_seconds)
        probe_timeout = timedelta(seconds=self.settings.probe_timeout_seconds)
        if snap.state == "open":
            # Compare-and-set: only the process whose UPDATE matches the open row runs the probe.
            stmt = (
                sa.update(_T)
                .where(
                    _T.c.provider == self.provider,
                    _T.c.state == "open",
                    _T.c.opened_at <= now - reset,
                )
                .values(state="half_open", probe_started_at=now, updated_at=now)
            )
        else:
            # A half-open probe that never reported back (its process died) is taken over.
            stmt = (
                sa.update(_T)
                .where(
                    _T.c.provider == self.provider,
                    _T.c.state == "half_open",
                    sa.or_(
                        _T.c.probe_started_at.is_(None),
                        _T.c.probe_started_at <= now - probe_timeout,
                    ),
                )
                .values(probe_started_at=now, updated_at=now)
            )
        with self.app_db.begin() as conn:
            won = conn.execute(stmt).rowcount == 1
        if won:
            self.log.info(
                "circuit breaker %s: %s -> half_open, this process runs the probe",
                self.provider,
                snap.state,
            )
            return True
        raise CircuitOpenError(
            self.provider,
            f"circuit open since {snap.opened_at.isoformat() if snap.opened_at else '?'} "
            f"(last error: {snap.last_error or 'unknown'}); call skipped",
        )

    def record_success(self, *, probe: bool) -> None:
        """The provider answered (any answer that is not its own failure)."""
        self._record(failed=False, probe=probe, error=None)

    def record_failure(self, error: str, *, probe: bool) -> None:
        """The provider failed (5xx, timeouts, 429 storms, malformed bodies)."""
        self._record(failed=True, probe=probe, error=error)

    def _record(self, *, failed: bool, probe: bool, error: str | None) -> None:
        error = error[:LAST_ERROR_MAX_CHARS] if error is not None else None
        if probe:
            self._finish_probe(failed=failed, error=error, now=self._now())
            return
        with self.app_db.begin_short_write() as conn:
            tripped = self.count_in(conn, failed=failed, error=error)
        self.log_trip(tripped, error)

    def count_in(
        self, conn: sa.Connection, *, failed: bool, error: str | None = None
    ) -> tuple[int, int] | None:
        """Count one outcome of a (non-probe) call inside the caller's write transaction
        `conn`, opening the circuit when the window's failure rate crosses the threshold.
        Returns (failures, calls) of the window when this outcome opened it: hand that to
        `log_trip` once the transaction is committed."""
        now = self._now()
        if error is not None:
            error = error[:LAST_ERROR_MAX_CHARS]
        window_start = now - timedelta(seconds=self.settings.window_seconds)
        bump_params = {
            "b_provider": self.provider,
            "b_now": now,
            "b_window_start": window_start,
            "b_fail": 1 if failed else 0,
        }
        values: dict = {"updated_at": now}
        if error is not None:
            values["last_error"] = error
        self._ensure_row(conn)
        conn.execute(_BUMP, bump_params)
        if error is not None:
            conn.execute(sa.update(_T).where(_T.c.provider == self.provider).values(**values))
        if not failed:
            return None
        # Counts are ints: compare failures >= threshold * calls without division.
        trip = (
            sa.update(_T)
            .where(
                _T.c.provider == self.provider,
                _T.c.state == "closed",
                _T.c.window_calls >= self.settings.min_calls,
                _T.c.window_failures >= _T.c.window_calls * self.settings.failure_rate_threshold,
            )
            .values(state="open", opened_at=now, probe_started_at=None, updated_at=now)
        )
        if conn.execute(trip).rowcount != 1:
            return None
        row = conn.execute(
            sa.select(_T.c.window_failures, _T.c.window_calls).where(_T.c.provider == self.provider)
        ).one()
        return int(row.window_failures), int(row.window_calls)

    def log_trip(self, tripped: tuple[int, int] | None, error: str | None) -> None:
        """Warn that this process opened the circuit (`count_in`'s answer), if it did."""
        if tripped is None:
            return
        self.log.warning(
            "circuit breaker %s: closed -> open (%d of %d calls failed in the window; "
            "last error: %s); calls skipped for %g s",
            self.provider,
            *tripped,
            (error or "")[:LAST_ERROR_MAX_CHARS],
            self.settings.reset_timeout_seconds,
        )

    def _finish_probe(self, *, failed: bool, error: str | None, now: datetime) -> None:
        if failed:
            values = dict(
                state="open", opened_at=now, probe_started_at=None, last_error=error, updated_at=now
            )
        else:
            values = dict(
                state="closed",
                opened_at=None,
                probe_started_at=None,
                window_started_at=now,
                window_calls=0,
                window_failures=0,
                updated_at=now,
            )
        stmt = (
            sa.update(_T)
            .where(_T.c.provider == self.provider, _T.c.state == "half_open")
            .values(**values)
        )
        with self.app_db.begin() as conn:
            changed = conn.execute(stmt).rowcount == 1
        if changed and failed:
            self.log.warning(
                "circuit breaker %s: half_open -> open, probe failed (%s)", self.provider, error
            )
        elif changed:
            self.log.info("circuit breaker %s: half_open -> closed, probe succeeded", self.provider)

    def reset(self) -> None:
        """Close the breaker by hand (ops / tests)."""
        with self.app_db.begin() as conn:
            self._ensure_row(conn)
            conn.execute(
                sa.update(_T)
                .where(_T.c.provider == self.provider)
                .values(
                    state="closed",
                    opened_at=None,
                    probe_started_at=None,
                    window_started_at=None,
                    window_calls=0,
                    window_failures=0,
                    updated_at=self._now(),
                )
            )
