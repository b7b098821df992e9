-- The web app's own share of one (provider, day) into api_usage under origin 'web_app':
-- :success_count is the Redis total (every successful call, the pipeline's included) minus the
-- pipeline's own successes, clamped at 0 by the asset.
-- SET, not ADD: Redis holds the day's running total, so re-running never counts a call twice,
-- and the row outlives the Redis key (which expires after 90 days).
INSERT INTO api_usage (provider, date, origin, success_count, failure_count, rate_limited_count,
                       cost_usd)
VALUES (:provider, :day, 'web_app', :success_count, 0, 0, 0)
ON CONFLICT (provider, date, origin) DO UPDATE
SET success_count = excluded.success_count,
    updated_at = CURRENT_TIMESTAMP
