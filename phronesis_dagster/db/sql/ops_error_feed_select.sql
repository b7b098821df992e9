-- The newest rows of enrichment_error_feed, for the materialization preview.
SELECT prospect_id, tenant_id, source, status, message, at, record_shape
FROM enrichment_error_feed
ORDER BY CASE WHEN at IS NULL THEN 1 ELSE 0 END, at DESC, prospect_id DESC, source
LIMIT :limit
