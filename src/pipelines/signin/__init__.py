"""Portal sign-in: sessions, passwords and one-time codes, forgotten passwords, lockout.

Which rule lives where:

- ``sessions``: a session is a random 256-bit opaque token stored only as its SHA-256, with
  an absolute expiry; logout, an admin's end, and revocation, set-based, whenever a user is
  deactivated, removed, transferred, login suspended, changes number or resets the password
  (``lifecycle``, ``transfers`` and ``address_changes`` call :func:`sessions.end_for_users`).
  Imports only the models, so the state machines can call it without a cycle.
- ``guard``: the rate limits per client address, the lockout per account after repeated
  failures, and the cap on messages sent to one account (the ``limits`` library's moving
  window over Redis, or this process's memory).
- ``messages``: a verification SMS, forgot-password SMS or reset-password email is an
  ``invitations`` row of its own kind, sent by ``dispatch`` like every invitation (claim,
  receipt, outcomes, limiter, suppression, credits) and listed in the failure reports.
- ``credentials``: email + password for email-preference user types, phone + one-time code
  for phone-preference ones; answers that never tell whether an account exists (a dummy
  Argon2id check when there is none), status refusals only once the secret was right.
- ``reset``: forgot password (by email or SMS, by the user type's preference) and the reset
  itself: single use, one hour, hashed; every session of the user ends.
"""
