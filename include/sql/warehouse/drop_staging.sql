-- CASCADE: GX's stable view over the suspect table goes with it.
DROP TABLE IF EXISTS {raw}, {typed}, {suspect} CASCADE
