SELECT version, checksum FROM public.schema_migration
