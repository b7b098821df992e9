-- Row-level security travels with the parent only for queries through `activity_log`; a
-- partition queried directly would bypass it, so each partition we create gets the policy too
-- (the web app's setting, cast to UUID as its own policies do; NULLIF so an empty setting
-- matches nothing instead of failing), and the web app's per-partition indexes.
ALTER TABLE {name} ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON {name}
    USING (tenant_id = NULLIF(current_setting('app.current_tenant_id', true), '')::UUID)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.current_tenant_id', true), '')::UUID);
CREATE INDEX IF NOT EXISTS idx_{name}_created_at ON {name} USING BRIN (created_at);
CREATE INDEX IF NOT EXISTS idx_{name}_tenant_action ON {name} (tenant_id, action_type, created_at DESC);
CREATE INDEX IF NOT EXISTS idx_{name}_user ON {name} (user_id, created_at DESC);
CREATE INDEX IF NOT EXISTS idx_{name}_metadata ON {name} USING GIN (metadata);
