-- funnel_daily rows of day where a stage counts more users than the stage before it.
SELECT tenant_id, searched_users, viewed_users, enriched_users, listed_users, exported_users
FROM funnel_daily
WHERE date = :day
  AND (viewed_users > searched_users
       OR enriched_users > viewed_users
       OR listed_users > enriched_users
       OR exported_users > listed_users)
ORDER BY tenant_id NULLS FIRST
