-- The duplicate check's hash and the merge's sort of a large file stay in memory.
SET work_mem = '128MB'
