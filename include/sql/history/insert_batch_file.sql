INSERT INTO pg_temp.hist_file VALUES (%s, %s, %s, %s, %s)
