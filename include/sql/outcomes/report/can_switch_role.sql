-- May this login switch to the role (SET LOCAL ROLE)?
SELECT pg_has_role(current_user, oid, 'MEMBER') AS m
FROM pg_roles
WHERE rolname = %(role)s
