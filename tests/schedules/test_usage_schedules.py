"""nightly_usage_rollup: yesterday plus the late-event re-runs, one run per UTC day."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from phronesis_dagster.assets.usage import usage_metrics_daily
from phronesis_dagster.partitions import usage_daily_partitions
from phronesis_dagster.schedules.usage import (
    USAGE_LOOKBACK_DAYS_ENV,
    activity_log_partitions_schedule,
    nightly_partition_keys,
    nightly_usage_rollup,
)


def evaluate(when: datetime) -> list[dg.RunRequest]:
    context = dg.build_schedule_context(scheduled_execution_time=when)
    result = nightly_usage_rollup(context)
    return list(result) if isinstance(result, list) else result


def test_runs_yesterday_and_the_day_before_at_0100_utc():
    assert nightly_usage_rollup.cron_schedule == "0 1 * * *"
    requests = evaluate(datetime(2025, 3, 15, 1, 0, tzinfo=UTC))
    assert [r.partition_key for r in requests] == ["2025-03-14", "2025-03-13"]
    assert len({r.run_key for r in requests}) == 2
    for key in (r.partition_key for r in requests):
        assert usage_daily_partitions.has_partition_key(key)


def test_next_night_rerun_is_not_deduplicated_against_tonight():
    tonight = evaluate(datetime(2025, 3, 15, 1, 0, tzinfo=UTC))
    tomorrow = evaluate(datetime(2025, 3, 16, 1, 0, tzinfo=UTC))
    # 2025-03-14 is in both ticks (yesterday, then the late-event re-run) with distinct keys.
    assert "2025-03-14" in {r.partition_key for r in tomorrow}
    assert not {r.run_key for r in tonight} & {r.run_key for r in tomorrow}


def test_lookback_is_configurable(monkeypatch):
    monkeypatch.setenv(USAGE_LOOKBACK_DAYS_ENV, "0")
    assert [r.partition_key for r in evaluate(datetime(2025, 3, 15, 1, tzinfo=UTC))] == [
        "2025-03-14"
    ]
    monkeypatch.setenv(USAGE_LOOKBACK_DAYS_ENV, "3")
    assert len(evaluate(datetime(2025, 3, 15, 1, tzinfo=UTC))) == 4
    monkeypatch.setenv(USAGE_LOOKBACK_DAYS_ENV, "-2")
    with pytest.raises(ValueError, match=USAGE_LOOKBACK_DAYS_ENV):
        evaluate(datetime(2025, 3, 15, 1, tzinfo=UTC))


def test_only_complete_utc_days_whatever_the_schedule_timezone():
    # 01:00 in Tokyo is 16:00 UTC the day before: that UTC day is not over yet.
    tokyo = datetime(2025, 3, 15, 1, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
    assert nightly_partition_keys(tokyo, 1) == ["2025-03-13", "2025-03-12"]
    la = datetime(2025, 3, 15, 1, 0, tzinfo=ZoneInfo("America/Los_Angeles"))
    assert nightly_partition_keys(la, 0) == ["2025-03-14"]


def test_no_days_before_the_start_date_are_requested():
    assert nightly_partition_keys(datetime(2025, 1, 2, 1, tzinfo=UTC), 1) == ["2025-01-01"]
    assert isinstance(evaluate(datetime(2025, 1, 1, 1, tzinfo=UTC)), dg.SkipReason)


def test_schedules_target_the_right_jobs():
    job = nightly_usage_rollup.job
    assert job.selection.resolve([usage_metrics_daily]) == {usage_metrics_daily.key}
    assert activity_log_partitions_schedule.job_name == "activity_log_partitions_job"
