-- Delete-then-insert: one UTC day of platform_pulse_daily.
DELETE FROM platform_pulse_daily WHERE date = :day
