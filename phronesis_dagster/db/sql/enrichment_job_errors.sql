-- The structured error log of one bulk job: rejected requests, runs that failed, and every
-- source that ended failed or circuit_open for one of the job's prospects.
SELECT prospect_id, source, error, at
FROM (
    SELECT
        r.prospect_id,
        CASE WHEN r.status = 'rejected' THEN 'request' ELSE 'run' END AS source,
        r.reason AS error,
        r.updated_at AS at
    FROM enrichment_requests r
    WHERE r.job_id = :job_id
      AND (r.status = 'rejected' OR (r.status = 'failed' AND r.reason LIKE 'run %'))
    UNION ALL
    SELECT s.prospect_id, s.source, s.error, s.updated_at AS at
    FROM enrichment_source_results s
    JOIN enrichment_requests r
      ON r.batch_key = s.batch_key AND r.prospect_id = s.prospect_id
    WHERE r.job_id = :job_id
      AND s.status IN ('failed', 'circuit_open')
) e
ORDER BY at, prospect_id, source
LIMIT :limit
