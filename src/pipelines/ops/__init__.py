"""Ops: keeping the rows honest and telling admins what happened.

- ``recovery``: one recovery pass: lost messages and stuck runs, recovered from the rows.
- ``lapsed_claims``: claims past their deadline: completed from a receipt or the SMS
  provider's word, else requeued (``lease_expired``) or ended on the last attempt.
- ``retention``: deleting handled provider events once old enough.
- ``schedule_log``: one row per firing of a scheduled job.
- ``ops_stats``: the database side of the ops page.
- ``reports`` and ``failure_reports``: a run's totals, and who failed and why.
- ``sampler``: once a minute (the scheduler's ``ops_sample`` job) each flow's finished and
  failed work, each queue's depth and dead letters, and provider latency p50/p95, kept 25 h.
- ``latency``: workers time each provider call and push the timings to Redis per minute.
- ``charts``: the sampled series over the last hour or 24 hours, scaled for SVG charts.
"""
