-- The day's platform figures as usage_metrics_daily has them (the team-usage dashboard's
-- numbers), to reconcile platform_pulse_daily with: a user or tenant is active on the day when
-- one of its rows counts an event.
SELECT
    COUNT(DISTINCT tenant_id) FILTER (WHERE total_events > 0) AS active_tenants,
    COUNT(DISTINCT user_id) FILTER (WHERE total_events > 0) AS dau,
    COALESCE(SUM(total_events), 0) AS total_events,
    COALESCE(SUM(total_logins), 0) AS total_logins,
    COALESCE(SUM(searches_executed), 0) AS searches_executed,
    COALESCE(SUM(profiles_viewed), 0) AS profiles_viewed,
    COALESCE(SUM(profiles_enriched), 0) AS profiles_enriched,
    COALESCE(SUM(csv_exports), 0) AS csv_exports,
    COALESCE(SUM(adds_to_list), 0) AS adds_to_list,
    COALESCE(SUM(removes_from_list), 0) AS removes_from_list,
    COALESCE(SUM(statuses_updated), 0) AS statuses_updated,
    COALESCE(SUM(notes_added), 0) AS notes_added,
    COALESCE(SUM(personas_created), 0) AS personas_created,
    COALESCE(SUM(lookalike_searches), 0) AS lookalike_searches
FROM usage_metrics_daily
WHERE date = :day
