-- The batch's per-file constants as a plain UNLOGGED table for the typed pass: a query that
-- reads a temp table runs without parallel workers (measured at 200k rows: the typed pass
-- was serial, 5.5 s). {files}: identifier. Also analyses the raw table for the planner.
CREATE UNLOGGED TABLE {files} AS SELECT * FROM pg_temp.hist_file;
ANALYZE {files};
ANALYZE {raw}
