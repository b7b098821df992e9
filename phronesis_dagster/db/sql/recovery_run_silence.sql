-- How long each of the given runs has been silent, by the database server's clock.
SELECT run_id, batch_key, host, pid,
       EXTRACT(EPOCH FROM (now() - beat_at)) AS silent_seconds
FROM enrichment_run_heartbeats
WHERE run_id IN :run_ids
