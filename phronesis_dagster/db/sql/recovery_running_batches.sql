-- Batches with requests still `running`, by the run that last started them, with how long
-- ago (database clock) their requests last changed: the recovery sensor closes those whose run
-- chain is over with no retry coming.
SELECT batch_key, run_id,
       EXTRACT(EPOCH FROM (now() - MAX(updated_at))) AS idle_seconds
FROM enrichment_requests
WHERE status = 'running'
  AND batch_key IS NOT NULL
  AND run_id IS NOT NULL
GROUP BY batch_key, run_id
ORDER BY batch_key
LIMIT :limit
