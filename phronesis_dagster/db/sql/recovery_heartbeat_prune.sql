-- Heartbeats of runs long over: kept a week for the record (the chaos benchmark reads them).
DELETE FROM enrichment_run_heartbeats
WHERE beat_at < now() - make_interval(days => :keep_days)
