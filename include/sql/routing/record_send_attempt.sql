-- Before the bytes leave: the attempt is on the audit log and counted, so a crash after the
-- send still shows that the server may hold the referral (attempts > 0).
WITH logged AS (
    INSERT INTO routing.disclosure_audit (referral_id, action, fields_disclosed, recipient,
                                          legal_basis, consent_recorded_at,
                                          consent_officer_id, outcome)
    VALUES (%(referral_id)s, 'disclosure_attempt', %(fields)s, %(recipient)s, 'consent',
            %(consent_recorded_at)s, %(consent_officer_id)s, 'sending')
    RETURNING referral_id
)
UPDATE routing.referral r SET attempts = r.attempts + 1
FROM logged WHERE r.referral_id = logged.referral_id
