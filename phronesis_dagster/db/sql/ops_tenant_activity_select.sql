-- tenant_activity_daily for day, busiest tenants first, for the materialization preview.
SELECT tenant_id, active_users, total_events, searches_executed, profiles_viewed
FROM tenant_activity_daily
WHERE date = :day
ORDER BY total_events DESC, tenant_id
