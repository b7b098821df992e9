-- Recompute one bulk job's counters from its requests. Recomputing (rather than incrementing)
-- makes the update idempotent: a re-run batch or a repeated failure sensor cannot double count.
UPDATE enrichment_jobs
SET
    processed = (
        SELECT COUNT(*) FROM enrichment_requests r
        WHERE r.job_id = enrichment_jobs.id AND r.status IN ('done', 'rejected', 'failed')
    ),
    succeeded = (
        SELECT COUNT(*) FROM enrichment_requests r
        WHERE r.job_id = enrichment_jobs.id AND r.status = 'done'
    ),
    failed = (
        SELECT COUNT(*) FROM enrichment_requests r
        WHERE r.job_id = enrichment_jobs.id AND r.status IN ('rejected', 'failed')
    ),
    updated_at = :now
WHERE id = :job_id
