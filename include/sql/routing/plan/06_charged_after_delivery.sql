-- Delivered, then charged: the referral stands (the person consented); mark it.
UPDATE routing.referral r
SET charged_after_delivery = true
FROM core.call c
WHERE r.status IN ('delivered', 'withdrawn') AND r.delivered_at IS NOT NULL
  AND NOT r.charged_after_delivery
  AND c.agency_code = r.agency_code AND c.incident_id = r.incident_id
  AND c.clearance_status = 'cleared_by_charge'
