-- Delete-then-insert: one UTC day of api_quota_burn_daily.
DELETE FROM api_quota_burn_daily WHERE date = :day
