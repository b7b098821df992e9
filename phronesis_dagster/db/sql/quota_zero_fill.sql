-- A zero pipeline row for a provider without one on the day, so the dashboard lists every
-- provider (including one with no calls at all).
INSERT INTO api_quota_daily (date, provider, origin, success_count, failure_count,
                             rate_limited_count, cost_usd)
VALUES (:day, :provider, 'pipeline', 0, 0, 0, 0)
ON CONFLICT (date, provider, origin) DO NOTHING
