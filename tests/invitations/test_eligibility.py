"""Every reason code, decided set-based for a chunk, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from portalflow.models import (
    Edition,
    PortalUser,
    PortalUserStatus,
    ReasonCode,
    RecordAccess,
)
from portalflow.pipelines.invitations import eligibility
from portalflow.pipelines.licensing.licences import TRIAL_MAX_USERS
from portalflow.pipelines.tenancy import orgs

from ..factories import client_portal, make_inviter, make_org, make_record


def decide(session: Session, org: Any, inviter: Any, crm_ids: list[str], user_type: Any = None):
    """The whole verdict, as a chunk expansion reaches it: decide, then settle the licences."""
    user_type = user_type or client_portal(session, org)
    decisions = eligibility.decide(
        session, org=org, user_type=user_type, inviter=inviter, crm_ids=crm_ids
    )
    return eligibility.settle(session, org, user_type, decisions)


CASES: list[tuple[str, dict[str, Any], ReasonCode | None]] = [
    ("ok", {}, None),
    ("own-domain", {"email": "jane@zylker.com"}, ReasonCode.COMPANY_DOMAIN),
    ("own-subdomain", {"email": "jane@Mail.ZYLKER.com"}, ReasonCode.COMPANY_DOMAIN),
    ("approval", {"approval_locked": True}, ReasonCode.AWAITING_APPROVAL),
    ("review", {"review_locked": True}, ReasonCode.UNDER_REVIEW),
    ("no-consent", {"processing_basis": "consent"}, ReasonCode.NO_CONSENT),
    (
        "consent-given",
        {"processing_basis": "consent", "consent_given": True},
        None,
    ),
    ("contract-basis", {"processing_basis": "contract"}, None),
    ("bad-chars", {"email": "jöhn@example.org"}, ReasonCode.UNSUPPORTED_CHARACTERS),
    ("bad-chars-2", {"email": "john!doe@example.org"}, ReasonCode.UNSUPPORTED_CHARACTERS),
    ("plus-ok", {"email": "john+portal_1@example.org"}, None),
    ("disposable", {"email": "x@mailinator.com"}, ReasonCode.ANONYMOUS_DOMAIN),
    ("disposable-sub", {"email": "x@eu.MAILINATOR.com"}, ReasonCode.ANONYMOUS_DOMAIN),
    ("recycle", {"in_recycle_bin": True}, ReasonCode.IN_RECYCLE_BIN),
    ("deleted", {"deleted": True}, ReasonCode.RECORD_MISSING),
    ("lead", {"module": "Leads"}, ReasonCode.RECORD_MISSING),
    ("no-email", {"email": None}, ReasonCode.INVALID_ADDRESS),
    ("blank-email", {"email": "   "}, ReasonCode.INVALID_ADDRESS),
    ("malformed", {"email": "john..doe@example"}, ReasonCode.INVALID_ADDRESS),
    ("two-ats", {"email": "a@b@example.org"}, ReasonCode.INVALID_ADDRESS),
    # The addresses tests/users/test_address_changes.py changes to: the same codes there.
    ("space", {"email": "sage weiser@example.org"}, ReasonCode.UNSUPPORTED_CHARACTERS),
    ("no-domain", {"email": "sage@"}, ReasonCode.INVALID_ADDRESS),
    ("accent", {"email": "ségolène@example.org"}, ReasonCode.UNSUPPORTED_CHARACTERS),
]


def test_each_record_gets_its_one_reason(session: Session) -> None:
    org = make_org(session)
    inviter = make_inviter(session, org)
    for crm_id, overrides, _ in CASES:
        make_record(session, org, crm_id, **overrides)
    decisions = decide(session, org, inviter, [crm_id for crm_id, _, _ in CASES] + ["ghost"])
    got = {d.crm_id: d.reason for d in decisions}
    expected = {crm_id: reason for crm_id, _, reason in CASES} | {
        "ghost": ReasonCode.RECORD_MISSING
    }
    assert got == expected
    assert all(d.detail for d in decisions if d.reason)


def test_permissions(session: Session) -> None:
    org = make_org(session)
    no_contacts = make_inviter(session, org, modules=["Leads"], email="leads@zylker.com")
    own_only = make_inviter(session, org, record_access=RecordAccess.OWNED, email="own@zylker.com")
    make_record(session, org, "mine", owner_id=own_only.id)
    make_record(session, org, "theirs", owner_id=no_contacts.id)
    assert {d.reason for d in decide(session, org, no_contacts, ["mine", "theirs"])} == {
        ReasonCode.NO_MODULE_PERMISSION
    }
    assert [d.reason for d in decide(session, org, own_only, ["mine", "theirs"])] == [
        None,
        ReasonCode.NO_RECORD_PERMISSION,
    ]


def test_already_portal_user_of_any_type_but_not_once_removed(session: Session) -> None:
    org = make_org(session)
    inviter = make_inviter(session, org)
    vendors = orgs.add_user_type(session, org.id, name="Vendors", module="Contacts")
    taken = make_record(session, org, "taken")
    gone = make_record(session, org, "gone")
    session.add_all(
        [
            PortalUser(
                org_id=org.id, record_id=taken.id, user_type_id=vendors.id, status="invited"
            ),
            PortalUser(
                org_id=org.id,
                record_id=gone.id,
                user_type_id=vendors.id,
                status=PortalUserStatus.REMOVED,
            ),
        ]
    )
    session.flush()
    assert [d.reason for d in decide(session, org, inviter, ["taken", "gone"])] == [
        ReasonCode.ALREADY_PORTAL_USER,
        None,
    ]


def test_trial_cap_counts_every_holder_but_not_deactivated(session: Session) -> None:
    org = make_org(session, edition=Edition.TRIAL)
    inviter = make_inviter(session, org)
    cp = client_portal(session, org)
    for n in range(TRIAL_MAX_USERS - 1):
        record = make_record(session, org, f"holder{n}")
        status = PortalUserStatus.CONFIRMED if n else PortalUserStatus.DEACTIVATED
        session.add(
            PortalUser(org_id=org.id, record_id=record.id, user_type_id=cp.id, status=status)
        )
    for n in range(4):
        make_record(session, org, f"new{n}")
    session.flush()
    # 8 holders (one of the 9 is deactivated) leave 2 of the trial's 10.
    reasons = [d.reason for d in decide(session, org, inviter, [f"new{n}" for n in range(4)])]
    assert reasons == [None, None, ReasonCode.LICENCE_LIMIT, ReasonCode.LICENCE_LIMIT]


def test_refused_records_do_not_spend_licences(session: Session) -> None:
    org = make_org(session, edition=Edition.TRIAL)
    inviter = make_inviter(session, org)
    for n in range(12):
        make_record(session, org, f"r{n}", review_locked=(n % 2 == 0))
    reasons = [d.reason for d in decide(session, org, inviter, [f"r{n}" for n in range(12)])]
    assert reasons.count(None) == 6
    assert ReasonCode.LICENCE_LIMIT not in reasons


@pytest.mark.parametrize("size", [10, 200])
def test_a_chunk_costs_a_fixed_number_of_queries(session: Session, size: int) -> None:
    org = make_org(session)
    inviter = make_inviter(session, org)
    for n in range(size):
        make_record(session, org, f"c{n}")
    user_type = client_portal(session, org)
    session.flush()
    statements: list[str] = []
    engine = session.get_bind()

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", count)
    try:
        decisions = decide(session, org, inviter, [f"c{n}" for n in range(size)], user_type)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert all(d.eligible for d in decisions)
    # records, portal users, suppressions; under the licence lock: portal users again, holders.
    assert len(statements) <= 5, statements


@pytest.mark.parametrize(
    "address",
    [
        "a@b.com",
        "a.b+c_d-e@sub.example.org",
        "a..b@example.com",
        ".a@example.com",
        "a.@example.com",
        "a@example",
        "a@-example.com",
        "a@example-.com",
        "a@example..com",
        "a@localhost",
        "a@example.invalid",
        "a@1.2.3.4",
        "a@b.123",
        "x" * 64 + "@example.com",
        "x" * 65 + "@example.com",
        "a@" + ("b" * 63 + ".") * 3 + "com",
        "a@" + ("b" * 63 + ".") * 4 + "com",
        "@example.com",
        "a@",
        "a@xn--bcher-kva.de",
        "a@xn--zz.com",
        "a@b_c.com",
        "user@arpa",
    ],
)
def test_the_plain_address_shortcut_agrees_with_email_validator(address: str) -> None:
    from email_validator import EmailNotValidError, validate_email

    from portalflow.pipelines.users import addresses

    try:
        validate_email(address, check_deliverability=False)
        expected = True
    except EmailNotValidError:
        expected = False
    assert addresses.is_well_formed(address) == expected
