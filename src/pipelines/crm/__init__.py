"""CRM: what the CRM tells portalflow.

- ``crm_events``: events recorded once per (org, the CRM's event id).
- ``intake``: applying the events that arrive over HTTP (upserts, deletes, restores).
- ``records``: importing CRM records, validated per row, upserted in batches.
- ``record_files``: reading record files (CSV, TSV, JSON lines) row by row.
"""
