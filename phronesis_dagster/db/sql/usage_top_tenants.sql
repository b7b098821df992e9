SELECT
    u.tenant_id,
    MAX(t.name) AS tenant_name,
    COUNT(*) AS active_users,
    SUM(u.total_events) AS events,
    SUM(u.searches_executed) AS searches,
    SUM(u.profiles_enriched) AS enrichments
FROM usage_metrics_daily AS u
LEFT JOIN tenants AS t ON t.id = u.tenant_id
WHERE u.date = :day
GROUP BY u.tenant_id
ORDER BY events DESC, u.tenant_id
LIMIT :limit
