"""Real-time queues: a Redis worker never sleeps long between polls of an idle CRM-event queue."""

from __future__ import annotations

import pytest
from dramatiq.common import dq_name

from portalflow.config import Settings, SettingsError
from portalflow.workers.actors import INVITATIONS_QUEUE
from portalflow.workers.broker import CRM_EVENTS_QUEUE, PollingRedisBroker, make_broker

pytestmark = pytest.mark.redis


def test_the_redis_broker_caps_the_idle_back_off_of_real_time_queues(redis_url: str) -> None:
    broker = make_broker(Settings(broker_url=redis_url, realtime_poll_ms=7))
    try:
        assert isinstance(broker, PollingRedisBroker)
        timeouts = {
            queue: broker.consume(queue, prefetch=1, timeout=1000).timeout
            for queue in (CRM_EVENTS_QUEUE, dq_name(CRM_EVENTS_QUEUE), INVITATIONS_QUEUE)
        }
    finally:
        broker.close()
    assert timeouts == {CRM_EVENTS_QUEUE: 7, dq_name(CRM_EVENTS_QUEUE): 7, INVITATIONS_QUEUE: 1000}


def test_the_poll_setting_is_checked() -> None:
    with pytest.raises(SettingsError, match="PORTALFLOW_REALTIME_POLL_MS"):
        Settings(realtime_poll_ms=0)
