"""Licence alert emails take their slots from the same shared send-rate schedule as invitations."""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path

import pytest
import redis
from sqlalchemy.orm import Session

from portalflow.config import Settings
from portalflow.models import LicenceAlert
from portalflow.pipelines.delivery.channels.bundle import Channels
from portalflow.pipelines.delivery.channels.rate_limit import send_rates
from portalflow.pipelines.licensing import licence_alerts, purchases

from ..factories import make_org

pytestmark = pytest.mark.redis


def _alert(session: Session, org_id: int, n: int) -> None:
    session.add(
        LicenceAlert(
            org_id=org_id,
            kind="overage",
            day=date(2026, 12, 1),
            dedupe_key=f"{org_id}:-:overage:{n}",
            detail=f"Vendors: 3 users for 2 licences ({n})",
        )
    )


def test_alert_emails_are_paced_by_the_shared_schedule(
    session: Session, tmp_path: Path, redis_url: str
) -> None:
    org = make_org(session)
    purchases.set_alert_settings(session, org.id, admin_email="admin@zylker.com")
    for n in range(3):
        _alert(session, org.id, n)
    session.commit()
    settings = Settings(
        var_dir=tmp_path,
        outbox_dir=tmp_path / "outbox",
        email_max_send_rate=50,
        rate_limit_redis_url=redis_url,
    )
    prefix = f"portalflow-test:send-rate:{uuid.uuid4().hex}"
    rates = send_rates(settings, key_prefix=prefix)
    channels = Channels.from_settings(settings, rates)
    client = redis.Redis.from_url(redis_url)
    try:
        assert licence_alerts.email_pending_alerts(session, settings, channels) == 3
        # Each alert was admitted against the shared window of departures in Redis.
        assert client.zcard(f"{prefix}:email:sent") == 3
    finally:
        channels.close()
        rates.close()
        client.delete(f"{prefix}:email", f"{prefix}:email:sent")
        client.close()
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 3
