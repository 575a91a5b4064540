SELECT status, count(*) AS n FROM routing.referral GROUP BY status ORDER BY status
