-- Partitions currently attached to activity_log (the DEFAULT partition excluded), with the UTC
-- month each covers when it is exactly one calendar month (the web app's and ours); NULL for
-- any other range, which then never counts as covering a month.
SELECT c.relname AS name,
       CASE
           WHEN date_trunc('month', b.lower_bound AT TIME ZONE 'UTC') = b.lower_bound AT TIME ZONE 'UTC'
                AND b.upper_bound AT TIME ZONE 'UTC' = (b.lower_bound AT TIME ZONE 'UTC') + interval '1 month'
               THEN (b.lower_bound AT TIME ZONE 'UTC')::date
       END AS month
FROM pg_inherits AS i
JOIN pg_class AS c ON c.oid = i.inhrelid
JOIN pg_class AS p ON p.oid = i.inhparent
CROSS JOIN LATERAL (
    SELECT (regexp_match(pg_get_expr(c.relpartbound, c.oid),
                         'FROM \(''([^'']+)''\) TO \(''([^'']+)''\)'))[1]::timestamptz AS lower_bound,
           (regexp_match(pg_get_expr(c.relpartbound, c.oid),
                         'FROM \(''([^'']+)''\) TO \(''([^'']+)''\)'))[2]::timestamptz AS upper_bound
) AS b
WHERE p.relname = 'activity_log'
  AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT'
ORDER BY c.relname
