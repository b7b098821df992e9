"""Progress of a running batch: the log line (n of N, rate, ETA) in the run's log, and the live
progress of the web app's bulk jobs (`enrichment_jobs`), which the admin UI polls.

How a job's progress is written, and why so:

- **Derived, not incremented.** `processed`, `succeeded`, `failed`, `phase` and `eta_seconds` are
  recounted in SQL from the job's requests and the per-source results the runs store
  (`db/sql/enrichment_job_progress.sql`): a prospect of a running batch counts as processed once
  every source has an outcome stored. Increments would double count a batch re-executed after a
  kill (its stored outcomes are reused, its progress written again) and need a reconciliation
  anyway; a recount is idempotent, and two batches of one job add up because each recount sees
  the other's committed results (the job rows are locked first, see `enrichment_job_lock.sql`).
- **Batched.** A run writes at most once per `JOB_WRITE_EVERY_PROSPECTS` finished prospects or
  `JOB_WRITE_EVERY_SECONDS`, whichever comes first, and once at the end: one set-based UPDATE
  over the batch's jobs (a few milliseconds with the `job_id` index), against the ~6 writes every
  prospect already costs. A failed progress write is logged and skipped; it never fails a batch.
- **Highlights** are short texts made from what a source found ("3 insider trades found for
  Avery Stone"), never from contact data: ContactOut's answer makes none, and any text that
  looks like an email address or a phone number is cut out before it is stored.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from phronesis_dagster.db.models import UtcDateTime
from phronesis_dagster.db.sql_files import load_sql, load_statement
from phronesis_dagster.enrichment.constants import (
    ALL_SOURCES,
    COMPLETE,
    DATA_SOURCES,
    SEC_SOURCE,
    SUMMARY_SOURCE,
)

JOB_WRITE_EVERY_PROSPECTS = 25
JOB_WRITE_EVERY_SECONDS = 2.0
# Highlights kept on a job row: the admin UI ticks through the newest.
JOB_HIGHLIGHTS_KEPT = 20
_HIGHLIGHT_MAX_CHARS = 160


class ProgressListener(Protocol):
    """What `ProgressLogger` tells about each finished call (see `JobProgress`)."""

    def finished(self, source: str, prospect: Mapping[str, Any], outcome: Any) -> None: ...

    def flush(self) -> None: ...


class ProgressLogger:
    """Counts finished items and logs `label: n/N (p%), r/s, ETA s` at most every `every_seconds`
    and at the end. Thread-safe: provider calls finish on pool threads. A `listener` (the jobs'
    live progress) hears of every finished call and is flushed by `close()`."""

    def __init__(
        self,
        log: Callable[[str], None],
        *,
        label: str,
        total: int,
        every_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        listener: ProgressListener | None = None,
    ) -> None:
        self._log = log
        self._label = label
        self.total = total
        self.done = 0
        self._every = every_seconds
        self._clock = clock
        self._start = clock()
        self._last = self._start
        self._lock = threading.Lock()
        self._listener = listener

    def line(self) -> str:
        """The current progress line."""
        elapsed = max(self._clock() - self._start, 1e-9)
        rate = self.done / elapsed
        remaining = self.total - self.done
        eta = f"{remaining / rate:.0f}s" if rate > 0 else "unknown"
        pct = 100.0 * self.done / self.total if self.total else 100.0
        return f"{self._label}: {self.done}/{self.total} ({pct:.0f}%), {rate:.1f}/s, ETA {eta}"

    def extend(self, n: int) -> None:
        """`n` more items to do (work discovered on the way)."""
        with self._lock:
            self.total += n

    def advance(
        self,
        n: int = 1,
        *,
        source: str | None = None,
        prospect: Mapping[str, Any] | None = None,
        outcome: Any = None,
    ) -> None:
        """Count `n` more finished items; log when enough time passed or all are done. With the
        call's `source`, `prospect` and `outcome`, the listener hears of it."""
        with self._lock:
            self.done += n
            now = self._clock()
            if self.done >= self.total or now - self._last >= self._every:
                self._last = now
                self._log(self.line())
        if self._listener is not None and source is not None and prospect is not None:
            self._listener.finished(source, prospect, outcome)

    def close(self) -> None:
        """The work is over: the listener writes what it still holds."""
        if self._listener is not None:
            self._listener.flush()


# -- the jobs' live progress ------------------------------------------------------------------

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_PHONE = re.compile(r"\+?\d[\d\s().-]{6,}\d")


def without_contact_data(text: str) -> str:
    """`text` with anything shaped like an email address or a phone number removed (a prospect
    name the web app filled with an address must not reach the admin ticker)."""
    text = _PHONE.sub("", _EMAIL.sub("", text))
    return " ".join(text.split())[:_HIGHLIGHT_MAX_CHARS]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _items(data: Mapping[str, Any] | None, key: str) -> list:
    value = (data or {}).get(key)
    return value if isinstance(value, list) else []


def highlight_text(source: str, prospect: Mapping[str, Any], outcome: Any) -> str | None:
    """The admin ticker's line for one finished call, or None when it found nothing worth one.
    Built from counts and professional facts only (never an email, a phone, a URL)."""
    if getattr(outcome, "status", None) != COMPLETE:
        return None
    data = outcome.data if isinstance(outcome.data, Mapping) else {}
    name = str(prospect.get("name") or "a prospect")
    if source == SEC_SOURCE:
        n = len(_items(data, "transactions"))
        text = f"{_plural(n, 'insider trade')} found for {name}" if n else None
    elif source == "exa":
        mentions, signals = len(_items(data, "mentions")), len(_items(data, "wealth_signals"))
        text = f"{_plural(mentions, 'web mention')} found for {name}" if mentions else None
        if text and signals:
            text += f", {_plural(signals, 'wealth signal')}"
    elif source == "apollo":
        title, org = data.get("title"), data.get("organization_name")
        role = " at ".join(str(v) for v in (title, org) if isinstance(v, str) and v.strip())
        text = f"{name} matched{': ' + role if role else ''}"
    elif source == SUMMARY_SOURCE:
        facts = len(_items(data, "key_facts"))
        text = f"AI summary ready for {name}" + (
            f" ({_plural(facts, 'key fact')})" if facts else ""
        )
    else:
        # ContactOut: what it finds is contact data; even "found an email" is not ticker news.
        text = None
    return without_contact_data(text) if text else None


def _job_progress_sql() -> sa.TextClause:
    uuids = postgresql.ARRAY(sa.Uuid(as_uuid=True))
    names = postgresql.ARRAY(sa.Text())
    return sa.text(load_statement("enrichment_job_progress")).bindparams(
        sa.bindparam("job_ids", type_=uuids),
        sa.bindparam("all_sources", type_=names),
        sa.bindparam("data_sources", type_=names),
        sa.bindparam("now", type_=UtcDateTime),
    )


def write_job_progress(
    conn: sa.Connection,
    job_ids: Iterable[uuid.UUID],
    *,
    now: datetime,
    batch_key: str | None = None,
    highlights: Sequence[Mapping[str, Any]] = (),
) -> None:
    """Recount the live progress of `job_ids` (see the module docstring) and append
    `highlights` ([{"prospect_id", "source", "text", "at"}] of `batch_key`'s prospects) to the
    jobs they belong to, in `conn`'s transaction: the job rows are locked, then one UPDATE."""
    ids = sorted(set(job_ids), key=str)
    if not ids:
        return
    lock = sa.text(load_sql("enrichment_job_lock")).bindparams(
        sa.bindparam("job_ids", type_=postgresql.ARRAY(sa.Uuid(as_uuid=True)))
    )
    conn.execute(lock, {"job_ids": ids})
    conn.execute(
        _job_progress_sql(),
        {
            "job_ids": ids,
            "all_sources": list(ALL_SOURCES),
            "data_sources": list(DATA_SOURCES),
            "now": now,
            "batch_key": batch_key,
            "highlights": _json_array(highlights),
            "keep": JOB_HIGHLIGHTS_KEPT,
        },
    )


def _json_array(items: Sequence[Mapping[str, Any]]) -> str:
    return json.dumps([{k: str(v) for k, v in item.items()} for item in items])


class JobProgress:
    """The live progress of the bulk jobs one batch works for (a `ProgressLogger` listener).

    Collects highlights as calls finish and, at most every `every_prospects` finished
    prospects (counted as calls / `calls_per_prospect`) or `every_seconds`, recounts the jobs
    in one short transaction (`write_job_progress`). Thread-safe; never raises into the batch."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        batch_key: str,
        job_ids: Iterable[uuid.UUID],
        calls_per_prospect: int,
        log: Callable[[str], None],
        every_prospects: int = JOB_WRITE_EVERY_PROSPECTS,
        every_seconds: float = JOB_WRITE_EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._batch_key = batch_key
        self._job_ids = sorted(set(job_ids), key=str)
        self._every_calls = max(1, every_prospects * max(1, calls_per_prospect))
        self._every_seconds = every_seconds
        self._clock = clock
        self._log = log
        self._lock = threading.Lock()
        self._pending: list[dict[str, Any]] = []
        self._calls_since = 0
        self._last = clock()
        self.writes = 0

    @property
    def job_ids(self) -> list[uuid.UUID]:
        return list(self._job_ids)

    def finished(self, source: str, prospect: Mapping[str, Any], outcome: Any) -> None:
        """One call of the batch finished: note its highlight, write when due."""
        if not self._job_ids:
            return
        text = highlight_text(source, prospect, outcome)
        with self._lock:
            if text:
                self._pending.append(
                    {
                        "prospect_id": prospect["id"],
                        "source": source,
                        "text": text,
                        "at": datetime.now(UTC).isoformat(timespec="seconds"),
                    }
                )
            self._calls_since += 1
            due = (
                self._calls_since >= self._every_calls
                or self._clock() - self._last >= self._every_seconds
            )
        if due:
            self.flush()

    def flush(self) -> None:
        """Write the jobs' progress now (and the highlights collected since the last write)."""
        if not self._job_ids:
            return
        with self._lock:
            highlights, self._pending = self._pending, []
            self._calls_since = 0
            self._last = self._clock()
        try:
            with self._engine.begin() as conn:
                write_job_progress(
                    conn,
                    self._job_ids,
                    now=datetime.now(UTC),
                    batch_key=self._batch_key,
                    highlights=highlights,
                )
            self.writes += 1
        except sa.exc.SQLAlchemyError as exc:
            # Progress is for the UI; the batch's own writes decide its outcome.
            self._log(f"{self._batch_key}: job progress not written ({type(exc).__name__})")


def job_progress_for_batch(
    engine: sa.Engine, batch_key: str, *, calls_per_prospect: int, log: Callable[[str], None]
) -> JobProgress:
    """The `JobProgress` of `batch_key`'s bulk jobs (none for a batch of single requests)."""
    from phronesis_dagster.enrichment.store import batch_job_ids

    with engine.connect() as conn:
        ids = batch_job_ids(conn, batch_key)
    return JobProgress(
        engine, batch_key=batch_key, job_ids=ids, calls_per_prospect=calls_per_prospect, log=log
    )
