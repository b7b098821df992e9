-- Migration 0005_request_enrichment: the web app's one-call "Enrich" (0004's
-- phronesis_request_enrichment) answers every request it can at once. 0004 queued anything it
-- could not answer: an unknown prospect, another tenant's, or a NULL argument became a pending
-- row (or a bare NOT NULL violation) that the sensor rejected seconds later. This version raises
-- a named error and writes nothing for those, so the "Enrich" click learns at once. Same
-- signature, defaults and return type as 0004 (CREATE OR REPLACE keeps grants); idempotent.
--
-- What it answers, in order:
-- - a NULL prospect, tenant or force, a NULL or negative staleness: error 22004 / 22023;
-- - app.current_tenant_id set (the web app's per-request setting) to another tenant than
--   p_tenant_id: error 42501, so even a BYPASSRLS role (Supabase's service role) that sets it
--   cannot ask on another tenant's behalf;
-- - no prospect p_prospect_id of tenant p_tenant_id visible to the caller: error P0002
--   (no_data_found). SECURITY INVOKER (the default): the caller's row-level security applies,
--   so a web-app role does not see another tenant's prospect, and gets the same error as for
--   an id that names no row: the message never says that the prospect exists elsewhere;
-- - enriched successfully inside the staleness window (the request sensor's rule in
--   enrichment/requests.py plan_tick: complete, last_enriched_at within the window, no force,
--   no batch of the prospect queued or running, a name and a company): a request row closed
--   `done` at once, with the sensor's reason word for word, and no run;
-- - anything else: a `pending` row for the sensor, which validates, coalesces and batches it.
--
-- p_staleness defaults to the sensor's default window (DEFAULT_STALENESS in
-- enrichment/requests.py; tests/db/test_request_enrichment.py fails when the two differ). A
-- deployment that sets PHRONESIS_ENRICHMENT_STALENESS_DAYS passes the same window here.
CREATE OR REPLACE FUNCTION phronesis_request_enrichment(
  p_prospect_id UUID,
  p_tenant_id UUID,
  p_requested_by UUID DEFAULT NULL,
  p_force BOOLEAN DEFAULT false,
  p_staleness INTERVAL DEFAULT INTERVAL '7 days'
) RETURNS enrichment_requests
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  -- NULLIF as in our policies: an unset setting reads as '' once a session has touched it.
  session_tenant UUID := NULLIF(current_setting('app.current_tenant_id', true), '')::UUID;
  prospect_status TEXT;
  enriched_at TIMESTAMPTZ;
  has_name BOOLEAN;
  busy BOOLEAN;
  result enrichment_requests;
BEGIN
  IF p_prospect_id IS NULL OR p_tenant_id IS NULL OR p_force IS NULL THEN
    RAISE EXCEPTION 'phronesis_request_enrichment: prospect id, tenant id and force must not be NULL'
      USING ERRCODE = 'null_value_not_allowed';
  END IF;
  IF p_staleness IS NULL OR p_staleness < INTERVAL '0' THEN
    RAISE EXCEPTION 'phronesis_request_enrichment: staleness must be an interval >= 0, got %',
      coalesce(p_staleness::text, 'NULL')
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF session_tenant IS NOT NULL AND session_tenant <> p_tenant_id THEN
    RAISE EXCEPTION 'phronesis_request_enrichment: tenant % is not this session''s tenant '
      '(app.current_tenant_id)', p_tenant_id
      USING ERRCODE = 'insufficient_privilege';
  END IF;

  SELECT
    p.enrichment_status,
    p.last_enriched_at,
    btrim(coalesce(p.name, '')) <> '' AND btrim(coalesce(p.company, '')) <> ''
  INTO prospect_status, enriched_at, has_name
  FROM prospects p
  WHERE p.id = p_prospect_id AND p.tenant_id = p_tenant_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'phronesis_request_enrichment: prospect % not found in tenant %',
      p_prospect_id, p_tenant_id
      USING ERRCODE = 'no_data_found',
            HINT = 'Pass the tenant the prospect belongs to, with app.current_tenant_id set to it.';
  END IF;

  busy := EXISTS (
    SELECT 1 FROM enrichment_requests a
    WHERE a.prospect_id = p_prospect_id AND a.status IN ('queued', 'running')
  );
  IF NOT p_force AND NOT busy AND has_name
     AND prospect_status = 'complete' AND enriched_at >= now() - p_staleness THEN
    INSERT INTO enrichment_requests (tenant_id, prospect_id, requested_by, force, status, reason)
    VALUES (
      p_tenant_id, p_prospect_id, p_requested_by, false, 'done',
      -- The sensor's text (plan_tick): isoformat(timespec='seconds') and the days as {:g}.
      format(
        'already enriched at %s, within the %s-day staleness window; request with force to '
        're-enrich',
        to_char(enriched_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"'),
        trim_scale(round(extract(epoch FROM p_staleness) / 86400, 6))
      )
    )
    RETURNING * INTO result;
  ELSE
    INSERT INTO enrichment_requests (tenant_id, prospect_id, requested_by, force, status)
    VALUES (p_tenant_id, p_prospect_id, p_requested_by, p_force, 'pending')
    RETURNING * INTO result;
  END IF;
  RETURN result;
END $$;
