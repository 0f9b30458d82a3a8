"""The recovery actor retries database and broker trouble, a bounded number of times only."""

from __future__ import annotations

from dramatiq.errors import BrokerConnectionError
from sqlalchemy.exc import InterfaceError, OperationalError

from portalflow.workers import actors, recovery_actors


def test_infrastructure_errors_are_retried_until_the_cap() -> None:
    down = OperationalError("SELECT 1", {}, Exception("connection refused"))
    closed = InterfaceError("SELECT 1", {}, Exception("closed"))
    for error in (down, closed, BrokerConnectionError("redis down")):
        assert actors.retry_infrastructure_errors(0, error)
    assert actors.retry_infrastructure_errors(actors.RECOVERY_RETRIES - 1, down)
    assert not actors.retry_infrastructure_errors(actors.RECOVERY_RETRIES, down)


def test_other_errors_wait_for_the_next_scheduled_pass() -> None:
    assert not actors.retry_infrastructure_errors(0, ValueError("a bug"))


def test_the_recovery_actor_uses_the_rule() -> None:
    options = recovery_actors.recover_stuck_work.options
    assert options["retry_when"] is actors.retry_infrastructure_errors
    assert options["max_backoff"] <= 60_000
