-- Of the given batch keys, those whose requests are all closed (done, rejected or failed) and
-- whose last change is older than :before. A key no request row carries any more (the web app
-- deleted its requests) is retirable too: there is nothing left to show under it.
SELECT k.batch_key
FROM unnest(CAST(:keys AS TEXT[])) AS k(batch_key)
LEFT JOIN enrichment_requests r ON r.batch_key = k.batch_key
GROUP BY k.batch_key
HAVING count(r.id) = 0
    OR (bool_and(r.status IN ('done', 'rejected', 'failed')) AND max(r.updated_at) < :before)
ORDER BY k.batch_key
