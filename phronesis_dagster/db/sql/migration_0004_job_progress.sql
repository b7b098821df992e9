-- Migration 0004_job_progress: live progress of bulk jobs, and the web app's one-call request
-- that answers a fresh prospect at once. Additive and idempotent (IF NOT EXISTS, a guarded
-- constraint, CREATE OR REPLACE FUNCTION): applying it twice changes nothing.

-- enrichment_jobs moves while a batch runs (written by the run every 25 prospects or 2 s, and
-- by every refresh of the job; see enrichment/progress.py). The web app's inserts name none of
-- these columns: each has a default or is NULL until the pipeline writes it.
ALTER TABLE enrichment_jobs ADD COLUMN IF NOT EXISTS phase TEXT NOT NULL DEFAULT 'queued';
ALTER TABLE enrichment_jobs ADD COLUMN IF NOT EXISTS eta_seconds INTEGER;
ALTER TABLE enrichment_jobs ADD COLUMN IF NOT EXISTS highlights JSONB NOT NULL DEFAULT '[]'::jsonb;
ALTER TABLE enrichment_jobs ADD COLUMN IF NOT EXISTS progress_at TIMESTAMPTZ;
-- When the job's first batch started: the ETA divides the time since by the prospects done.
ALTER TABLE enrichment_jobs ADD COLUMN IF NOT EXISTS started_at TIMESTAMPTZ;
DO $$
BEGIN
  IF NOT EXISTS (
    SELECT 1 FROM pg_constraint
    WHERE conname = 'ck_enrichment_jobs_phase' AND conrelid = 'enrichment_jobs'::regclass
  ) THEN
    ALTER TABLE enrichment_jobs ADD CONSTRAINT ck_enrichment_jobs_phase
      CHECK (phase IN ('queued', 'enriching', 'summarizing', 'done'));
  END IF;
END $$;

-- A job's requests are read on every progress write (counts derived from them): by job_id.
CREATE INDEX IF NOT EXISTS ix_enrichment_requests_job_id ON enrichment_requests (job_id);

-- The web app's "Enrich" button in one call. A prospect enriched successfully inside the
-- staleness window (the request sensor's rule: complete, last_enriched_at within the window, no
-- force, not being enriched right now) gets its request closed `done` at once, with the
-- sensor's reason, and no run; anything else is inserted `pending` for the sensor, which
-- validates it as before. SECURITY INVOKER (the default): the caller's row-level security
-- applies, so a web-app role sees and asks only for its own tenant's prospects (a prospect it
-- cannot see goes in pending and the sensor rejects it with the reason). p_staleness must match
-- the sensor's window (PHRONESIS_ENRICHMENT_STALENESS_DAYS, default 7 days).
CREATE OR REPLACE FUNCTION phronesis_request_enrichment(
  p_prospect_id UUID,
  p_tenant_id UUID,
  p_requested_by UUID DEFAULT NULL,
  p_force BOOLEAN DEFAULT false,
  p_staleness INTERVAL DEFAULT INTERVAL '7 days'
) RETURNS enrichment_requests
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  enriched_at TIMESTAMPTZ;
  result enrichment_requests;
BEGIN
  IF NOT p_force THEN
    SELECT p.last_enriched_at INTO enriched_at
    FROM prospects p
    WHERE p.id = p_prospect_id
      AND p.tenant_id = p_tenant_id
      AND p.enrichment_status = 'complete'
      AND p.last_enriched_at >= now() - p_staleness
      AND btrim(coalesce(p.name, '')) <> ''
      AND btrim(coalesce(p.company, '')) <> ''
      AND NOT EXISTS (
        SELECT 1 FROM enrichment_requests a
        WHERE a.prospect_id = p.id AND a.status IN ('queued', 'running')
      );
  END IF;
  IF enriched_at IS NOT NULL THEN
    INSERT INTO enrichment_requests (tenant_id, prospect_id, requested_by, force, status, reason)
    VALUES (
      p_tenant_id, p_prospect_id, p_requested_by, false, 'done',
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
