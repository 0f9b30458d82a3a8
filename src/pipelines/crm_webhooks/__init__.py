"""Outbound CRM webhooks: tell the CRM what happened, signed, at least once, in order per user.

Which rule lives where:

- ``outbox``: the one writer every flow calls inside its own transaction (nothing is
  announced that did not commit, nothing committed is lost); set-based, and free for an org
  without an endpoint that wants the event type (one indexed lookup).
- ``payloads``: each event's body: a stable id, a type, a time, the ids the CRM knows.
- ``invitation_bodies``: on PostgreSQL, the invitation events' rows and bodies in one
  ``INSERT ... SELECT`` (the bulk invite's hot path), saying what ``payloads`` says.
- ``endpoints``: create, list, update, rotate, delete; the secret is shown once.
- ``keys``: the secrets are stored encrypted with ``PORTALFLOW_WEBHOOK_KEY`` (Fernet).
- ``signing``: HMAC-SHA256 over ``"{timestamp}.{body}"``, one signature per valid secret.
- ``urls``: http(s) only; private, loopback and link-local addresses refused unless
  ``PORTALFLOW_WEBHOOK_ALLOWED_NETWORKS`` allows them, checked again on the address the
  host resolves to at send time (the connection goes to that checked address).
- ``transport``: one POST with short timeouts that never follows a redirect.
- ``delivery``: claim, send, record; exponential backoff for hours, then ``dead``; per
  endpoint and user, a row waits until the earlier ones are settled; the replay sweep finds
  rows whose message was lost or whose worker died.
"""
