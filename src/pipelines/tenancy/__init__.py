"""Tenancy: who the tenants are and how they reach the API.

- ``orgs``: org, portal, the Client Portal type, more user types, CRM users.
- ``countries``: the country of registration and the data centre it gives an org.
- ``branding``: the logo and footer of an org's invitation emails.
- ``api_keys``: per-org API keys, shown once, stored as a SHA-256 hash.
- ``idempotency``: a retried request gets the first answer again, never a second run.
"""
