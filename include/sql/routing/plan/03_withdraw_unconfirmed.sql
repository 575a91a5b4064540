-- Sent at least once but never confirmed (pending after a lost answer, parked on 409/422),
-- and no longer sendable: the server MAY hold the contact details. Replaying the send to find
-- out would disclose a case that is no longer eligible if the server does not hold it, so
-- routing asks for withdrawal instead: 200 = it held them and deletes them, 404 = it never
-- had them. Either answer is recorded on the audit log. Final: never re-sent.
-- Parameters: launch_at, oldest_at.
UPDATE routing.referral r
SET withdrawal_requested_at = now(),
    status_reason = CASE
        WHEN e.incident_id IS NOT NULL THEN 'outside the referral window after an unconfirmed send'
        WHEN c.clearance_status = 'cleared_by_charge' THEN 'charged after an unconfirmed send'
        ELSE 'consent no longer given after an unconfirmed send' END
FROM core.call c
LEFT JOIN core.eligible_case e USING (agency_code, incident_id)
WHERE r.status IN ('pending', 'parked') AND r.attempts > 0
  AND r.withdrawal_requested_at IS NULL
  AND c.agency_code = r.agency_code AND c.incident_id = r.incident_id
  AND (e.incident_id IS NULL
       OR NOT (e.call_received_at >= %(launch_at)s AND e.call_received_at >= %(oldest_at)s))
