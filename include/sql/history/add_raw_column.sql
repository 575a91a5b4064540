ALTER TABLE {raw} ADD COLUMN {column} text
