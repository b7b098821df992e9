-- One row per (prospect, source) of prospects.enrichment_source_status, on SQLite.
-- Two shapes exist: {"src": {"status", "error"?, "at", "latency_ms"?}} and older rows holding a
-- plain string per source ({"exa": "failed"}). A legacy string that is not a known status is an
-- error message from before statuses were structured, so it counts as failed with that message.
-- A record without a usable "at" is dated by the prospect's last enrichment.
SELECT p.id AS prospect_id,
       p.tenant_id AS tenant_id,
       s.key AS source,
       CASE
           WHEN s.type = 'object' THEN json_extract(s.value, '$.status')
           WHEN s.type = 'text' AND s.value IN ('complete', 'failed', 'circuit_open', 'skipped',
                                                'not_found', 'pending', 'in_progress')
               THEN s.value
           WHEN s.type = 'text' THEN 'failed'
       END AS status,
       CASE
           WHEN s.type = 'object' THEN json_extract(s.value, '$.error')
           WHEN s.type = 'text' AND s.value NOT IN ('complete', 'failed', 'circuit_open',
                                                    'skipped', 'not_found', 'pending',
                                                    'in_progress')
               THEN s.value
       END AS message,
       CASE
           WHEN s.type = 'object' AND json_type(s.value, '$.latency_ms') IN ('integer', 'real')
               THEN CAST(json_extract(s.value, '$.latency_ms') AS REAL)
       END AS latency_ms,
       COALESCE(
           CASE WHEN s.type = 'object' THEN datetime(json_extract(s.value, '$.at')) END,
           datetime(COALESCE(p.last_enriched_at, p.updated_at))
       ) AS at,
       CASE WHEN s.type = 'object' THEN 'structured' ELSE 'legacy' END AS record_shape
FROM prospects p,
     json_each(
         CASE
             WHEN json_valid(p.enrichment_source_status)
                  AND json_type(p.enrichment_source_status) = 'object'
                 THEN p.enrichment_source_status
             ELSE '{}'
         END
     ) s
WHERE p.enrichment_source_status IS NOT NULL
