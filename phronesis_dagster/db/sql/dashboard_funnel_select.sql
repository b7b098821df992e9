-- funnel_daily of day, the platform row (tenant_id NULL) first, then the busiest tenants.
SELECT f.tenant_id, t.name AS tenant_name, f.searched_users, f.viewed_users, f.enriched_users,
       f.listed_users, f.exported_users, f.search_to_view, f.view_to_enrich, f.enrich_to_list,
       f.list_to_export
FROM funnel_daily f
LEFT JOIN tenants t ON t.id = f.tenant_id
WHERE f.date = :day
ORDER BY f.tenant_id IS NOT NULL, f.searched_users DESC, f.exported_users DESC, f.tenant_id
