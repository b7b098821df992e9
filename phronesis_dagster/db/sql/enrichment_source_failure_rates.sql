-- Per source, the outcomes of the provider calls made in the window (skipped sources made no
-- call and do not count).
SELECT
    source,
    COUNT(*) AS calls,
    SUM(CASE WHEN status IN ('failed', 'circuit_open') THEN 1 ELSE 0 END) AS failures
FROM enrichment_source_results
WHERE updated_at >= :since
  AND status <> 'skipped'
GROUP BY source
ORDER BY source
