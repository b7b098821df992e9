-- One api_quota_daily row per (provider, origin) that has counters for day.
-- SQLite has no percentile_cont: the same linear interpolation is computed from window
-- functions (rn is the 0-based rank, n the count; quantile q sits at position q * (n - 1)).
-- A circuit_open outcome made no HTTP call, so it has no latency to count.
WITH ranked AS (
    SELECT provider,
           latency_ms,
           ROW_NUMBER() OVER (PARTITION BY provider ORDER BY latency_ms) - 1 AS rn,
           COUNT(*) OVER (PARTITION BY provider) AS n
    FROM api_call_log
    WHERE called_at >= :start
      AND called_at < :end
      AND latency_ms IS NOT NULL
      AND outcome <> 'circuit_open'
),
positions AS (
    SELECT provider, latency_ms, rn,
           0.5 * (n - 1) AS pos50,
           CAST(0.5 * (n - 1) AS INTEGER) AS lo50,
           0.95 * (n - 1) AS pos95,
           CAST(0.95 * (n - 1) AS INTEGER) AS lo95
    FROM ranked
),
bounds AS (
    SELECT provider,
           MAX(pos50 - lo50) AS frac50,
           MAX(CASE WHEN rn = lo50 THEN latency_ms END) AS lo_v50,
           MAX(CASE WHEN rn = lo50 + 1 THEN latency_ms END) AS hi_v50,
           MAX(pos95 - lo95) AS frac95,
           MAX(CASE WHEN rn = lo95 THEN latency_ms END) AS lo_v95,
           MAX(CASE WHEN rn = lo95 + 1 THEN latency_ms END) AS hi_v95
    FROM positions
    GROUP BY provider
),
latency AS (
    SELECT provider,
           lo_v50 + frac50 * (COALESCE(hi_v50, lo_v50) - lo_v50) AS p50,
           lo_v95 + frac95 * (COALESCE(hi_v95, lo_v95) - lo_v95) AS p95
    FROM bounds
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
