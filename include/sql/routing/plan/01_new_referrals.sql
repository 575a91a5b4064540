-- Every eligible case has a referral (stable id: keyed hash of agency + incident). Cases
-- outside the referral window are recorded as 'expired' and never sent.
-- Parameters: inner_key, outer_key (HMAC pads), launch_at, oldest_at (the window).
INSERT INTO routing.referral (referral_id, agency_code, incident_id, status, status_reason)
SELECT 'r_' || left(core.hmac_sha256_hex(%(inner_key)s, %(outer_key)s,
                    'referral:' || e.agency_code || ':' || e.incident_id), 32),
       e.agency_code, e.incident_id,
       CASE WHEN e.call_received_at >= %(launch_at)s AND e.call_received_at >= %(oldest_at)s
            THEN 'pending' ELSE 'expired' END,
       CASE WHEN e.call_received_at >= %(launch_at)s AND e.call_received_at >= %(oldest_at)s
            THEN NULL ELSE 'outside the referral window' END
FROM core.eligible_case e
ON CONFLICT (agency_code, incident_id) DO NOTHING
