-- Referrals to send now, with exactly what the payload needs and the triage inputs.
-- Parameters: batch (row limit), launch_at / oldest_at (the referral window). Prior calls: same victim pseudonym, within 365 days before.
SELECT r.referral_id, r.attempts, c.agency_code, c.incident_id, c.call_received_at,
       c.call_type, c.children_present, c.weapon, c.injury_level, c.record_version,
       c.consent_recorded_at, c.consent_officer_id,
       vc.given_name, vc.family_name, vc.phone, vc.email, vc.preferred_contact,
       vc.safe_contact_notes, vc.language,
       vc.incident_id IS NOT NULL AS has_contact,
       core.call_severity(c.weapon, c.injury_level) AS severity,
       coalesce(p.prior_180d, 0) AS prior_180d, coalesce(p.prior_365d, 0) AS prior_365d,
       p.max_prior_severity
FROM routing.referral r
JOIN core.eligible_case e ON e.agency_code = r.agency_code AND e.incident_id = r.incident_id
JOIN core.call c ON c.agency_code = r.agency_code AND c.incident_id = r.incident_id
LEFT JOIN contact.victim_contact vc
       ON vc.agency_code = r.agency_code AND vc.incident_id = r.incident_id
LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE pc.call_received_at >= c.call_received_at - interval '180 days')
               AS prior_180d,
           count(*) AS prior_365d,
           max(core.call_severity(pc.weapon, pc.injury_level)) AS max_prior_severity
    FROM core.call pc
    WHERE pc.victim_key = c.victim_key
      AND pc.call_received_at < c.call_received_at
      AND pc.call_received_at >= c.call_received_at - interval '365 days'
) p ON true
WHERE r.status = 'pending' AND r.next_attempt_at <= now()
  AND r.withdrawal_requested_at IS NULL
  -- the referral window, checked again at send time (plan may have run earlier)
  AND c.call_received_at >= %(launch_at)s AND c.call_received_at >= %(oldest_at)s
ORDER BY r.planned_at, r.referral_id
LIMIT %(batch)s
