SELECT
    COUNT(*) AS rows_written,
    COUNT(DISTINCT tenant_id) AS tenants,
    COUNT(DISTINCT user_id) AS users,
    COALESCE(SUM(total_events), 0) AS events
FROM usage_metrics_daily
WHERE date = :day
