-- The shared client-side rate limit of the provider calls (resources/rate_limit.py): one row per
-- slot granted, per bucket (a provider, or one of its endpoint groups), in a sliding window.
-- Idempotent.

CREATE TABLE IF NOT EXISTS provider_rate_limit_grants (
    bucket TEXT NOT NULL,
    granted_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX IF NOT EXISTS ix_provider_rate_limit_grants_bucket_time
    ON provider_rate_limit_grants (bucket, granted_at);

-- Take a slot of `p_bucket` (at most `p_limit` grants in any `p_window_ms`), in one round trip:
-- returns 0 when granted (and records the grant), else the milliseconds until the oldest grant
-- that keeps the window full leaves it (a hint: the caller asks again then). Call it in
-- autocommit: the advisory lock is held until the statement's own transaction ends, after the
-- grant is committed, so every process and machine sees it before the next asker decides.
CREATE OR REPLACE FUNCTION phronesis_rate_limit_take(
    p_bucket TEXT,
    p_limit INTEGER,
    p_window_ms INTEGER
) RETURNS DOUBLE PRECISION
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
        RAISE EXCEPTION 'phronesis_rate_limit_take: a bucket, a limit >= 1 and a window >= 1 ms '
            'are needed (got %, %, %)', p_bucket, p_limit, p_window_ms
            USING ERRCODE = '22023';
    END IF;
    v_window := make_interval(secs => p_window_ms / 1000.0);
    -- One asker per bucket at a time, waiting (not failing) for the one before: each holds it
    -- for a few statements on a handful of rows.
    PERFORM pg_advisory_xact_lock(hashtextextended('phronesis_rate_limit:' || p_bucket, 0));
    -- Read after the lock: the grant is stamped when it is decided, not when it was asked.
    v_now := clock_timestamp();
    -- Grants that left the window are of no use to anyone: the table stays a window long.
    DELETE FROM provider_rate_limit_grants
        WHERE bucket = p_bucket AND granted_at <= v_now - v_window;
    SELECT count(*) INTO v_count FROM provider_rate_limit_grants WHERE bucket = p_bucket;
    IF v_count < p_limit THEN
        INSERT INTO provider_rate_limit_grants (bucket, granted_at) VALUES (p_bucket, v_now);
        RETURN 0;
    END IF;
    SELECT granted_at INTO v_frees FROM provider_rate_limit_grants
        WHERE bucket = p_bucket
        ORDER BY granted_at
        OFFSET v_count - p_limit
        LIMIT 1;
    RETURN GREATEST(extract(epoch FROM (v_frees + v_window - v_now)) * 1000, 1);
END
$$;

-- pyrate-limiter, the limiter before this one, made a table per bucket at first use
-- (`ratelimit___provider_<bucket>`, in the schema the connection used: one on this search path,
-- as this migration's); nothing reads them now. Other schemas are not ours to clean.
DO $$
DECLARE
    v_table RECORD;
BEGIN
    FOR v_table IN
        SELECT schemaname, tablename FROM pg_tables
        WHERE tablename LIKE 'ratelimit\_\_\_provider\_%'
            AND schemaname = ANY (current_schemas(false))
    LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I.%I', v_table.schemaname, v_table.tablename);
    END LOOP;
END
$$;
