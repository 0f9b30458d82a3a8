"""Licensing: how many portal users an org may hold, and what they cost.

- ``licences``: the per-type limit rule (``licence_limit``: free Client Portal, purchases,
  trial cap), used by enforcement and by the nightly reconciliation alike.
- ``purchases``: recorded purchases and what is in force on a day.
- ``pricing``: slab pricing, pure functions over integer cents.
- ``seat_usage``: who holds the seats, by status.
- ``reconciliation``: the nightly recount, correction and report, batch by batch.
- ``assessment``: one org-day's report, alerts and counter fixes from its counts (pure):
  overage, near limit, trial expiry, deletion after a fall to Free, the month's price.
- ``licence_alerts``: listing alerts and emailing each one once.
"""
