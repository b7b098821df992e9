-- Per-tenant totals of one UTC day of usage_metrics_daily (the dashboard's activity heatmap).
INSERT INTO tenant_activity_daily (date, tenant_id, active_users, total_events, total_logins,
                                   searches_executed, profiles_viewed, profiles_enriched,
                                   csv_exports, adds_to_list, removes_from_list,
                                   statuses_updated, notes_added, personas_created,
                                   lookalike_searches)
SELECT date,
       tenant_id,
       COUNT(DISTINCT CASE WHEN total_events > 0 THEN user_id END),
       SUM(total_events),
       SUM(total_logins),
       SUM(searches_executed),
       SUM(profiles_viewed),
       SUM(profiles_enriched),
       SUM(csv_exports),
       SUM(adds_to_list),
       SUM(removes_from_list),
       SUM(statuses_updated),
       SUM(notes_added),
       SUM(personas_created),
       SUM(lookalike_searches)
FROM usage_metrics_daily
WHERE date = :day
GROUP BY date, tenant_id
