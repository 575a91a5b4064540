-- The nightly load's {files} for validate/typed_table.sql: its one file. first_row 1: the raw
-- table is new and COPY's HEADER option skips the header without taking an identity value.
-- {files}: identifier; {file_id}, {extract_date}, {generated_at}, {extract_year}: literals.
CREATE UNLOGGED TABLE {files} AS
SELECT {file_id}::bigint AS file_id, 1::bigint AS first_row, {extract_date}::date AS extract_date,
       {generated_at}::timestamptz AS generated_at, {extract_year}::int AS extract_year
