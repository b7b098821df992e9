-- Delete-then-insert: one UTC day of funnel_daily (tenant rows and the platform row).
DELETE FROM funnel_daily WHERE date = :day
