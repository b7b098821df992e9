-- Row-level security travels with the parent only for queries through `activity_log`; a
-- partition queried directly would bypass it, so each partition gets the same policy.
ALTER TABLE {name} ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON {name}
    USING (tenant_id = NULLIF(current_setting('app.current_tenant_id', true), '')::bigint)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.current_tenant_id', true), '')::bigint);
