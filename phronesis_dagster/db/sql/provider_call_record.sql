-- One provider call attempt, recorded in ONE statement (one round trip, one transaction):
-- (:logged false: only the breaker count, for CircuitBreaker.record_success/record_failure.)
--   1. its counts added to the (provider, UTC day, origin) row of api_usage (atomic upsert;
--      a skipped call, outcome circuit_open, is not a call and is only logged);
--   2. one api_call_log row;
--   3. when :counted, its outcome counted by the provider's shared circuit breaker:
--      - a normal call (NOT :probe) bumps the closed breaker's fixed window and opens the circuit
--        in the same UPDATE when the window's failure rate reaches the threshold;
--      - the half-open probe (:probe) closes the circuit (fresh window) or opens it again.
-- Data-modifying CTEs always run to completion whether or not the final SELECT reads them, and
-- a row is updated at most once: the two breaker CTEs exclude each other through :probe.
-- The final SELECT returns the breaker row as this statement left it (state, whether THIS call
-- opened the circuit, the window counts), so the caller's admission cache is refreshed for free.
-- Expressions repeat rather than read a subquery: the UPDATE must compute from the row version
-- it locks (READ COMMITTED re-evaluates it), not from a snapshot another call has since bumped.
WITH usage_count AS (
    INSERT INTO api_usage AS u (
        provider, date, origin, success_count, failure_count, rate_limited_count, cost_usd
    )
    SELECT :provider, :day, :origin, :success, :failure, :limited, :usage_cost
    WHERE :logged AND :outcome <> 'circuit_open'
    ON CONFLICT (provider, date, origin) DO UPDATE SET
        success_count = u.success_count + excluded.success_count,
        failure_count = u.failure_count + excluded.failure_count,
        rate_limited_count = u.rate_limited_count + excluded.rate_limited_count,
        cost_usd = u.cost_usd + excluded.cost_usd,
        updated_at = now()
),
call_log AS (
    INSERT INTO api_call_log (
        provider, endpoint, outcome, http_status, latency_ms, cost_usd, run_id, called_at
    )
    SELECT
        :provider, :endpoint, :outcome, CAST(:http_status AS integer),
        CAST(:latency_ms AS double precision), CAST(:cost_usd AS numeric), CAST(:run_id AS text),
        :now
    WHERE :logged
),
window_count AS (
    UPDATE provider_circuit_state AS b SET
        window_started_at = CASE
            WHEN b.state <> 'closed' THEN b.window_started_at
            WHEN b.window_started_at IS NULL OR b.window_started_at < :window_start THEN :now
            ELSE b.window_started_at END,
        window_calls = CASE
            WHEN b.state <> 'closed' THEN b.window_calls
            WHEN b.window_started_at IS NULL OR b.window_started_at < :window_start THEN 1
            ELSE b.window_calls + 1 END,
        window_failures = CASE
            WHEN b.state <> 'closed' THEN b.window_failures
            WHEN b.window_started_at IS NULL OR b.window_started_at < :window_start THEN :fail
            ELSE b.window_failures + :fail END,
        -- The reason of a hold (SEC's block, spent credits) is what skipped calls report: an
        -- in-flight call's own error does not overwrite it.
        last_error = CASE
            WHEN b.open_until IS NOT NULL THEN b.last_error
            ELSE COALESCE(CAST(:error AS text), b.last_error) END,
        state = CASE WHEN (
            b.state = 'closed' AND :fail = 1
            AND (CASE WHEN b.window_started_at IS NULL OR b.window_started_at < :window_start
                      THEN 1 ELSE b.window_calls + 1 END) >= :min_calls
            AND (CASE WHEN b.window_started_at IS NULL OR b.window_started_at < :window_start
                      THEN :fail ELSE b.window_failures + :fail END)
                >= (CASE WHEN b.window_started_at IS NULL OR b.window_started_at < :window_start
                         THEN 1 ELSE b.window_calls + 1 END) * :threshold
        ) THEN 'open' ELSE b.state END,
        opened_at = CASE WHEN (
            b.state = 'closed' AND :fail = 1
            AND (CASE WHEN b.window_started_at IS NULL OR b.window_started_at < :window_start
                      THEN 1 ELSE b.window_calls + 1 END) >= :min_calls
            AND (CASE WHEN b.window_started_at IS NULL OR b.window_started_at < :window_start
                      THEN :fail ELSE b.window_failures + :fail END)
                >= (CASE WHEN b.window_started_at IS NULL OR b.window_started_at < :window_start
                         THEN 1 ELSE b.window_calls + 1 END) * :threshold
        ) THEN :now ELSE b.opened_at END,
        updated_at = :now
    WHERE b.provider = :provider AND :counted AND NOT :probe
    RETURNING b.state, b.state = 'open' AND b.opened_at = :now AS tripped,
        b.window_failures, b.window_calls
),
probe_finish AS (
    UPDATE provider_circuit_state AS b SET
        state = CASE WHEN :fail = 1 THEN 'open' ELSE 'closed' END,
        opened_at = CASE WHEN :fail = 1 THEN :now END,
        probe_started_at = NULL,
        open_until = NULL,
        last_error = CASE WHEN :fail = 1 THEN CAST(:error AS text) ELSE b.last_error END,
        window_started_at = CASE WHEN :fail = 1 THEN b.window_started_at ELSE :now END,
        window_calls = CASE WHEN :fail = 1 THEN b.window_calls ELSE 0 END,
        window_failures = CASE WHEN :fail = 1 THEN b.window_failures ELSE 0 END,
        updated_at = :now
    WHERE b.provider = :provider AND b.state = 'half_open' AND :counted AND :probe
    RETURNING b.state, false AS tripped, b.window_failures, b.window_calls
)
SELECT state, tripped, window_failures, window_calls FROM window_count
UNION ALL
SELECT state, tripped, window_failures, window_calls FROM probe_finish
