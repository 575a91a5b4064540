-- CASCADE: GX's stable view over the suspect table goes with it. {files}: a history batch's
-- per-file constants (none for a nightly load).
DROP TABLE IF EXISTS {raw}, {typed}, {suspect}, {files} CASCADE
