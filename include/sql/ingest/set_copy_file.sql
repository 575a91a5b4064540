SELECT set_config('upstream.copy_file', %(file_id)s, true)
