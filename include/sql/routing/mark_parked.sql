-- 409/422 (or no contact details here): the data team looks, then re-tries from the UI.
UPDATE routing.referral SET status = 'parked', status_reason = %(reason)s
WHERE referral_id = %(referral_id)s
