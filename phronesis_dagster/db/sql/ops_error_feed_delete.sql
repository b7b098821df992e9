-- enrichment_error_feed is rebuilt whole on every materialization.
DELETE FROM enrichment_error_feed
