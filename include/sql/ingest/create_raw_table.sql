-- The all-text COPY table of a nightly file or a history batch; each COPY tags its rows with
-- upstream.copy_file (ingest/set_copy_file.sql), a tagged history stream brings its own file_id.
CREATE UNLOGGED TABLE {raw} (
    raw_row bigint GENERATED ALWAYS AS IDENTITY,
    file_id bigint NOT NULL DEFAULT current_setting('upstream.copy_file')::bigint,
    {cols}
)
