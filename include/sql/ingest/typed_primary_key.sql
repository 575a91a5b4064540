ALTER TABLE {typed} ADD PRIMARY KEY (row_number)
