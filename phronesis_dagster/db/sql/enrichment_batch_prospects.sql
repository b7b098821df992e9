-- The prospects of one enrichment batch (requests for the same prospect are coalesced; force if
-- any of them asked for it).
SELECT
    p.id,
    p.tenant_id,
    p.name,
    p.title,
    p.company,
    p.email,
    p.phone,
    p.linkedin_url,
    p.location,
    p.is_public_company,
    p.company_ticker,
    p.company_cik,
    p.enrichment_source_status,
    f.force
FROM (
    SELECT prospect_id, MAX(CASE WHEN force THEN 1 ELSE 0 END) AS force
    FROM enrichment_requests
    WHERE batch_key = :batch_key
      AND status <> 'rejected'
    GROUP BY prospect_id
) f
JOIN prospects p ON p.id = f.prospect_id
ORDER BY p.id
