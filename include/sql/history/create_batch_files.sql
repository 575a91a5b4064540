-- The batch's per-file constants for validate/typed_table.sql: extract day, generated_at,
-- extract year, and (history/batch_file_first_rows.sql) each file's first raw row. A plain
-- UNLOGGED staging table, not a temp one: a query that reads a temp table gets no parallel
-- workers (measured at 200k rows: the typed pass ran serially, 5.5 s). {files}: identifier.
CREATE UNLOGGED TABLE {files} (
    file_id bigint PRIMARY KEY,
    first_row bigint,
    extract_date date,
    generated_at timestamptz,
    extract_year int
)
