-- Many files of a history batch in one COPY: every record arrives prefixed with its file_id
-- (upstream.ingest.history.stream), the header records already dropped. Otherwise as
-- ingest/copy_csv.sql (FORCE_NULL: a quoted empty field is null too).
COPY {raw} (file_id, {cols}) FROM STDIN WITH (FORMAT csv, HEADER false, ENCODING 'UTF8', FORCE_NULL ({cols}))
