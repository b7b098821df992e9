-- The batch's step ended (done or raised) in a live process: no more beats are coming from it.
UPDATE enrichment_run_heartbeats
SET beat_at = now(), stopped_at = now()
WHERE run_id = :run_id
