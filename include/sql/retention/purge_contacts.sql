-- Contact details the referral no longer needs, deleted in one statement. The purge of an
-- incident that has a referral goes on the append-only disclosure audit ('contact_purged',
-- outcome = why); the caller logs the counts on ops.retention_log.
-- Parameters: now (the clock), older_than (now - retention period), older_outcome (its text),
-- recipient.
--
-- Why, first match wins:
--   withdrawn  the referral was withdrawn (or its withdrawal requested) or the outreach side
--              reported 'withdrawn': the details must go at once
--   closed     the outreach side closed the case: the referral needs nothing more
--   older      stored longer ago than the retention period, or referred longer ago than it
--              (a correction re-stores the details with a fresh stored_at; it must not make
--              the retention period start again), whatever the referral's state, also when
--              the case never got a referral
WITH doomed AS (
    SELECT vc.agency_code, vc.incident_id, r.referral_id,
           c.consent_recorded_at, c.consent_officer_id,
           CASE
             WHEN r.status = 'withdrawn' OR r.withdrawal_requested_at IS NOT NULL
                  OR EXISTS (SELECT 1 FROM routing.referral_event ev
                             WHERE ev.referral_id = r.referral_id
                               AND ev.event_type = 'withdrawn' AND ev.occurred_at <= %(now)s)
               THEN 'withdrawn'
             WHEN EXISTS (SELECT 1 FROM routing.referral_event ev
                          WHERE ev.referral_id = r.referral_id
                            AND ev.event_type = 'closed' AND ev.occurred_at <= %(now)s)
               THEN 'closed'
             WHEN least(vc.stored_at, r.planned_at) < %(older_than)s
               THEN %(older_outcome)s::text
           END AS reason
    FROM contact.victim_contact vc
    LEFT JOIN routing.referral r
           ON r.agency_code = vc.agency_code AND r.incident_id = vc.incident_id
    LEFT JOIN core.call c
           ON c.agency_code = vc.agency_code AND c.incident_id = vc.incident_id
),
purged AS (
    DELETE FROM contact.victim_contact vc
    USING doomed d
    WHERE d.reason IS NOT NULL
      AND vc.agency_code = d.agency_code AND vc.incident_id = d.incident_id
    RETURNING d.referral_id, d.reason, d.consent_recorded_at, d.consent_officer_id
),
audited AS (
    INSERT INTO routing.disclosure_audit (referral_id, action, fields_disclosed, recipient,
                                          legal_basis, consent_recorded_at, consent_officer_id,
                                          outcome)
    SELECT referral_id, 'contact_purged', '{}', %(recipient)s, 'retention policy',
           consent_recorded_at, consent_officer_id, reason
    FROM purged
    WHERE referral_id IS NOT NULL
    ORDER BY referral_id
    RETURNING 1
)
SELECT reason, (referral_id IS NOT NULL) AS referred, count(*)::int AS n,
       (SELECT count(*) FROM audited)::int AS audited
FROM purged
GROUP BY 1, 2
ORDER BY 1, 2
