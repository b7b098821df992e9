-- UTC months that have rows waiting in the DEFAULT partition, with their row counts.
SELECT date_trunc('month', created_at AT TIME ZONE 'UTC')::date AS month, COUNT(*) AS n
FROM activity_log_default
GROUP BY 1
ORDER BY 1
