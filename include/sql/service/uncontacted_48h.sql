-- Open referrals without a contact 48 hours after delivery, per agency: counts only.
-- Open: still 'delivered' (not withdrawn or cancelled) and no outcome reported yet (contacted,
-- engaged, declined, unreachable, withdrawn, closed). Parameter: %(now)s (the caller's clock:
-- this is an operational check, not part of the deterministic outcome build).
SELECT r.agency_code, count(*)::int AS uncontacted
FROM routing.referral AS r
WHERE r.status = 'delivered'
  AND r.delivered_at <= %(now)s::timestamptz - interval '48 hours'
  AND NOT EXISTS (
      SELECT 1
      FROM routing.referral_event AS e
      WHERE e.referral_id = r.referral_id
        AND e.event_type IN ('contacted', 'engaged', 'declined', 'unreachable', 'withdrawn',
                             'closed'))
GROUP BY r.agency_code
ORDER BY r.agency_code
