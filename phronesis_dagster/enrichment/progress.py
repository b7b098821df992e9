"""Progress lines (n of N, rate, ETA) for long batches, written to a run's log."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class ProgressLogger:
    """Counts finished items and logs `label: n/N (p%), r/s, ETA s` at most every `every_seconds`
    and at the end. Thread-safe: provider calls finish on pool threads."""

    def __init__(
        self,
        log: Callable[[str], None],
        *,
        label: str,
        total: int,
        every_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
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

    def advance(self, n: int = 1) -> None:
        """Count `n` more finished items; log when enough time passed or all are done."""
        with self._lock:
            self.done += n
            now = self._clock()
            if self.done >= self.total or now - self._last >= self._every:
                self._last = now
                self._log(self.line())
