UPDATE t_logrank SET p_value = %(p_value)s
WHERE agency_code = %(agency_code)s AND cohort = %(cohort)s
