-- Delete-then-insert: one UTC day of tenant_activity_daily.
DELETE FROM tenant_activity_daily WHERE date = :day
