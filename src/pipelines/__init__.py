"""Domain steps, one sub-package per area of the spec. Imports models; never Dramatiq.

- ``invitations``: who may be invited, bulk runs, tokens, acceptance, expiry, suppressions.
- ``delivery``: sending claimed rows, receipts, retries, provider outcomes, channels.
- ``content``: what a message says: rendering, templates, MIME, SMS text rules, DLT.
- ``users``: the portal user's life: lifecycle, bulk actions, transfers, address changes.
- ``licensing``: licences, purchases, slab pricing, nightly reconciliation, alerts.
- ``crm``: what the CRM tells us: events, intake over HTTP, record import.
- ``tenancy``: orgs, portals, user types, CRM users, API keys, idempotency keys.
- ``ops``: recovery, retention, the scheduled-run log, admin reports, the ops page's samples.
- ``signin``: portal sign-in: sessions, passwords and one-time codes, resets, lockout.
- ``crm_webhooks``: signed outbound webhooks to the CRM: outbox, endpoints, delivery.
- ``access``: what a signed-in portal user may see: catalogue, rules, permission sets.

``errors`` (the bad-input error every step raises), ``bulk_sql`` (set-based writes of any
row count) and ``key_files`` (the embedded default's local key files) are shared by all.
"""
