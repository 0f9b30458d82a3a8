"""Our actors, counting their SQL statements: ``dramatiq bench.counted_workers``.

The same actors and broker as ``dramatiq portalflow.workers`` (importing that package
installs the broker from PORTALFLOW_BROKER_URL as Dramatiq's global broker, which
``dramatiq`` takes when the module names no broker; ``bench.counted_workers:broker`` names
it), plus ``bench.sqlcount``: every statement the process sends is counted and the count
flushed to ``bench.sqlcount.COUNTER`` on the same (the benchmark's private) Redis.

Dramatiq imports this module in each worker process, after forking, so each process
counts its own statements with its own flush thread. Nothing here is meant for the
benchmark's process: importing it there would replace its global broker.
"""

from __future__ import annotations

import dramatiq

import portalflow.workers  # noqa: F401  (the actors, declared on the broker it installs)
from portalflow.config import Settings

from . import sqlcount

broker = dramatiq.get_broker()
counter = sqlcount.install(Settings.from_env().broker_url)
