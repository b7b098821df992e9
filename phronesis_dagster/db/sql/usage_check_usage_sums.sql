-- Counter totals in usage_metrics_daily for one day, and rows whose counters do not add up to
-- their total_events. usage_sums / row_sum are generated from models.COUNTER_COLUMNS.
SELECT
    COALESCE(SUM(total_events), 0) AS total,
    {usage_sums},
    COALESCE(SUM(CASE WHEN {row_sum} <> total_events THEN 1 ELSE 0 END), 0) AS rows_not_adding_up
FROM usage_metrics_daily
WHERE date = :day
