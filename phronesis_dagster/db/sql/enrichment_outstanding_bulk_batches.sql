-- Bulk batches (requests of a job) queued or running, per tenant: a tenant's next bulk batch
-- queues behind these, and its run priority says so (see enrichment/requests.py).
SELECT tenant_id, COUNT(DISTINCT batch_key) AS batches
FROM enrichment_requests
WHERE status IN ('queued', 'running')
  AND job_id IS NOT NULL
  AND batch_key IS NOT NULL
GROUP BY tenant_id
