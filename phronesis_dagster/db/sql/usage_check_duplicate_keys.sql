SELECT date, tenant_id, user_id, COUNT(*) AS copies
FROM usage_metrics_daily
WHERE date = :day
GROUP BY date, tenant_id, user_id
HAVING COUNT(*) > 1
LIMIT 20
