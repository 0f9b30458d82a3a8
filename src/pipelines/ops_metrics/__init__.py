"""The ops page's history: a per-minute sampler, its bounded storage, and chart geometry.

- ``sampler``: once a minute (the scheduler's ``ops_sample`` job) write, per minute since
  the last sample, each flow's finished and failed work (from the database), each queue's
  depth and dead letters (from the broker's Redis, now) and the provider calls' p50/p95
  latency; delete samples past ``RETENTION`` (25 hours). About 30 rows a minute.
- ``latency``: worker processes time each provider call in memory and push the timings to
  Redis after each message, one list per channel and minute, for the sampler to read.
- ``charts``: series read back over the last hour (per minute) or 24 hours (per 15
  minutes), scaled to SVG coordinates for the ops page's templates.
"""
