-- The rows that broke at least one rule (usually none or a handful). GX evaluates every
-- rule's own predicate over this small table instead of scanning the whole file per rule.
CREATE UNLOGGED TABLE {suspect} AS
SELECT * FROM {typed} WHERE cardinality(failed_rules) > 0
