-- One all-text table for the batch; each COPY tags its rows with upstream.copy_file.
CREATE UNLOGGED TABLE {raw} (
    raw_row bigint GENERATED ALWAYS AS IDENTITY,
    file_id bigint NOT NULL DEFAULT current_setting('upstream.copy_file')::bigint,
    {cols}
)
