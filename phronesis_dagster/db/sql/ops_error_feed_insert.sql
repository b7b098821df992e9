-- The latest limit per-source errors (failed or circuit_open), newest first.
-- the records CTE is ops_source_records.sql.
WITH records AS (
__SOURCE_RECORDS__
)
INSERT INTO enrichment_error_feed (prospect_id, tenant_id, source, status, message, at,
                                   record_shape)
SELECT prospect_id, tenant_id, source, status, message, at, record_shape
FROM records
WHERE status IN ('failed', 'circuit_open')
ORDER BY CASE WHEN at IS NULL THEN 1 ELSE 0 END, at DESC, prospect_id DESC, source
LIMIT :limit
