SELECT * FROM ops.extract_file WHERE file_id = %(file_id)s
