-- enrichment_health_daily for one UTC day [start, end), from the per-batch results the pipeline
-- stores (enrichment_source_results: one row per batch, prospect and source, its latest attempt,
-- dated by updated_at when that attempt ended). Not from prospects' latest records: a prospect
-- enriched again later would move its old outcome out of the day, so a backfill of last month
-- would not give last month's figures.
-- Every source of :sources gets its row (zeros when nothing happened to it that day); a source
-- key not in the list that has results that day (an older name) gets one too. `edgar` was the
-- EDGAR source's key before the web app's `sec`, so results stored under it count as `sec`.
-- The median latency is the results' latency_ms over calls made (circuit_open and skipped made
-- none), else api_call_log's for the source's provider (:providers, same order as :sources).
WITH sources AS (
    SELECT source, provider
    FROM unnest(CAST(:sources AS TEXT[]), CAST(:providers AS TEXT[])) AS s(source, provider)
),
day_results AS (
    SELECT CASE WHEN source = 'edgar' THEN 'sec' ELSE source END AS source,
           status,
           latency_ms
    FROM enrichment_source_results
    WHERE updated_at >= :start AND updated_at < :end
),
all_sources AS (
    SELECT source, provider FROM sources
    UNION
    SELECT DISTINCT source, source FROM day_results
    WHERE source NOT IN (SELECT source FROM sources)
),
counts AS (
    SELECT source,
           COUNT(*) FILTER (WHERE status = 'complete') AS complete_count,
           COUNT(*) FILTER (WHERE status = 'failed') AS failed_count,
           COUNT(*) FILTER (WHERE status = 'circuit_open') AS circuit_open_count,
           COUNT(*) FILTER (WHERE status = 'skipped') AS skipped_count,
           COUNT(*) FILTER (WHERE status = 'not_found') AS not_found_count,
           COUNT(*) AS total_count,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) FILTER (
               WHERE latency_ms IS NOT NULL AND status NOT IN ('circuit_open', 'skipped')
           ) AS median_latency_ms
    FROM day_results
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
       s.source,
       COALESCE(c.complete_count, 0),
       COALESCE(c.failed_count, 0),
       COALESCE(c.circuit_open_count, 0),
       COALESCE(c.skipped_count, 0),
       COALESCE(c.not_found_count, 0),
       COALESCE(c.total_count, 0),
       -- the share of calls actually made that failed (circuit_open and skipped made no call);
       -- NULL when no call was made
       CASE
           WHEN c.complete_count + c.failed_count + c.not_found_count > 0
               THEN CAST(c.failed_count AS DOUBLE PRECISION)
                    / (c.complete_count + c.failed_count + c.not_found_count)
       END,
       COALESCE(c.median_latency_ms, l.median),
       CASE
           WHEN c.median_latency_ms IS NOT NULL THEN 'results'
           WHEN l.median IS NOT NULL THEN 'api_call_log'
       END
FROM all_sources s
LEFT JOIN counts c ON c.source = s.source
LEFT JOIN log_median l ON l.provider = s.provider
