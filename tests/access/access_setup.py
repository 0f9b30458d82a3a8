"""The seeds' portal setups as test data: catalogues, records and portal users."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from portalflow.models import CrmRecord, Org, PortalUser, PortalUserStatus, PortalUserType
from portalflow.pipelines.access import config

from ..factories import client_portal, make_inviter, make_org

CONTACT_FIELDS = [
    {"name": "first_name", "type": "text"},
    {"name": "last_name", "type": "text"},
    {"name": "email", "type": "text", "pii": True},
    {"name": "Mailing_Country", "type": "text"},
    {"name": "Mailing_State", "type": "text"},
    {"name": "Customer_Type", "type": "picklist", "options": ["Enterprise", "SMB"]},
]
QUOTE_FIELDS = [
    {"name": "Subject", "type": "text"},
    {"name": "Contact_Name", "type": "lookup", "lookup_module": "Contacts"},
    {
        "name": "Quote_Stage",
        "type": "picklist",
        "options": ["Draft", "Negotiating", "Approved", "Rejected"],
    },
    {"name": "Amount", "type": "number"},
    {"name": "Internal_Note", "type": "text"},
]
PRODUCT_FIELDS = [
    {"name": "Product_Name", "type": "text"},
    {"name": "Available_Area", "type": "text"},
]
AGENT_FIELDS = [
    {"name": "Agent_Name", "type": "text"},
    {"name": "Hired_By", "type": "lookup", "lookup_module": "Contacts"},
    {"name": "State", "type": "text"},
    {"name": "Service_Region", "type": "text"},
]
PARTNER_FIELDS = [{"name": "Partner_Name", "type": "text"}]


class Portal:
    """An org with the Client Portal (Contacts) and the seeds' modules."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.org: Org = make_org(session)
        self.inviter = make_inviter(session, self.org)
        self.customers: PortalUserType = client_portal(session, self.org)
        for module, fields in (
            ("Contacts", CONTACT_FIELDS),
            ("Quotes", QUOTE_FIELDS),
            ("Products", PRODUCT_FIELDS),
            ("Agents", AGENT_FIELDS),
            ("Channel_Partners", PARTNER_FIELDS),
        ):
            config.define_fields(session, self.org.id, module, fields)

    def record(self, crm_id: str, module: str, **values: Any) -> CrmRecord:
        columns = {k: values.pop(k) for k in list(values) if k in ("first_name", "email")}
        record = CrmRecord(
            org_id=self.org.id, crm_id=crm_id, module=module, fields=values, **columns
        )
        self.session.add(record)
        self.session.flush()
        return record

    def user(
        self,
        record: CrmRecord,
        user_type: PortalUserType | None = None,
        status: PortalUserStatus = PortalUserStatus.CONFIRMED,
    ) -> PortalUser:
        user = PortalUser(
            org_id=self.org.id,
            record_id=record.id,
            user_type_id=(user_type or self.customers).id,
            status=status,
            email=record.email,
            invited_by_id=self.inviter.id,
        )
        self.session.add(user)
        self.session.flush()
        return user

    def expose(self, module: str, **kwargs: Any) -> None:
        config.expose_module(self.session, self.org.id, self.customers.id, module, **kwargs)
