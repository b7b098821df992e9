-- Delete-then-insert: one UTC day of enrichment_health_daily.
DELETE FROM enrichment_health_daily WHERE date = :day
