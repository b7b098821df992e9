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
- held open (`hold_open(until, reason)`): the provider itself said when it takes calls again
  (Apollo's spent hourly/daily quota, SEC's 10-minute IP block). The row is `open` with
  `open_until` set: every process is refused until then, whatever `reset_timeout_seconds`
  says, and then the usual single probe resumes the provider by itself.

Why not pybreaker (1.4.1, checked): it has pluggable storage (memory, Redis) but it only counts
*consecutive* failures (`fail_max`), has no failure-rate window, no SQL storage, and its
storage interface has no compare-and-set, so several processes could all run the half-open
probe at once.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from phronesis_dagster.db.models import ProviderCircuitState
from phronesis_dagster.db.statements import compile_statement, execute
from phronesis_dagster.resources.app_db import AppDatabase
from phronesis_dagster.resources.call_ledger import (
    LAST_ERROR_MAX_CHARS,
    BreakerCount,
    BreakerRow,
    write_call,
)
from phronesis_dagster.resources.errors import CircuitOpenError

logger = logging.getLogger(__name__)

_T = ProviderCircuitState.__table__


# The admission read, on a per-call connection (`db/statements.py`) like the call's other
# statements.
_STATE = compile_statement(sa.select(_T.c.state).where(_T.c.provider == sa.bindparam("s_provider")))
# How long a process admits calls on its last sight of a closed breaker without asking the
# database again (see `CircuitBreaker.before_call`).
ADMISSION_CACHE_SECONDS = 0.5


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
    open_until: datetime | None = None


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
        # Monotonic time until which this handle admits calls without a read: set when it saw
        # the row closed (an admission read or a call's write returning the row), cleared by
        # every transition this handle makes. A cache of a read, not state: the breaker is the row.
        self._closed_until = 0.0

    # -- helpers -----------------------------------------------------------------------------

    def _now(self) -> datetime:
        return datetime.now(UTC)

    def _db_time(self, value: datetime) -> datetime:
        """`value` as an aware UTC time; naive input is taken as UTC."""
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC)

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
            open_until=row.open_until,
        )

    # -- the call protocol -------------------------------------------------------------------

    def before_call(self) -> bool:
        """Admit a call. Returns True when this call is the half-open probe; raises
        `CircuitOpenError` when the call must be skipped."""
        # Every call asks, so the common case (closed) costs no I/O: the row was seen closed
        # less than ADMISSION_CACHE_SECONDS ago, by a read here or by the write of one of this
        # process's calls (`note`), which returns the row. That staleness is safe: a call
        # admitted on it is no different from one admitted just before another process opened
        # the circuit (in flight when it opened; the breaker counts rates over a 60 s window and
        # waits 30 s before probing); only "closed" is cached, so the half-open probe is still
        # elected by a compare-and-set in the database; and any transition this handle makes
        # (a trip, a hold such as SEC's block) clears the cache at once. Another process's hold
        # reaches this one within 0.5 s (SEC: at most a few requests at 10/s).
        if time.monotonic() < self._closed_until:
            return False
        row = execute(self.app_db.database_url, _STATE, {"s_provider": self.provider})
        state = row[0] if row is not None else None
        if state == "closed":
            self._closed_until = time.monotonic() + ADMISSION_CACHE_SECONDS
            return False
        snap = self.snapshot()
        if snap.state == "closed":
            return False
        now = self._now()
        reset = timedelta(seconds=self.settings.reset_timeout_seconds)
        probe_timeout = timedelta(seconds=self.settings.probe_timeout_seconds)
        if snap.state == "open":
            # Compare-and-set: only the process whose UPDATE matches the open row runs the probe.
            # A held breaker waits for the time the provider gave, not for the reset timeout.
            due = sa.case(
                (_T.c.open_until.is_not(None), _T.c.open_until <= now),
                else_=_T.c.opened_at <= now - reset,
            )
            stmt = (
                sa.update(_T)
                .where(_T.c.provider == self.provider, _T.c.state == "open", due)
                .values(state="half_open", probe_started_at=now, open_until=None, updated_at=now)
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
        if snap.state == "open" and snap.open_until is not None:
            raise CircuitOpenError(
                self.provider,
                f"circuit held open until {snap.open_until.isoformat()} "
                f"({snap.last_error or 'provider refused calls'}); call skipped",
            )
        raise CircuitOpenError(
            self.provider,
            f"circuit open since {snap.opened_at.isoformat() if snap.opened_at else '?'} "
            f"(last error: {snap.last_error or 'unknown'}); call skipped",
        )

    def hold_open(self, until: datetime, reason: str) -> datetime:
        """Open this provider's breaker for every process until `until` (UTC), with `reason`
        as the error every skipped call reports. Use it when the provider said when it takes
        calls again (a spent quota window, an IP block): no call is made before then, and the
        first call after `until` is the usual single probe, so the provider resumes by itself.

        A hold never shortens an existing one (two processes reading different reset headers
        keep the later time). Works from any state: a half-open probe that got the refusal
        holds the breaker open, and its own outcome report is then ignored. Returns the time
        the breaker is held open until."""
        self._closed_until = 0.0
        now = self._now()
        until_db = self._db_time(until)
        reason = reason[:LAST_ERROR_MAX_CHARS]
        keep_later = sa.case(
            (
                sa.and_(
                    _T.c.state == "open",
                    _T.c.open_until.is_not(None),
                    _T.c.open_until > until_db,
                ),
                _T.c.open_until,
            ),
            else_=until_db,
        )
        with self.app_db.begin() as conn:
            self._ensure_row(conn)
            conn.execute(
                sa.update(_T)
                .where(_T.c.provider == self.provider)
                .values(
                    state="open",
                    opened_at=sa.case((_T.c.state == "open", _T.c.opened_at), else_=now),
                    open_until=keep_later,
                    probe_started_at=None,
                    last_error=reason,
                    updated_at=now,
                )
            )
            held = conn.execute(
                sa.select(_T.c.open_until).where(_T.c.provider == self.provider)
            ).scalar_one()

        self.log.warning(
            "circuit breaker %s: held open until %s (%s); every process skips its calls",
            self.provider,
            held.isoformat() if held else "?",
            reason,
        )
        return held

    def record_success(self, *, probe: bool) -> None:
        """The provider answered (any answer that is not its own failure)."""
        self._record(failed=False, probe=probe, error=None)

    def record_failure(self, error: str, *, probe: bool) -> None:
        """The provider failed (5xx, timeouts, 429 storms, malformed bodies)."""
        self._record(failed=True, probe=probe, error=error)

    def count(self, *, failed: bool, probe: bool, error: str | None) -> BreakerCount:
        """This breaker's count of one call outcome, for `call_ledger.write_call`."""
        return BreakerCount(
            provider=self.provider,
            failed=failed,
            probe=probe,
            error=error,
            min_calls=self.settings.min_calls,
            failure_rate_threshold=self.settings.failure_rate_threshold,
            window_seconds=self.settings.window_seconds,
        )

    def _record(self, *, failed: bool, probe: bool, error: str | None) -> None:
        self._closed_until = 0.0
        if not self._row_ensured:
            with self.app_db.begin() as conn:
                self._ensure_row(conn)
        row = write_call(
            self.app_db.database_url, None, self.count(failed=failed, probe=probe, error=error)
        )
        self.note(row, probe=probe, error=error)

    def note(self, row: BreakerRow | None, *, probe: bool, error: str | None) -> None:
        """Take in the row a call's write left (`write_call`'s answer): refresh the admission
        cache, and log the transition this process made (a trip, a probe's result)."""
        if row is None or row.state != "closed":
            self._closed_until = 0.0
        else:
            self._closed_until = time.monotonic() + ADMISSION_CACHE_SECONDS
        if row is None:
            return
        error = (error or "")[:LAST_ERROR_MAX_CHARS]
        if row.tripped:
            self.log.warning(
                "circuit breaker %s: closed -> open (%d of %d calls failed in the window; "
                "last error: %s); calls skipped for %g s",
                self.provider,
                row.window_failures,
                row.window_calls,
                error,
                self.settings.reset_timeout_seconds,
            )
        elif probe and row.state == "open":
            self.log.warning(
                "circuit breaker %s: half_open -> open, probe failed (%s)", self.provider, error
            )
        elif probe:
            self.log.info("circuit breaker %s: half_open -> closed, probe succeeded", self.provider)

    def reset(self) -> None:
        """Close the breaker by hand (ops / tests)."""
        self._closed_until = 0.0
        with self.app_db.begin() as conn:
            self._ensure_row(conn)
            conn.execute(
                sa.update(_T)
                .where(_T.c.provider == self.provider)
                .values(
                    state="closed",
                    opened_at=None,
                    probe_started_at=None,
                    open_until=None,
                    window_started_at=None,
                    window_calls=0,
                    window_failures=0,
                    updated_at=self._now(),
                )
            )
