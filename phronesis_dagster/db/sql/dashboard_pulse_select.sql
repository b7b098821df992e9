-- The platform_pulse_daily row of day, for the materialization metadata and the checks.
SELECT *
FROM platform_pulse_daily
WHERE date = :day
