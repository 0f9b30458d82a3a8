"""How many SQL statements processes send to the database, summed in a Redis counter.

``install(redis_url)`` in a process adds a SQLAlchemy ``before_cursor_execute`` listener on
the ``Engine`` class (so on every engine of the process, made before or after) that counts
in memory, and starts a daemon thread that adds the count to ``COUNTER`` with one INCRBY
every ``FLUSH_SECONDS`` and notes when it did in ``FLUSHED`` (pid -> wall time), one
round trip per flush, not one per statement. ``bench/counted_workers.py`` installs it in
each Dramatiq worker process; the benchmark resets and reads the counter with ``reset``,
``flushed_since`` and ``read``.

A statement counts as what goes to the server: an executemany once per parameter set
(psycopg 3 sends one statement per row), a multi-row ``INSERT ... VALUES`` (SQLAlchemy's
"insertmanyvalues" batches, one event each) or an ``UPDATE ... FROM unnest`` once. The
provider receipt, which dispatch writes straight on the driver connection (no event),
counts once per receipt through a wrapper around ``ReceiptBook.keep``. What SQLAlchemy sends
without the event is not counted: the pool's pre-ping on checkout, and the BEGIN / COMMIT /
ROLLBACK that psycopg issues for a transaction.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import redis
from sqlalchemy import Engine, event
from sqlalchemy.engine.interfaces import ExecuteStyle, ExecutionContext

COUNTER = "bench:sql:statements"
FLUSHED = "bench:sql:flushed"
FLUSH_SECONDS = 0.2


def statements_sent(parameters: Any, context: ExecutionContext | None) -> int:
    """Statements one ``before_cursor_execute`` event stands for.

    The event's ``executemany`` flag is no guide: SQLAlchemy passes True for each batch of
    an insertmanyvalues INSERT too, with that batch's single (flattened) parameter set.
    The context's ``execute_style`` tells them apart; only a DBAPI ``executemany`` sends
    one statement per parameter set.
    """
    style = getattr(context, "execute_style", ExecuteStyle.EXECUTE)
    if style is ExecuteStyle.EXECUTEMANY:
        return len(parameters)
    return 1


class StatementCounter:
    """Counts this process's statements and flushes the count to Redis from a thread."""

    def __init__(self, redis_url: str, every: float = FLUSH_SECONDS) -> None:
        self.client = redis.Redis.from_url(redis_url)
        self.every = every
        self.pending = 0
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name="sql-count-flush", daemon=True)

    def before_cursor_execute(
        self,
        _connection: Any,
        _cursor: Any,
        _statement: str,
        parameters: Any,
        context: ExecutionContext | None,
        _executemany: bool,
    ) -> None:
        sent = statements_sent(parameters, context)
        with self.lock:
            self.pending += sent

    def add(self, sent: int) -> None:
        with self.lock:
            self.pending += sent

    def flush(self) -> None:
        """Add what was counted since the last flush to ``COUNTER``; note the time."""
        # The time is taken first: every statement counted before it is in this flush.
        stamp = time.time()
        with self.lock:
            count, self.pending = self.pending, 0
        try:
            # One connection, in order: whoever sees the stamp sees the INCRBY before it.
            pipeline = self.client.pipeline(transaction=False)
            if count:
                pipeline.incrby(COUNTER, count)
            pipeline.hset(FLUSHED, str(os.getpid()), repr(stamp))
            pipeline.execute()
        except redis.RedisError:
            with self.lock:  # keep the count for the next flush
                self.pending += count

    def _run(self) -> None:
        while True:
            time.sleep(self.every)
            self.flush()


def install(redis_url: str, every: float = FLUSH_SECONDS) -> StatementCounter:
    """Count every statement this process sends from now on; flush to ``redis_url``."""
    from portalflow.pipelines.delivery.receipts import ReceiptBook

    counter = StatementCounter(redis_url, every)
    event.listen(Engine, "before_cursor_execute", counter.before_cursor_execute)
    keep = ReceiptBook.keep

    def counted_keep(book: ReceiptBook, *args: Any, **kwargs: Any) -> None:
        keep(book, *args, **kwargs)
        if book.writes_raw:
            counter.add(1)

    ReceiptBook.keep = counted_keep  # type: ignore[method-assign]
    counter.thread.start()
    return counter


# --- read by the benchmark -----------------------------------------------------------------


def reset(client: redis.Redis) -> None:
    """Zero the counter (the flush times stay, they only ever move forward)."""
    client.delete(COUNTER)


def read(client: redis.Redis) -> int:
    """Statements flushed so far by every counting process."""
    return int(client.get(COUNTER) or 0)


def flushed_since(client: redis.Redis, since: float, processes: int) -> bool:
    """Whether ``processes`` counting processes have all flushed after wall time ``since``."""
    stamps = [float(stamp) for stamp in client.hvals(FLUSHED)]
    return sum(stamp > since for stamp in stamps) >= processes
