-- History import (issue 14): retention of GX validation results and Data Docs pages is
-- logged like the other purges (upstream.retention.purge_data_docs).
ALTER TABLE ops.retention_log DROP CONSTRAINT retention_log_kind_check;
ALTER TABLE ops.retention_log ADD CONSTRAINT retention_log_kind_check CHECK (kind IN
    ('victim_contact', 'quarantine_row', 'extract_file', 'task_log', 'data_docs'));
