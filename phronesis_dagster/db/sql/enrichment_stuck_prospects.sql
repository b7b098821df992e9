-- Prospects left in_progress since before the cutoff: a batch run that died without its failure
-- sensor firing (killed process, lost node).
SELECT id, tenant_id, updated_at
FROM prospects
WHERE enrichment_status = 'in_progress'
  AND updated_at < :cutoff
ORDER BY updated_at
