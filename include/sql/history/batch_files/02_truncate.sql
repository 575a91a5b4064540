TRUNCATE pg_temp.hist_file
