-- Remove one UTC day of usage_metrics_daily before it is recomputed, so users whose events for
-- the day were deleted disappear and re-runs give the same result.
DELETE FROM usage_metrics_daily WHERE date = :day
