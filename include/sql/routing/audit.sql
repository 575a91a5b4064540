-- One row on the append-only audit log. Field NAMES only, never values.
INSERT INTO routing.disclosure_audit (referral_id, action, fields_disclosed, recipient,
                                      legal_basis, consent_recorded_at, consent_officer_id,
                                      outcome)
VALUES (%(referral_id)s, %(action)s, %(fields)s, %(recipient)s, 'consent',
        %(consent_recorded_at)s, %(consent_officer_id)s, %(outcome)s)
