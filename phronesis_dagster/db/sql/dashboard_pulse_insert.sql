-- platform_pulse_daily for one UTC day [start, end): one row for the whole platform.
-- Every CTE is an aggregate without GROUP BY, so a day without any activity still yields exactly
-- one row (of zeros, and NULL percentiles), never a missing day.
-- Activity comes from the raw activity_log (not usage_metrics_daily), so the reconciliation
-- check against usage_metrics_daily compares two independent computations.
WITH day_events AS (
    SELECT
        COUNT(DISTINCT tenant_id) AS active_tenants,
        COUNT(DISTINCT user_id) AS dau,
        COUNT(*) AS total_events,
        COUNT(*) FILTER (WHERE action_type = 'login') AS total_logins,
        COUNT(*) FILTER (WHERE action_type = 'search_executed') AS searches_executed,
        COUNT(*) FILTER (WHERE action_type = 'profile_viewed') AS profiles_viewed,
        COUNT(*) FILTER (WHERE action_type = 'profile_enriched') AS profiles_enriched,
        COUNT(*) FILTER (WHERE action_type = 'csv_exported') AS csv_exports,
        COUNT(*) FILTER (WHERE action_type = 'add_to_list') AS adds_to_list,
        COUNT(*) FILTER (WHERE action_type = 'remove_from_list') AS removes_from_list,
        COUNT(*) FILTER (WHERE action_type = 'status_updated') AS statuses_updated,
        COUNT(*) FILTER (WHERE action_type = 'note_added') AS notes_added,
        COUNT(*) FILTER (WHERE action_type = 'persona_created') AS personas_created,
        COUNT(*) FILTER (WHERE action_type = 'lookalike_search') AS lookalike_searches
    FROM activity_log
    WHERE created_at >= :start AND created_at < :end
),
-- Trailing windows ending with the day: the 7 (WAU) and 30 (MAU) UTC days up to and including it.
trailing_users AS (
    SELECT
        COUNT(DISTINCT user_id) FILTER (WHERE created_at >= :wau_start) AS wau,
        COUNT(DISTINCT user_id) AS mau
    FROM activity_log
    WHERE created_at >= :mau_start AND created_at < :end
),
new_prospects AS (
    SELECT COUNT(*) AS n
    FROM prospects
    WHERE created_at >= :start AND created_at < :end
),
-- The request log: asked for on the day (created_at), and finished on the day (the status change
-- to done / failed / rejected is the last write of a request, so updated_at dates it). A done
-- request without batch_key was answered from a fresh enrichment without a run (cached); the
-- request-to-done percentiles are over the ones a batch run actually enriched.
requests AS (
    SELECT
        COUNT(*) FILTER (WHERE created_at >= :start AND created_at < :end) AS requested,
        COUNT(*) FILTER (
            WHERE status = 'done' AND updated_at >= :start AND updated_at < :end
        ) AS completed,
        COUNT(*) FILTER (
            WHERE status = 'done' AND batch_key IS NULL
              AND updated_at >= :start AND updated_at < :end
        ) AS cached,
        COUNT(*) FILTER (
            WHERE status = 'failed' AND updated_at >= :start AND updated_at < :end
        ) AS failed,
        COUNT(*) FILTER (
            WHERE status = 'rejected' AND updated_at >= :start AND updated_at < :end
        ) AS rejected,
        percentile_cont(0.5) WITHIN GROUP (
            ORDER BY EXTRACT(EPOCH FROM updated_at - created_at)
        ) FILTER (
            WHERE status = 'done' AND batch_key IS NOT NULL
              AND updated_at >= :start AND updated_at < :end
        ) AS p50,
        percentile_cont(0.95) WITHIN GROUP (
            ORDER BY EXTRACT(EPOCH FROM updated_at - created_at)
        ) FILTER (
            WHERE status = 'done' AND batch_key IS NOT NULL
              AND updated_at >= :start AND updated_at < :end
        ) AS p95
    FROM enrichment_requests
    WHERE (created_at >= :start AND created_at < :end)
       OR (updated_at >= :start AND updated_at < :end)
),
-- Provider calls of the day from the api_usage counters: origin 'pipeline' (written by every
-- provider call of a run) and 'web_app' (the web app's Redis counters, copied in by
-- api_quota_daily). Rate-limited attempts are calls the provider answered, so they count.
calls AS (
    SELECT
        COALESCE(SUM(success_count + failure_count + rate_limited_count), 0) AS provider_calls,
        COALESCE(SUM(success_count + failure_count + rate_limited_count)
                 FILTER (WHERE origin = 'pipeline'), 0) AS pipeline_calls,
        COALESCE(SUM(success_count + failure_count + rate_limited_count)
                 FILTER (WHERE origin = 'web_app'), 0) AS web_app_calls,
        COALESCE(SUM(failure_count + rate_limited_count), 0) AS provider_failures,
        COALESCE(SUM(cost_usd), 0) AS spend_usd
    FROM api_usage
    WHERE date = :day
)
INSERT INTO platform_pulse_daily (
    date, active_tenants, dau, wau, mau, total_events,
    total_logins, searches_executed, profiles_viewed, profiles_enriched, csv_exports,
    adds_to_list, removes_from_list, statuses_updated, notes_added, personas_created,
    lookalike_searches,
    new_prospects,
    enrichments_requested, enrichments_completed, enrichments_cached, enrichments_failed,
    enrichments_rejected, request_to_done_p50_s, request_to_done_p95_s,
    provider_calls, pipeline_provider_calls, web_app_provider_calls, provider_failures,
    provider_spend_usd
)
SELECT
    :day, e.active_tenants, e.dau, t.wau, t.mau, e.total_events,
    e.total_logins, e.searches_executed, e.profiles_viewed, e.profiles_enriched, e.csv_exports,
    e.adds_to_list, e.removes_from_list, e.statuses_updated, e.notes_added, e.personas_created,
    e.lookalike_searches,
    p.n,
    r.requested, r.completed, r.cached, r.failed, r.rejected, r.p50, r.p95,
    c.provider_calls, c.pipeline_calls, c.web_app_calls, c.provider_failures, c.spend_usd
FROM day_events e, trailing_users t, new_prospects p, requests r, calls c
