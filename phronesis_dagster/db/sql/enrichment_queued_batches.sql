-- Batches whose requests are queued but whose run has not started: the sensor re-emits their
-- run requests (same run_key, which Dagster de-duplicates) in case a tick's run requests were
-- lost after its database update committed. A batch with a request without a job is an
-- interactive one (bulk batches only hold job requests); a bulk batch holds one tenant. :lane
-- ('interactive', 'bulk' or 'all') and :key_prefix (the part of the key before its '-') keep
-- the batches of the sensor that made them: Dagster de-duplicates run keys per sensor.
SELECT
    batch_key,
    array_agg(DISTINCT prospect_id) AS prospect_ids,
    bool_or(job_id IS NULL) AS interactive,
    CASE WHEN COUNT(DISTINCT tenant_id) = 1 THEN MIN(tenant_id::text)::uuid END AS tenant_id,
    MIN(id) AS first_id
FROM enrichment_requests
WHERE status = 'queued'
  AND batch_key IS NOT NULL
  AND split_part(batch_key, '-', 1) = :key_prefix
GROUP BY batch_key
HAVING :lane = 'all' OR (:lane = 'interactive') = bool_or(job_id IS NULL)
ORDER BY first_id
LIMIT :limit
