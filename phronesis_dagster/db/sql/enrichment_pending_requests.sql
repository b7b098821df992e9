-- Pending enrichment requests after the sensor's cursor, with what the sensor needs to validate,
-- coalesce and batch them: the prospect (NULL when unknown) and whether another request for the
-- same prospect is already queued or running (then this one waits: one enrichment per prospect).
-- :lane picks the requests of one lane, by prospect: 'interactive' the pending requests of every
-- prospect with a pending request without a job (a rep's click: its bulk requests coalesce into
-- the click's batch), 'bulk' those of every other prospect, 'all' both.
SELECT
    r.id,
    r.tenant_id,
    r.prospect_id,
    r.force,
    r.job_id,
    p.id AS p_id,
    p.tenant_id AS p_tenant_id,
    p.name AS p_name,
    p.company AS p_company,
    p.enrichment_status AS p_status,
    p.last_enriched_at AS p_last_enriched_at,
    p.is_public_company AS p_public,
    CASE WHEN EXISTS (
        SELECT 1
        FROM enrichment_requests a
        WHERE a.prospect_id = r.prospect_id
          AND a.status IN ('queued', 'running')
    ) THEN 1 ELSE 0 END AS busy
FROM enrichment_requests r
LEFT JOIN prospects p ON p.id = r.prospect_id
WHERE r.status = 'pending'
  AND r.id > :after_id
  AND (
    :lane = 'all'
    OR (:lane = 'interactive') = EXISTS (
        SELECT 1
        FROM enrichment_requests c
        WHERE c.prospect_id = r.prospect_id
          AND c.status = 'pending'
          AND c.job_id IS NULL
    )
  )
ORDER BY r.id
LIMIT :limit
