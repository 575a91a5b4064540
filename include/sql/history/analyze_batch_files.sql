-- Statistics for the typed pass's planner (row counts decide its parallel workers).
ANALYZE {files};
ANALYZE {raw}
