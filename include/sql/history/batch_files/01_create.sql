CREATE TEMP TABLE IF NOT EXISTS hist_file (
    file_id bigint PRIMARY KEY,
    first_row bigint,
    extract_date date,
    generated_at timestamptz,
    extract_year int
)
