-- Batches whose requests are queued but whose run has not started: the sensor re-emits their
-- run requests (same run_key, which Dagster de-duplicates) in case a tick's run requests were
-- lost after its database update committed.
SELECT batch_key, COUNT(DISTINCT prospect_id) AS prospects, MIN(id) AS first_id
FROM enrichment_requests
WHERE status = 'queued'
  AND batch_key IS NOT NULL
GROUP BY batch_key
ORDER BY first_id
LIMIT :limit
