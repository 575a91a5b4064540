-- Before this session's first temp table.
SET temp_buffers = '256MB'
