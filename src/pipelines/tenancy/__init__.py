"""Tenancy: who the tenants are and how they reach the API.

- ``orgs``: org, portal, the Client Portal type, more user types, CRM users, branding.
- ``api_keys``: per-org API keys, shown once, stored as a SHA-256 hash.
- ``idempotency``: a retried request gets the first answer again, never a second run.
"""
