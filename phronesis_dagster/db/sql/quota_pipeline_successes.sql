-- The pipeline's own successful calls per (provider, day) from :month_start through :day: the
-- part of the web app's Redis totals (which count every call, ours included) that was ours.
SELECT provider, date, success_count
FROM api_usage
WHERE origin = 'pipeline'
  AND date >= :month_start
  AND date <= :day
