-- One rebuild at a time (two concurrent DELETE + INSERT would both insert); lock id registry:
-- upstream.warehouse.locks.
SELECT pg_advisory_lock(%(lock_id)s)
