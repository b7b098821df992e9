-- Delete-then-insert: one UTC day of api_quota_daily.
DELETE FROM api_quota_daily WHERE date = :day
