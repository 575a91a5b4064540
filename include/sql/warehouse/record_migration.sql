INSERT INTO public.schema_migration (version, checksum) VALUES (%s, %s)
