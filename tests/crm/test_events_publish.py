"""portalflow.events.publish: the Python door for CRM events, through a real worker."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine

from portalflow.events import publish
from portalflow.models import CrmEvent, CrmEventStatus, CrmRecord, make_session_factory

from ..conftest import wait_for
from ..factories import make_org, make_record


def test_publish_stores_once_and_a_worker_applies_it(
    worker: Any, pg_engine: Engine, pg_database_url: str
) -> None:
    factory = make_session_factory(pg_engine)
    with factory() as session:
        org = make_org(session)
        make_record(session, org, "C-1", email="old@example.org")
        session.commit()
        org_id = org.id
    event = {
        "org_id": org_id,
        "event_id": "crm-1",
        "type": "record.email_changed",
        "data": {"record_id": "C-1", "email": "new@example.org"},
        "database_url": pg_database_url,
    }
    stored, created = publish(**event)
    assert created and publish(**event) == (stored, False)

    def processed() -> bool:
        with factory() as session:
            return session.get_one(CrmEvent, stored).status == CrmEventStatus.PROCESSED

    wait_for(processed)
    with factory() as session:
        record = session.query(CrmRecord).filter_by(crm_id="C-1").one()
        assert record.email == "new@example.org"


def test_a_bad_event_names_the_field_and_stores_nothing(pg_database_url: str) -> None:
    with pytest.raises(ValidationError, match="email"):
        publish(
            org_id=1,
            event_id="crm-2",
            type="record.email_changed",
            data={"record_id": "C-1"},
            database_url=pg_database_url,
        )
