-- One UTC day of activity_log rolled up per (tenant, user) in a single pass.
-- counter_columns / counter_aggregates are generated from models.COUNTER_COLUMNS, and
-- day_window is the dialect's half-open [start, end) predicate on created_at.
INSERT INTO usage_metrics_daily (
    date, tenant_id, user_id, {counter_columns}, total_events, created_at, updated_at
)
SELECT
    :day, tenant_id, user_id, {counter_aggregates}, COUNT(*), :now, :now
FROM activity_log
WHERE {day_window}
GROUP BY tenant_id, user_id
