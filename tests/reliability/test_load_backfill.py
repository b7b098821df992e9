"""Load (slow): the 30-day backfill of `usage_metrics_daily` over 1,000,000 events per day on
PostgreSQL, by `bench/backfill.py` (its own database, dropped at the end): every day's rollup
equals a direct GROUP BY over `activity_log`. Runs only with `PHRONESIS_RUN_SLOW=1`;
`PHRONESIS_BACKFILL_EVENTS_PER_DAY` lowers the size on a slow machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EVENTS_PER_DAY = int(os.environ.get("PHRONESIS_BACKFILL_EVENTS_PER_DAY", "1000000"))


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(3600)
def test_thirty_day_backfill_of_a_million_events_a_day_is_exact():
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "backfill.py"),
            "--days",
            "30",
            "--events-per-day",
            str(EVENTS_PER_DAY),
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=3600,
    )
    print(result.stdout)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "exact: 30 day(s) equal to GROUP BY" in result.stdout
    rolled_up = int(result.stdout.split("; ")[-1].split(" events")[0].replace(",", ""))
    assert rolled_up >= 30 * EVENTS_PER_DAY  # (+ a sentinel event if day 1 is a 1st)
