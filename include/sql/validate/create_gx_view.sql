-- GX's stable view: the rows the one-pass evaluation flagged.
CREATE VIEW {view} AS SELECT * FROM {suspect}
