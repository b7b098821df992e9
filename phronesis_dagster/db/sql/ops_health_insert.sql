-- enrichment_health_daily for one UTC day: outcome counts per source from the per-source
-- records (the records CTE is ops_source_records.sql), failure rate, and the median
-- latency: from the records' latency_ms when they carry it, else from the pipeline's
-- api_call_log for the provider of the same name.
-- Medians with percentile_cont.
WITH records AS (
__SOURCE_RECORDS__
),
day_records AS (
    SELECT source, status, latency_ms
    FROM records
    WHERE at >= :start AND at < :end
),
counts AS (
    SELECT source,
           SUM(CASE WHEN status = 'complete' THEN 1 ELSE 0 END) AS complete_count,
           SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS failed_count,
           SUM(CASE WHEN status = 'circuit_open' THEN 1 ELSE 0 END) AS circuit_open_count,
           SUM(CASE WHEN status = 'skipped' THEN 1 ELSE 0 END) AS skipped_count,
           SUM(CASE WHEN status = 'not_found' THEN 1 ELSE 0 END) AS not_found_count,
           COUNT(*) AS total_count
    FROM day_records
    GROUP BY source
),
record_median AS (
    SELECT source, percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS median
    FROM day_records
    WHERE latency_ms IS NOT NULL
    GROUP BY source
),
log_median AS (
    SELECT provider, percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS median
    FROM api_call_log
    WHERE called_at >= :start AND called_at < :end
      AND latency_ms IS NOT NULL
      AND outcome <> 'circuit_open'
    GROUP BY provider
)
INSERT INTO enrichment_health_daily (date, source, complete_count, failed_count,
                                     circuit_open_count, skipped_count, not_found_count,
                                     total_count, failure_rate, median_latency_ms,
                                     latency_source)
SELECT :day,
       c.source,
       c.complete_count,
       c.failed_count,
       c.circuit_open_count,
       c.skipped_count,
       c.not_found_count,
       c.total_count,
       -- the share of calls actually made that failed (circuit_open and skipped made no call)
       CASE
           WHEN c.complete_count + c.failed_count + c.not_found_count > 0
               THEN CAST(c.failed_count AS DOUBLE PRECISION)
                    / (c.complete_count + c.failed_count + c.not_found_count)
       END,
       COALESCE(r.median, l.median),
       CASE
           WHEN r.median IS NOT NULL THEN 'records'
           WHEN l.median IS NOT NULL THEN 'api_call_log'
       END
FROM counts c
LEFT JOIN record_median r ON r.source = c.source
LEFT JOIN log_median l ON l.provider = c.source
