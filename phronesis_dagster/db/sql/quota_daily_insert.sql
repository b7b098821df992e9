-- One api_quota_daily row per (provider, origin) that has counters for day.
-- Latency percentiles come from api_call_log, which only the pipeline writes; a circuit_open
-- outcome made no HTTP call, so it has no latency to count.
WITH latency AS (
    SELECT provider,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95
    FROM api_call_log
    WHERE called_at >= :start
      AND called_at < :end
      AND latency_ms IS NOT NULL
      AND outcome <> 'circuit_open'
    GROUP BY provider
)
INSERT INTO api_quota_daily (date, provider, origin, success_count, failure_count,
                             rate_limited_count, cost_usd, latency_p50_ms, latency_p95_ms)
SELECT u.date, u.provider, u.origin, u.success_count, u.failure_count, u.rate_limited_count,
       u.cost_usd,
       CASE WHEN u.origin = 'pipeline' THEN l.p50 END,
       CASE WHEN u.origin = 'pipeline' THEN l.p95 END
FROM api_usage u
LEFT JOIN latency l ON l.provider = u.provider
WHERE u.date = :day
