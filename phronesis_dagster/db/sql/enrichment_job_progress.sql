-- Recompute the live progress of the given bulk jobs from their requests and the per-source
-- results the runs have stored, in one set-based UPDATE, and append the run's new highlights.
--
-- Derived, never incremented: every count is recounted from stored rows, so two batches of one
-- job writing at once add up (each recount sees the other's committed results; the job rows
-- are locked first, see enrichment_job_lock.sql), and a batch re-executed after a kill counts
-- each prospect once however many times its sources were stored or its progress written.
--
-- A request is processed when it is closed (done / rejected / failed) or, while its batch runs,
-- when every source (:all_sources) has an outcome stored for its prospect in that batch; such
-- a prospect counts as succeeded when an applicable data source (:data_sources, not skipped)
-- delivered or found nothing, or none applied - the rule finish_batch closes it by
-- (enrichment/status.py overall_status).
WITH live AS (
    SELECT
        r.job_id,
        r.status,
        r.batch_key,
        COALESCE(s.all_in, false) AS all_in,
        COALESCE(s.data_in, false) AS data_in,
        COALESCE(s.usable, false) AS usable
    FROM enrichment_requests r
    LEFT JOIN LATERAL (
        SELECT
            COUNT(*) FILTER (WHERE x.source = ANY(:all_sources))
                >= cardinality(:all_sources) AS all_in,
            COUNT(*) FILTER (WHERE x.source = ANY(:data_sources))
                >= cardinality(:data_sources) AS data_in,
            COALESCE(bool_or(x.status IN ('complete', 'not_found'))
                FILTER (WHERE x.source = ANY(:data_sources) AND x.status <> 'skipped'), true)
                AS usable
        FROM enrichment_source_results x
        WHERE r.status = 'running'
          AND x.batch_key = r.batch_key
          AND x.prospect_id = r.prospect_id
    ) s ON true
    WHERE r.job_id = ANY(:job_ids)
),
per_job AS (
    SELECT
        job_id,
        COUNT(*) AS requests,
        COUNT(*) FILTER (
            WHERE status IN ('done', 'rejected', 'failed') OR (status = 'running' AND all_in)
        ) AS processed,
        COUNT(*) FILTER (
            WHERE status = 'done' OR (status = 'running' AND all_in AND usable)
        ) AS succeeded,
        COUNT(*) FILTER (
            WHERE status IN ('rejected', 'failed') OR (status = 'running' AND all_in AND NOT usable)
        ) AS failed,
        -- Done by a run (not rejected or answered by the sensor): the pace of the ETA.
        COUNT(*) FILTER (
            WHERE batch_key IS NOT NULL
              AND (status IN ('done', 'failed') OR (status = 'running' AND all_in))
        ) AS ran,
        COUNT(*) FILTER (WHERE status IN ('pending', 'queued', 'running')) AS open,
        COUNT(*) FILTER (WHERE status = 'running') AS running,
        COUNT(*) FILTER (WHERE status = 'running' AND NOT data_in) AS enriching
    FROM live
    GROUP BY job_id
),
new_highlights AS (
    -- The run's highlights that belong to each job: their prospect has a request of the job.
    SELECT r.job_id, jsonb_agg(h.value ORDER BY h.n) AS items
    FROM jsonb_array_elements(CAST(:highlights AS jsonb)) WITH ORDINALITY AS h(value, n)
    JOIN enrichment_requests r
      ON r.job_id = ANY(:job_ids)
     AND r.prospect_id = CAST(h.value ->> 'prospect_id' AS uuid)
     AND r.batch_key IS NOT DISTINCT FROM CAST(:batch_key AS text)
    GROUP BY r.job_id
)
UPDATE enrichment_jobs j
SET
    processed = COALESCE(c.processed, 0),
    succeeded = COALESCE(c.succeeded, 0),
    failed = COALESCE(c.failed, 0),
    phase = CASE
        WHEN c.requests > 0 AND c.open = 0 THEN 'done'
        WHEN c.enriching > 0 THEN 'enriching'
        WHEN c.running > 0 THEN 'summarizing'
        ELSE 'queued'
    END,
    started_at = CASE
        WHEN j.started_at IS NULL AND (c.running > 0 OR c.ran > 0) THEN :now
        ELSE j.started_at
    END,
    eta_seconds = CASE
        WHEN c.requests > 0 AND c.open = 0 THEN 0
        WHEN c.ran > 0 AND j.started_at IS NOT NULL THEN CAST(ceil(
            (c.requests - c.processed)
            * GREATEST(EXTRACT(EPOCH FROM (CAST(:now AS timestamptz) - j.started_at)), 0)
            / c.ran
        ) AS integer)
        ELSE NULL
    END,
    highlights = CASE
        WHEN n.items IS NULL THEN j.highlights
        ELSE (
            SELECT COALESCE(jsonb_agg(k.value ORDER BY k.n), '[]'::jsonb)
            FROM (
                SELECT e.value, e.n
                FROM jsonb_array_elements(COALESCE(j.highlights, '[]'::jsonb) || n.items)
                     WITH ORDINALITY AS e(value, n)
                ORDER BY e.n DESC
                LIMIT :keep
            ) k
        )
    END,
    progress_at = :now,
    updated_at = :now
FROM enrichment_jobs j0
LEFT JOIN per_job c ON c.job_id = j0.id
LEFT JOIN new_highlights n ON n.job_id = j0.id
WHERE j.id = j0.id
  AND j0.id = ANY(:job_ids)
