-- enrichment_requests touching the UTC day [start, end), grouped by what the pulse counts:
-- status, answered without a run (no batch_key), asked on the day, finished on the day. The
-- check adds these groups up in Python, a different route to the figures than the pulse's SQL.
SELECT
    status,
    batch_key IS NULL AS without_batch,
    created_at >= :start AND created_at < :end AS asked_on_day,
    updated_at >= :start AND updated_at < :end AS finished_on_day,
    COUNT(*) AS n
FROM enrichment_requests
WHERE (created_at >= :start AND created_at < :end)
   OR (updated_at >= :start AND updated_at < :end)
GROUP BY 1, 2, 3, 4
