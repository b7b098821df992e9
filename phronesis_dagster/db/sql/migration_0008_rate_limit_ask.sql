-- The shared rate limit's ask, answered with the next wait too (resources/rate_limit.py).
-- Idempotent.
--
-- `phronesis_rate_limit_ask(bucket, limit, window_ms)` decides a slot as
-- `phronesis_rate_limit_take` (migration 0006) does - under the bucket's advisory lock, drop
-- the grants that left the window, count the rest, record a grant if there is room - and also
-- answers, with a grant, how long until the NEXT slot frees when this grant filled the window.
-- The asker's process then lets its next waiting thread sleep until then instead of asking
-- only to be refused: in the 2,000-prospect benchmark at published limits a process asked
-- about twice per grant (a grant, then a refusal that carried the wait), 1.75 asks per grant
-- over all providers (pg_stat_user_functions, 2026-12-07).
--
-- granted = true: the slot is recorded; wait_ms = milliseconds until another slot frees (0:
-- there is room now). granted = false: nothing recorded; wait_ms = milliseconds until the
-- oldest grant that keeps the window full leaves it. 0006's function stays, for processes of
-- the release before (a rolling deploy), and is redefined below as this one's answer in its
-- own terms, so one body decides every grant.

CREATE OR REPLACE FUNCTION phronesis_rate_limit_ask(
    p_bucket TEXT,
    p_limit INTEGER,
    p_window_ms INTEGER,
    OUT granted BOOLEAN,
    OUT wait_ms DOUBLE PRECISION
)
LANGUAGE plpgsql
AS $$
DECLARE
    v_window INTERVAL;
    v_now TIMESTAMPTZ;
    v_count INTEGER;
    v_frees TIMESTAMPTZ;
BEGIN
    IF p_bucket IS NULL OR p_limit IS NULL OR p_limit < 1 OR p_window_ms IS NULL
            OR p_window_ms < 1 THEN
        RAISE EXCEPTION 'phronesis_rate_limit_ask: a bucket, a limit >= 1 and a window >= 1 ms '
            'are needed (got %, %, %)', p_bucket, p_limit, p_window_ms
            USING ERRCODE = '22023';
    END IF;
    v_window := make_interval(secs => p_window_ms / 1000.0);
    PERFORM pg_advisory_xact_lock(hashtextextended('phronesis_rate_limit:' || p_bucket, 0));
    v_now := clock_timestamp();
    DELETE FROM provider_rate_limit_grants
        WHERE bucket = p_bucket AND granted_at <= v_now - v_window;
    SELECT count(*) INTO v_count FROM provider_rate_limit_grants WHERE bucket = p_bucket;
    granted := v_count < p_limit;
    IF granted THEN
        INSERT INTO provider_rate_limit_grants (bucket, granted_at) VALUES (p_bucket, v_now);
        v_count := v_count + 1;
        IF v_count < p_limit THEN
            wait_ms := 0;
            RETURN;
        END IF;
    END IF;
    -- The window is full: the grant `p_limit` places back from the newest must leave it.
    SELECT granted_at INTO v_frees FROM provider_rate_limit_grants
        WHERE bucket = p_bucket
        ORDER BY granted_at
        OFFSET v_count - p_limit
        LIMIT 1;
    wait_ms := GREATEST(extract(epoch FROM (v_frees + v_window - v_now)) * 1000, 1);
END
$$;

-- 0006's contract: 0 = granted, else the milliseconds until a slot frees.
CREATE OR REPLACE FUNCTION phronesis_rate_limit_take(
    p_bucket TEXT,
    p_limit INTEGER,
    p_window_ms INTEGER
) RETURNS DOUBLE PRECISION
LANGUAGE sql
AS $$
    SELECT CASE WHEN granted THEN 0 ELSE wait_ms END
    FROM phronesis_rate_limit_ask(p_bucket, p_limit, p_window_ms)
$$;
