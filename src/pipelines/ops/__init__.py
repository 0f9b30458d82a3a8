"""Ops: keeping the rows honest and telling admins what happened.

- ``recovery``: one recovery pass: lost messages and stuck runs, recovered from the rows.
- ``lapsed_claims``: claims past their deadline: completed from a receipt or the SMS
  provider's word, else requeued (``lease_expired``) or ended on the last attempt.
- ``retention``: deleting handled provider events once old enough.
- ``schedule_log``: one row per firing of a scheduled job.
- ``ops_stats``: the database side of the ops page.
- ``reports`` and ``failure_reports``: a run's totals, and who failed and why.
"""
