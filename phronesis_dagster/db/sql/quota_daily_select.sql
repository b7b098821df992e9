-- api_quota_daily for day with origins summed per provider, for the materialization metadata.
SELECT provider,
       SUM(success_count) AS success_count,
       SUM(failure_count) AS failure_count,
       SUM(rate_limited_count) AS rate_limited_count,
       SUM(cost_usd) AS cost_usd,
       SUM(CASE WHEN origin = 'web_app' THEN success_count ELSE 0 END) AS web_app_count,
       MAX(latency_p50_ms) AS latency_p50_ms,
       MAX(latency_p95_ms) AS latency_p95_ms
FROM api_quota_daily
WHERE date = :day
GROUP BY provider
ORDER BY provider
