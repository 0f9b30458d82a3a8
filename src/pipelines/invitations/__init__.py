"""Invitations: who may be invited, and the life of an invitation until it is accepted.

- ``eligibility``: the twelve pre-send reasons, one stable code per refused record.
- ``bulk``: a request becomes a bulk run of chunks; each chunk becomes invitation rows.
- ``chunk_rows``: a chunk's invitation rows (refused, queued or claimed) and portal users.
- ``invitation_states``: the invitation's state machine; every status write is named there.
- ``tokens``: 256-bit tokens stored as SHA-256, single use, and the 7-day lifetime.
- ``reinvite``: inviting an unconfirmed user again kills the previous token.
- ``acceptance``: accepting by token, and confirming a changed email address.
- ``password_policy``: the password rule the accept page enforces.
- ``password_hashes``: passwords stored as Argon2id hashes, older ones upgraded on use.
- ``expiry``: the sweep that expires ``sent`` invitations past their ``expires_at``.
- ``suppressions`` and ``opt_out``: addresses no invitation goes to, and the one-click stop.
- ``link_keys`` and ``link_views``: the signed-link secret and what a recipient's link shows.
- ``run_listing``: finding an org's bulk runs.
"""
