-- One UTC day [:start, :end) of activity_log rolled up per (tenant, user).
-- counter_columns / counter_aggregates are generated from models.COUNTER_COLUMNS.
-- counts: one pass over the day's events, one FILTER counter per action type.
-- lists_created (the web app's column, no action type of its own): the lists whose first-ever
-- add_to_list falls on this day, credited to the user who made that first add. A list is the
-- (tenant, metadata->'list_id') pair, compared as a JSON value; an add without list_id creates
-- no list. "First-ever" is an anti-join on earlier days, answered by the per-partition GIN
-- index on metadata (containment), so it costs one probe per list added to that day.
WITH counts AS (
    SELECT tenant_id, user_id, {counter_aggregates}, COUNT(*) AS total_events
    FROM activity_log
    WHERE created_at >= :start AND created_at < :end
    GROUP BY tenant_id, user_id
),
first_adds_of_day AS (
    SELECT DISTINCT ON (tenant_id, metadata -> 'list_id')
        tenant_id, user_id, metadata -> 'list_id' AS list_id
    FROM activity_log
    WHERE created_at >= :start AND created_at < :end
      AND action_type = 'add_to_list'
      AND metadata -> 'list_id' IS NOT NULL
      AND metadata -> 'list_id' <> 'null'::jsonb
    ORDER BY tenant_id, metadata -> 'list_id', created_at, id
),
new_lists AS (
    SELECT f.tenant_id, f.user_id, COUNT(*) AS lists_created
    FROM first_adds_of_day AS f
    WHERE NOT EXISTS (
        SELECT 1
        FROM activity_log AS earlier
        WHERE earlier.created_at < :start
          AND earlier.tenant_id = f.tenant_id
          AND earlier.action_type = 'add_to_list'
          AND earlier.metadata @> jsonb_build_object('list_id', f.list_id)
    )
    GROUP BY f.tenant_id, f.user_id
)
INSERT INTO usage_metrics_daily (
    date, tenant_id, user_id, {counter_columns}, lists_created, total_events,
    created_at, updated_at
)
SELECT
    :day, c.tenant_id, c.user_id, {counter_values}, COALESCE(n.lists_created, 0),
    c.total_events, :now, :now
FROM counts AS c
LEFT JOIN new_lists AS n ON n.tenant_id = c.tenant_id AND n.user_id = c.user_id
