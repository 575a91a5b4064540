-- A warehouse database sorts text in byte order (LC_COLLATE 'C'): its keys are 64-character
-- hex pseudonyms and ASCII incident ids, whose linguistic order nobody reads, and C.UTF-8's
-- strcoll made the history import's merges about 10% slower (every index insert and sort
-- compares them; 20 agencies x 10 years, alternating: 142-150 s against 149-160 s for the
-- whole import; see benchmarks/README.md). The character classes (LC_CTYPE) stay the
-- cluster's, so the contract rules' regular expressions match as before. template0: a new
-- collation needs it.
CREATE DATABASE {database} TEMPLATE template0 LOCALE_PROVIDER libc LC_COLLATE 'C'
