ALTER TABLE t_logrank ADD COLUMN p_value float8
