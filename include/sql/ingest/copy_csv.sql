-- FORCE_NULL: a quoted empty field ("") is null too, as the contract says.
COPY {raw} ({cols}) FROM STDIN WITH (FORMAT csv, HEADER true, ENCODING 'UTF8', FORCE_NULL ({cols}))
