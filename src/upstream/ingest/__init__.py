"""Stage 1, ingest: pull, verify, validate and load one agency-day extract.

The modules follow a file through the load: manifest.py (where a delivery lands, the manifest
and sha256 checks), header.py (the header record), staging.py (COPY into staging, the typed
table), merge.py (the set-based merge into core), load.py (`load_extract`, which runs them and
decides quarantine or refusal), outcome.py (LoadResult, RefusedFile). history.py imports years
of files in batches with the same checks. This package re-exports the names other code uses.
"""

from __future__ import annotations

from upstream.ingest.header import BOM, Header, read_header
from upstream.ingest.load import (
    load_extract,
    quarantine_refusal,
    quarantine_refuses,
    top_rules,
)
from upstream.ingest.manifest import (
    COPY_BLOCK,
    Delivery,
    delivery_paths,
    file_sha256,
    manifest_present,
    verify_delivery_files,
    verify_manifest,
)
from upstream.ingest.outcome import LoadResult, ManifestMissing, RefusedFile
from upstream.ingest.staging import build_typed_table, copy_to_staging, failed_rules_expression
from upstream.pseudonyms import hmac_pads, pseudonym
from upstream.warehouse.locks import (
    LOAD_LOCK_NAMESPACE,
    AgencyBusy,
    lock_agency,
    unlock_agency,
)
from upstream.warehouse.staging import drop_staging, drop_stale_staging, suspect_table

__all__ = [
    "BOM", "COPY_BLOCK", "LOAD_LOCK_NAMESPACE", "AgencyBusy", "Delivery", "Header", "LoadResult",
    "ManifestMissing", "RefusedFile", "build_typed_table", "copy_to_staging", "delivery_paths",
    "drop_stale_staging", "drop_staging", "failed_rules_expression", "file_sha256",
    "hmac_pads", "load_extract", "lock_agency", "manifest_present", "pseudonym",
    "quarantine_refusal", "quarantine_refuses", "read_header", "suspect_table", "top_rules",
    "unlock_agency", "verify_delivery_files", "verify_manifest",
]
