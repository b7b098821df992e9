-- The platform row of day (tenant_id NULL) next to the sum of the day's tenant rows, per stage;
-- platform_rows is how many platform rows the day has (exactly one when it is well formed).
SELECT
    COUNT(*) FILTER (WHERE tenant_id IS NULL) AS platform_rows,
    COALESCE(SUM(searched_users) FILTER (WHERE tenant_id IS NULL), 0) AS platform_searched,
    COALESCE(SUM(searched_users) FILTER (WHERE tenant_id IS NOT NULL), 0) AS tenants_searched,
    COALESCE(SUM(viewed_users) FILTER (WHERE tenant_id IS NULL), 0) AS platform_viewed,
    COALESCE(SUM(viewed_users) FILTER (WHERE tenant_id IS NOT NULL), 0) AS tenants_viewed,
    COALESCE(SUM(enriched_users) FILTER (WHERE tenant_id IS NULL), 0) AS platform_enriched,
    COALESCE(SUM(enriched_users) FILTER (WHERE tenant_id IS NOT NULL), 0) AS tenants_enriched,
    COALESCE(SUM(listed_users) FILTER (WHERE tenant_id IS NULL), 0) AS platform_listed,
    COALESCE(SUM(listed_users) FILTER (WHERE tenant_id IS NOT NULL), 0) AS tenants_listed,
    COALESCE(SUM(exported_users) FILTER (WHERE tenant_id IS NULL), 0) AS platform_exported,
    COALESCE(SUM(exported_users) FILTER (WHERE tenant_id IS NOT NULL), 0) AS tenants_exported
FROM funnel_daily
WHERE date = :day
