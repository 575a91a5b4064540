-- Cancelled (never sent) but eligible and inside the window again (e.g. a correction undid
-- the charge): pending again. A referral whose withdrawal was ever requested stays final.
-- Parameters: launch_at, oldest_at.
UPDATE routing.referral r
SET status = 'pending', status_reason = NULL, attempts = 0, next_attempt_at = now()
FROM core.eligible_case e
WHERE r.status IN ('cancelled', 'expired') AND r.withdrawal_requested_at IS NULL
  AND e.agency_code = r.agency_code AND e.incident_id = r.incident_id
  AND e.call_received_at >= %(launch_at)s AND e.call_received_at >= %(oldest_at)s
