-- One heartbeat of an enrichment batch run, on the database server's clock (hosts may disagree).
-- The first beat of a run creates its row; a step retried inside the same run beats again.
INSERT INTO enrichment_run_heartbeats (run_id, batch_key, host, pid, started_at, beat_at)
VALUES (:run_id, :batch_key, :host, :pid, now(), now())
ON CONFLICT (run_id) DO UPDATE
SET beat_at = now(), host = EXCLUDED.host, pid = EXCLUDED.pid, stopped_at = NULL
