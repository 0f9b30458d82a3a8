"""Bulk runs through the pipelines: claim before send, tokens, totals, superseding."""

from __future__ import annotations

import email
import hashlib
import re
import threading
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from portalflow.config import Settings
from portalflow.models import (
    BulkChunk,
    BulkRun,
    BulkRunStatus,
    CrmRecord,
    Invitation,
    PortalUser,
    PortalUserStatus,
    TokenProblem,
    make_session_factory,
)
from portalflow.pipelines.delivery import dispatch, dispatch_config, send_outcomes
from portalflow.pipelines.delivery.channels import build_email_channel
from portalflow.pipelines.delivery.channels.bundle import Channels
from portalflow.pipelines.errors import InvalidInput, NotFound
from portalflow.pipelines.invitations import bulk, reinvite, tokens
from portalflow.pipelines.ops import reports

from ..factories import client_portal, make_inviter, make_org, make_record

CONFIG = dispatch_config.DispatchConfig(portal_base_url="https://portal.test/p")
TOKEN_IN_LINK = re.compile(r"token=([A-Za-z0-9_\-]+)")


def outbox_channels(outbox: Path) -> Channels:
    return Channels(lambda: build_email_channel(Settings(var_dir=outbox.parent, outbox_dir=outbox)))


def start(session: Session, crm_ids: list[str] | None, **kwargs: Any) -> bulk.StartedRun:
    org = kwargs.pop("org")
    started = bulk.start_bulk_run(
        session,
        org_id=org.id,
        user_type_id=kwargs.pop("user_type_id", None) or client_portal(session, org).id,
        inviter_id=kwargs.pop("inviter_id"),
        crm_ids=crm_ids,
        **kwargs,
    )
    session.commit()
    return started


def run_all(
    session: Session, started: bulk.StartedRun, outbox: Path
) -> send_outcomes.DispatchResult:
    """What the bulk_invite actor does for each chunk, in process."""
    total = send_outcomes.DispatchResult()
    for chunk_id in started.chunk_ids:
        ids = bulk.expand_chunk(session, chunk_id)
        session.commit()
        result = dispatch.dispatch(session, ids, channels=outbox_channels(outbox), config=CONFIG)
        total.sent += result.sent
        total.failed += result.failed
        total.skipped += result.skipped
    return total


def read_outbox(outbox: Path) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(path.read_bytes(), policy=default_policy)  # type: ignore[misc]
        for path in sorted(outbox.glob("*.eml"))
    ]


def link_token(message: email.message.EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    match = TOKEN_IN_LINK.search(body.get_content())
    assert match, "no invitation link in the plain-text part"
    return match.group(1)


@pytest.fixture
def world(session: Session) -> dict[str, Any]:
    org = make_org(session)
    inviter = make_inviter(session, org)
    for n in range(5):
        make_record(session, org, f"ok{n}", first_name=f"Sage{n}")
    make_record(session, org, "locked", approval_locked=True)
    make_record(session, org, "inside", email="boss@zylker.com")
    session.commit()
    return {"org": org, "inviter": inviter}


def test_bulk_run_sends_eligible_and_reports_the_rest(
    session: Session, world: dict[str, Any], outbox_dir: Path
) -> None:
    ids = ["ok0", "ok1", "locked", "ok2", "inside", "ok3", "ok4", "ghost"]
    started = start(session, ids, org=world["org"], inviter_id=world["inviter"].id, chunk_size=3)
    assert len(started.chunk_ids) == 3
    result = run_all(session, started, outbox_dir)

    assert len(result.sent) == 5 and len(set(result.sent)) == 5
    run = session.get_one(BulkRun, started.run_id)
    session.refresh(run)
    assert (run.requested, run.sent, run.failed, run.queued) == (8, 5, 3, 0)
    assert run.status == BulkRunStatus.COMPLETED and run.finished_at is not None
    report = reports.bulk_run_report(session, started.run_id)
    assert report["failed_by_reason"] == {
        "awaiting_approval": 1,
        "company_domain": 1,
        "record_missing": 1,
    }
    assert {row["crm_id"] for row in report["failed_invitees"]} == {"locked", "inside", "ghost"}

    messages = read_outbox(outbox_dir)
    assert sorted(m["To"].addresses[0].addr_spec for m in messages) == [
        f"ok{n}@customer.example.org" for n in range(5)
    ]
    statuses = set(
        session.scalars(select(PortalUser.status).where(PortalUser.org_id == world["org"].id))
    )
    assert statuses == {PortalUserStatus.INVITED}


def test_tokens_are_stored_only_as_hashes_and_expire_in_seven_days(
    session: Session, world: dict[str, Any], outbox_dir: Path
) -> None:
    started = start(session, ["ok0"], org=world["org"], inviter_id=world["inviter"].id)
    run_all(session, started, outbox_dir)
    [message] = read_outbox(outbox_dir)
    token = link_token(message)
    assert len(tokens.hash_token(token)) == 64

    invitation = session.scalars(select(Invitation)).one()
    session.refresh(invitation)
    assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert invitation.sent_at is not None
    assert invitation.expires_at == invitation.sent_at + tokens.INVITATION_LIFETIME
    # The plaintext token is nowhere in the row.
    row = {c.key: getattr(invitation, c.key) for c in Invitation.__table__.columns}
    assert not any(token in str(value) for value in row.values())
    # 32 random bytes, URL-safe: 43 characters.
    assert len(token) == 43

    assert tokens.find_valid_invitation(session, token).id == invitation.id
    later = invitation.expires_at
    with pytest.raises(tokens.InvalidToken) as expired:
        tokens.find_valid_invitation(session, token, now=later)
    assert expired.value.problem == TokenProblem.EXPIRED
    with pytest.raises(tokens.InvalidToken) as unknown:
        tokens.find_valid_invitation(session, token[:-1] + ("A" if token[-1] != "A" else "B"))
    assert unknown.value.problem == TokenProblem.UNKNOWN


def test_reinvite_supersedes_the_previous_token(
    session: Session, world: dict[str, Any], outbox_dir: Path
) -> None:
    started = start(session, ["ok0"], org=world["org"], inviter_id=world["inviter"].id)
    run_all(session, started, outbox_dir)
    first_token = link_token(read_outbox(outbox_dir)[0])
    user = session.scalars(select(PortalUser)).one()

    new_id = reinvite.reinvite(session, world["org"].id, user.id, inviter_id=world["inviter"].id)
    session.commit()
    result = dispatch.dispatch(
        session, [new_id], channels=outbox_channels(outbox_dir), config=CONFIG
    )
    assert result.sent == [new_id]

    tokens_sent = [link_token(m) for m in read_outbox(outbox_dir)]
    assert len(tokens_sent) == 2
    second_token = next(t for t in tokens_sent if t != first_token)
    with pytest.raises(tokens.InvalidToken) as superseded:
        tokens.find_valid_invitation(session, first_token)
    assert superseded.value.problem == TokenProblem.SUPERSEDED
    assert tokens.find_valid_invitation(session, second_token).id == new_id


def test_a_duplicated_dispatch_sends_once(
    session: Session, world: dict[str, Any], outbox_dir: Path
) -> None:
    started = start(session, ["ok0", "ok1"], org=world["org"], inviter_id=world["inviter"].id)
    [chunk_id] = started.chunk_ids
    ids = bulk.expand_chunk(session, chunk_id)
    session.commit()
    # The same chunk message delivered twice: the second expansion writes nothing new.
    assert bulk.expand_chunk(session, chunk_id) == ids
    session.commit()
    channel = build_email_channel(Settings(var_dir=outbox_dir.parent, outbox_dir=outbox_dir))
    first = dispatch.dispatch(session, ids, channels=Channels(lambda: channel), config=CONFIG)
    second = dispatch.dispatch(session, ids, channels=Channels(lambda: channel), config=CONFIG)
    assert sorted(first.sent) == sorted(ids) and second.sent == [] and second.skipped == ids
    assert len(read_outbox(outbox_dir)) == 2
    assert session.scalar(select(BulkRun.sent).where(BulkRun.id == started.run_id)) == 2


def test_concurrent_dispatchers_never_send_twice(
    pg_engine: Any, outbox_dir: Path, tmp_path: Path
) -> None:
    factory = make_session_factory(pg_engine)
    with factory() as session:
        org = make_org(session)
        inviter = make_inviter(session, org)
        for n in range(60):
            make_record(session, org, f"r{n}")
        session.commit()
        started = start(session, None, org=org, inviter_id=inviter.id, chunk_size=60)
        ids = bulk.expand_chunk(session, started.chunk_ids[0])
        session.commit()

    results: list[send_outcomes.DispatchResult] = []

    def worker() -> None:
        with factory() as own:
            results.append(
                dispatch.dispatch(own, ids, channels=outbox_channels(outbox_dir), config=CONFIG)
            )

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sent = [i for result in results for i in result.sent]
    assert sorted(sent) == sorted(ids)
    assert len(list(outbox_dir.glob("*.eml"))) == 60
    with factory() as session:
        assert session.scalar(select(BulkRun.sent).where(BulkRun.id == started.run_id)) == 60


def test_invite_everyone_uninvited_lists_only_module_records_with_an_address(
    session: Session, world: dict[str, Any]
) -> None:
    make_record(session, world["org"], "lead1", module="Leads")
    make_record(session, world["org"], "noemail", email=None)
    make_record(session, world["org"], "binned", in_recycle_bin=True)
    session.commit()
    started = start(session, None, org=world["org"], inviter_id=world["inviter"].id)
    [chunk_id] = started.chunk_ids
    listed = set(session.get_one(BulkChunk, chunk_id).crm_ids)
    assert listed == {"ok0", "ok1", "ok2", "ok3", "ok4", "locked", "inside"}
    assert started.requested == 7


def test_bad_requests_are_refused_and_write_nothing(
    session: Session, world: dict[str, Any], session_factory: sessionmaker[Session]
) -> None:
    org, inviter = world["org"], world["inviter"]
    other = make_org(session, name="Other", company_domain="other.example")
    other_inviter = make_inviter(session, other, email="x@other.example")
    session.commit()
    cases: list[tuple[dict[str, Any], type[Exception], str]] = [
        ({"user_type_id": 9999}, NotFound, "user type 9999"),
        ({"user_type_id": client_portal(session, other).id}, NotFound, "does not exist in org"),
        ({"inviter_id": other_inviter.id}, NotFound, "CRM user"),
        ({"language": "xx"}, InvalidInput, "language 'xx'"),
        ({"crm_ids": []}, InvalidInput, "no records"),
        ({"crm_ids": ["ok0", " "]}, InvalidInput, "empty"),
    ]
    for overrides, error, needle in cases:
        kwargs: dict[str, Any] = {
            "org_id": org.id,
            "user_type_id": client_portal(session, org).id,
            "inviter_id": inviter.id,
            "crm_ids": ["ok0"],
        }
        kwargs.update(overrides)
        with pytest.raises(error, match=re.escape(needle)):
            bulk.start_bulk_run(session, **kwargs)
        session.rollback()
    with session_factory() as fresh:
        assert fresh.scalar(select(BulkRun.id)) is None


def test_a_record_of_another_org_is_record_missing(
    session: Session, world: dict[str, Any], outbox_dir: Path
) -> None:
    other = make_org(session, name="Other", company_domain="other.example")
    make_record(session, other, "foreign")
    session.commit()
    started = start(session, ["foreign"], org=world["org"], inviter_id=world["inviter"].id)
    run_all(session, started, outbox_dir)
    report = reports.bulk_run_report(session, started.run_id)
    assert report["failed_by_reason"] == {"record_missing": 1}
    assert read_outbox(outbox_dir) == []
    with pytest.raises(NotFound):
        reports.bulk_run_report(session, started.run_id, org_id=other.id)


def test_invalid_status_is_refused_by_reinvite(session: Session, world: dict[str, Any]) -> None:
    record = session.scalars(select(CrmRecord).where(CrmRecord.crm_id == "ok0")).one()
    user = PortalUser(
        org_id=world["org"].id,
        record_id=record.id,
        user_type_id=client_portal(session, world["org"]).id,
        status=PortalUserStatus.CONFIRMED,
        email=record.email,
    )
    session.add(user)
    session.commit()
    with pytest.raises(InvalidInput, match="confirmed"):
        reinvite.reinvite(session, world["org"].id, user.id, inviter_id=world["inviter"].id)
    assert session.scalar(select(Invitation.id)) is None
