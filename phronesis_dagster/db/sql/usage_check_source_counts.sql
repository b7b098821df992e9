-- Events per action type in activity_log for one UTC day (the truth the rollup must match).
-- source_counts is generated from models.COUNTER_COLUMNS; day_window as in the rollup.
SELECT COUNT(*) AS total, {source_counts}
FROM activity_log
WHERE {day_window}
