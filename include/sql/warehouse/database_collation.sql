-- The current database's collation and its provider ('c' libc, 'i' ICU, 'b' builtin).
SELECT datcollate AS collation, datlocprovider AS provider
FROM pg_database WHERE datname = current_database()
