"""Ops: keeping the rows honest and telling admins what happened.

- ``recovery``: claims past their deadline, lost messages, stuck runs, recovered from rows.
- ``retention``: deleting handled provider events once old enough.
- ``schedule_log``: one row per firing of a scheduled job.
- ``ops_stats``: the database side of the ops page.
- ``reports`` and ``failure_reports``: a run's totals, and who failed and why.
"""
