-- Lock the given bulk jobs' rows (in id order: two writers never wait on each other in a
-- cycle) before their progress is recomputed. In READ COMMITTED the recomputing UPDATE that
-- follows is a new statement with a new snapshot, so it sees every batch's results committed
-- while it waited here; an UPDATE that waited for the lock itself would still read its old
-- snapshot and could write a stale count over a newer one.
SELECT id FROM enrichment_jobs WHERE id = ANY(:job_ids) ORDER BY id FOR UPDATE
