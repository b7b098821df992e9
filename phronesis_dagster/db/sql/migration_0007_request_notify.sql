-- A rep's click wakes the interactive request sensor (sensors/enrichment.py) at once instead of
-- at its next tick: an INSERT into enrichment_requests with a request without a job (the
-- interactive lane) sends NOTIFY phronesis_enrichment_requests when it commits. Once per
-- statement, not per row: a bulk enqueue of 50,000 requests (all with a job) sends nothing.
-- Idempotent.
CREATE OR REPLACE FUNCTION phronesis_notify_enrichment_requests() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM inserted_requests WHERE job_id IS NULL) THEN
        PERFORM pg_notify('phronesis_enrichment_requests', '');
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS enrichment_requests_notify ON enrichment_requests;
CREATE TRIGGER enrichment_requests_notify
    AFTER INSERT ON enrichment_requests
    REFERENCING NEW TABLE AS inserted_requests
    FOR EACH STATEMENT
    EXECUTE FUNCTION phronesis_notify_enrichment_requests();
