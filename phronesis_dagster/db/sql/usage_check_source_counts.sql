-- Events per action type in activity_log for one UTC day (the truth the rollup must match).
-- source_counts is generated from models.COUNTER_COLUMNS; [:start, :end) as in the rollup.
SELECT COUNT(*) AS total, {source_counts}
FROM activity_log
WHERE created_at >= :start AND created_at < :end
