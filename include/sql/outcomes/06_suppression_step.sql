-- One round of complementary suppression. Placeholder: {round} (1, 2, ...).
-- Only groups holding a cell hidden in the previous round can have changed; in each of them
-- that has exactly one hidden cell, hide a visible cell: a total over all months first (the
-- months are what the board reads; a month small enough to hide, such as a partial first
-- month, then costs the total, not another month), else the smallest (non-zero first; ties:
-- measure order, then period, zone, agency). A group reaching exactly one hidden cell in round
-- r is fixed in round r + 1, so when a round hides nothing, no group has exactly one.
-- (A group of one cell relates nothing and can never be picked from: it has no other cell.)
WITH touched AS (
    SELECT DISTINCT m.grp
    FROM sup_cell AS c
    JOIN sup_member AS m USING (cell_id)
    WHERE c.sround = {round} - 1
), grp AS (
    SELECT t.grp
    FROM touched AS t
    JOIN sup_member AS m USING (grp)
    JOIN sup_cell AS c USING (cell_id)
    GROUP BY t.grp
    HAVING count(*) FILTER (WHERE c.sround IS NOT NULL) = 1
), pick AS (
    SELECT DISTINCT ON (g.grp) g.grp, c.cell_id
    FROM grp AS g
    JOIN sup_member AS m USING (grp)
    JOIN sup_cell AS c USING (cell_id)
    WHERE c.sround IS NULL
    ORDER BY g.grp, (c.grain <> 'all_months'), (c.value = 0), c.value, c.ord, c.period, c.patrol_zone, c.agency_code
)
UPDATE sup_cell AS c
SET sround = {round}
FROM pick
WHERE c.cell_id = pick.cell_id AND c.sround IS NULL
