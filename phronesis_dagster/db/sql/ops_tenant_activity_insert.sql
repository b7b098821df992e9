-- Per-tenant totals of one UTC day of usage_metrics_daily (the dashboard's activity heatmap).
-- COALESCE: the web app's counters are nullable (DEFAULT 0, no NOT NULL).
INSERT INTO tenant_activity_daily (date, tenant_id, active_users, total_events, total_logins,
                                   searches_executed, profiles_viewed, profiles_enriched,
                                   csv_exports, lists_created, adds_to_list, removes_from_list,
                                   statuses_updated, notes_added, personas_created,
                                   lookalike_searches)
SELECT date,
       tenant_id,
       COUNT(DISTINCT CASE WHEN total_events > 0 THEN user_id END),
       COALESCE(SUM(total_events), 0),
       COALESCE(SUM(total_logins), 0),
       COALESCE(SUM(searches_executed), 0),
       COALESCE(SUM(profiles_viewed), 0),
       COALESCE(SUM(profiles_enriched), 0),
       COALESCE(SUM(csv_exports), 0),
       COALESCE(SUM(lists_created), 0),
       SUM(adds_to_list),
       SUM(removes_from_list),
       SUM(statuses_updated),
       SUM(notes_added),
       SUM(personas_created),
       SUM(lookalike_searches)
FROM usage_metrics_daily
WHERE date = :day
GROUP BY date, tenant_id
