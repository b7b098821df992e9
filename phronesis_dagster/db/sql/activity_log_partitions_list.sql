-- Monthly partitions currently attached to activity_log (the DEFAULT partition excluded).
SELECT c.relname AS name
FROM pg_inherits AS i
JOIN pg_class AS c ON c.oid = i.inhrelid
JOIN pg_class AS p ON p.oid = i.inhparent
WHERE p.relname = 'activity_log'
  AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT'
ORDER BY c.relname
