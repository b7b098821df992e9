-- One row per (prospect, source) of prospects.enrichment_source_status.
-- Two shapes exist: {"src": {"status", "error"?, "at", "latency_ms"?}} and older rows holding a
-- plain string per source ({"exa": "failed"}). A legacy string that is not a known status is an
-- error message from before statuses were structured, so it counts as failed with that message.
-- A record without a parseable "at" is dated by the prospect's last enrichment
-- (phronesis_try_timestamptz, migration 0002, returns NULL instead of failing the whole run on
-- one malformed timestamp). A value that is not an object (a scalar, an array, the JSON string
-- "reset") yields no records for that prospect, and a source whose record is neither an object
-- nor a string has a NULL status: neither fails the statement.
SELECT p.id AS prospect_id,
       p.tenant_id AS tenant_id,
       s.key AS source,
       CASE
           WHEN jsonb_typeof(s.value) = 'object' THEN s.value ->> 'status'
           WHEN jsonb_typeof(s.value) = 'string'
                AND s.value #>> '{}' IN ('complete', 'failed', 'circuit_open', 'skipped',
                                         'not_found', 'pending', 'in_progress')
               THEN s.value #>> '{}'
           WHEN jsonb_typeof(s.value) = 'string' THEN 'failed'
       END AS status,
       CASE
           WHEN jsonb_typeof(s.value) = 'object' THEN s.value ->> 'error'
           WHEN jsonb_typeof(s.value) = 'string'
                AND s.value #>> '{}' NOT IN ('complete', 'failed', 'circuit_open', 'skipped',
                                             'not_found', 'pending', 'in_progress')
               THEN s.value #>> '{}'
       END AS message,
       CASE
           WHEN jsonb_typeof(s.value -> 'latency_ms') = 'number'
               THEN (s.value ->> 'latency_ms')::double precision
       END AS latency_ms,
       COALESCE(
           CASE
               WHEN jsonb_typeof(s.value -> 'at') = 'string'
                   THEN phronesis_try_timestamptz(s.value ->> 'at')
           END,
           COALESCE(p.last_enriched_at, p.updated_at)
       ) AS at,
       CASE WHEN jsonb_typeof(s.value) = 'object' THEN 'structured' ELSE 'legacy' END
           AS record_shape
FROM prospects p
CROSS JOIN LATERAL jsonb_each(
    CASE
        WHEN jsonb_typeof(p.enrichment_source_status) = 'object' THEN p.enrichment_source_status
        ELSE '{}'::jsonb
    END
) s
WHERE p.enrichment_source_status IS NOT NULL
