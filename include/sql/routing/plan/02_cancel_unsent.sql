-- Never sent (attempts = 0) and no longer sendable: cancelled when no longer eligible,
-- expired when it fell out of the referral window. Nothing reached the server: no call needed.
-- Parameters: launch_at, oldest_at.
UPDATE routing.referral r
SET status = CASE WHEN e.incident_id IS NULL THEN 'cancelled' ELSE 'expired' END,
    next_attempt_at = now(),
    status_reason = CASE WHEN e.incident_id IS NOT NULL THEN 'outside the referral window'
                         WHEN c.clearance_status = 'cleared_by_charge'
                         THEN 'charged before delivery'
                         ELSE 'consent no longer given before delivery' END
FROM core.call c
LEFT JOIN core.eligible_case e USING (agency_code, incident_id)
WHERE r.status IN ('pending', 'parked') AND r.attempts = 0
  AND c.agency_code = r.agency_code AND c.incident_id = r.incident_id
  AND (e.incident_id IS NULL
       OR NOT (e.call_received_at >= %(launch_at)s AND e.call_received_at >= %(oldest_at)s))
