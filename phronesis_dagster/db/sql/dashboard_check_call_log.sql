-- The pipeline's provider calls of the UTC day as its call log has them, one row per attempt:
-- a circuit_open attempt made no call (and is not in api_usage); only a successful call (or a
-- no-match, which is a successful call) is billed.
SELECT
    COUNT(*) FILTER (WHERE outcome <> 'circuit_open') AS calls,
    COUNT(*) FILTER (WHERE outcome IN ('failure', 'rate_limited')) AS failures,
    COALESCE(SUM(cost_usd) FILTER (WHERE outcome IN ('success', 'not_found')), 0) AS spend_usd
FROM api_call_log
WHERE called_at >= :start AND called_at < :end
