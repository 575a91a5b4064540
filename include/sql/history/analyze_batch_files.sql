ANALYZE pg_temp.hist_file
