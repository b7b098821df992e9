-- funnel_daily for one UTC day, from that day of usage_metrics_daily (one row per tenant and
-- user with their counters of the day).
-- Stage rule: a user reaches stage 1 (search) with at least one search that day; stage n > 1
-- with at least one event of stage n that day AND having reached stage n - 1 the same day.
-- Stages: search_executed -> profile_viewed -> profile_enriched -> add_to_list -> csv_exported.
-- One row per tenant that existed by the end of the day (or had activity on it; zeros when none)
-- plus the platform row (tenant_id NULL) from the empty grouping set, which an aggregate returns
-- even over no input: every day has its rows.
WITH stages AS (
    SELECT
        tenant_id,
        user_id,
        searches_executed > 0 AS s1,
        searches_executed > 0 AND profiles_viewed > 0 AS s2,
        searches_executed > 0 AND profiles_viewed > 0 AND profiles_enriched > 0 AS s3,
        searches_executed > 0 AND profiles_viewed > 0 AND profiles_enriched > 0
            AND adds_to_list > 0 AS s4,
        searches_executed > 0 AND profiles_viewed > 0 AND profiles_enriched > 0
            AND adds_to_list > 0 AND csv_exports > 0 AS s5
    FROM usage_metrics_daily
    WHERE date = :day
),
day_tenants AS (
    SELECT id AS tenant_id FROM tenants WHERE created_at < :end
    UNION
    SELECT tenant_id FROM stages
),
counts AS (
    SELECT
        t.tenant_id,
        COUNT(*) FILTER (WHERE s.s1) AS searched,
        COUNT(*) FILTER (WHERE s.s2) AS viewed,
        COUNT(*) FILTER (WHERE s.s3) AS enriched,
        COUNT(*) FILTER (WHERE s.s4) AS listed,
        COUNT(*) FILTER (WHERE s.s5) AS exported
    FROM day_tenants t
    LEFT JOIN stages s ON s.tenant_id = t.tenant_id
    GROUP BY GROUPING SETS ((t.tenant_id), ())
)
INSERT INTO funnel_daily (
    date, tenant_id, searched_users, viewed_users, enriched_users, listed_users,
    exported_users, search_to_view, view_to_enrich, enrich_to_list, list_to_export
)
SELECT
    :day, tenant_id, searched, viewed, enriched, listed, exported,
    -- NULL, not 0, when nobody reached the earlier stage: 0 of 0 is no conversion rate at all
    CASE WHEN searched > 0 THEN CAST(viewed AS DOUBLE PRECISION) / searched END,
    CASE WHEN viewed > 0 THEN CAST(enriched AS DOUBLE PRECISION) / viewed END,
    CASE WHEN enriched > 0 THEN CAST(listed AS DOUBLE PRECISION) / enriched END,
    CASE WHEN listed > 0 THEN CAST(exported AS DOUBLE PRECISION) / listed END
FROM counts
