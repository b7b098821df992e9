-- A failed or canceled run's prospects: `failed`, and every source the run had left `pending`
-- on them becomes the run's failure record (the web app's prospect page would otherwise show
-- its spinner forever). Other records, legacy strings included, are kept as they are; a column
-- that is not an object is left alone.
UPDATE prospects p
SET enrichment_status = 'failed',
    updated_at = :now,
    enrichment_source_status = CASE
        WHEN jsonb_typeof(p.enrichment_source_status) = 'object' THEN COALESCE(
            (
                SELECT jsonb_object_agg(
                    e.key,
                    CASE
                        WHEN jsonb_typeof(e.value) = 'object' AND e.value ->> 'status' = 'pending'
                            THEN CAST(:record AS jsonb)
                        ELSE e.value
                    END
                )
                FROM jsonb_each(p.enrichment_source_status) e
            ),
            '{}'::jsonb
        )
        ELSE p.enrichment_source_status
    END
WHERE p.id = ANY(:ids)
  AND p.enrichment_status = 'in_progress'
