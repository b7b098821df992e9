-- enrichment_health_daily for day, for the materialization metadata.
SELECT source, complete_count, failed_count, circuit_open_count, skipped_count, not_found_count,
       total_count, failure_rate, median_latency_ms, latency_source
FROM enrichment_health_daily
WHERE date = :day
ORDER BY source
