"""The dispatch core as the bulk actor drives it: rows written claimed, fenced sends,
receipts, one message's failure kept to itself, and every status write a named transition."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from portalflow.config import Settings
from portalflow.models import (
    BulkRun,
    BulkRunStatus,
    EmailKind,
    Invitation,
    InvitationStatus,
    PortalUser,
    PortalUserStatus,
    SendReceipt,
    utcnow,
)
from portalflow.pipelines.content import email_templates
from portalflow.pipelines.delivery import dispatch, dispatch_config
from portalflow.pipelines.delivery.channels import build_email_channel
from portalflow.pipelines.delivery.channels.base import OutgoingEmail
from portalflow.pipelines.delivery.channels.bundle import Channels
from portalflow.pipelines.delivery.claims import Lease
from portalflow.pipelines.invitations import bulk, chunk_rows, invitation_states
from portalflow.pipelines.ops import recovery

from ..factories import client_portal, make_inviter, make_org, make_record

CONFIG = dispatch_config.DispatchConfig(portal_base_url="https://portal.test/p")


def outbox(tmp_path: Path) -> Channels:
    settings = Settings(var_dir=tmp_path, outbox_dir=tmp_path / "outbox")
    return Channels(lambda: build_email_channel(settings))


def invite(session: Session, count: int, *, chunk_size: int = 500) -> tuple[int, list[int]]:
    """A run over ``count`` fresh Contacts; (run id, chunk ids)."""
    org = make_org(session)
    inviter = make_inviter(session, org)
    for n in range(count):
        make_record(session, org, f"C-{n:03d}", email=f"person{n}@example.org")
    started = bulk.start_bulk_run(
        session,
        org_id=org.id,
        user_type_id=client_portal(session, org).id,
        inviter_id=inviter.id,
        crm_ids=[f"C-{n:03d}" for n in range(count)],
        chunk_size=chunk_size,
    )
    session.commit()
    return started.run_id, started.chunk_ids


def expand_claimed(
    session: Session, chunk_id: int, config: dispatch_config.DispatchConfig = CONFIG
) -> chunk_rows.ClaimOnWrite:
    """What the bulk_invite actor does first: expand the chunk with its rows claimed."""
    claim = dispatch.claim_on_write(session, config)
    assert bulk.expand_chunk(session, chunk_id, claim=claim) == []
    return claim


def lapse(session: Session, run_id: int) -> None:
    """Move the run's claim deadlines into the past, as a dead or stalled worker leaves them."""
    session.execute(
        update(Invitation)
        .where(Invitation.bulk_run_id == run_id)
        .values(claim_deadline=utcnow() - Lease(1, 0).duration)
    )
    session.commit()


def run_status(session: Session, run_id: int) -> BulkRunStatus:
    return session.get_one(BulkRun, run_id, populate_existing=True).status


def statuses(session: Session, run_id: int) -> dict[str, int]:
    rows = session.execute(
        select(Invitation.status, func.count())
        .where(Invitation.bulk_run_id == run_id)
        .group_by(Invitation.status)
    ).all()
    return {status.value: n for status, n in rows}


def test_a_chunk_is_written_claimed_and_sent_in_one_pass(session: Session, tmp_path: Path) -> None:
    run_id, [chunk_id] = invite(session, 30)
    claim = expand_claimed(session, chunk_id)

    rows = session.execute(
        select(Invitation.status, Invitation.claim_token, Invitation.token_hash)
        .where(Invitation.bulk_run_id == run_id)
        .order_by(Invitation.id)
    ).all()
    assert {row.status for row in rows} == {InvitationStatus.SENDING}
    assert {row.claim_token for row in rows} == {claim.claim.token}
    assert all(row.token_hash for row in rows)
    assert len(claim.claim.rows) == 30

    result = dispatch.send_claim(session, claim.claim, channels=outbox(tmp_path), config=CONFIG)

    assert len(result.sent) == 30 and not result.retry
    assert statuses(session, run_id) == {"sent": 30}
    assert run_status(session, run_id) == BulkRunStatus.COMPLETED
    # Receipts are only kept until the batch's outcomes are on the rows.
    assert session.scalar(select(func.count()).select_from(SendReceipt)) == 0
    assert (
        session.scalar(
            select(func.count()).where(
                Invitation.bulk_run_id == run_id,
                Invitation.claim_token.is_not(None) | Invitation.claim_deadline.is_not(None),
            )
        )
        == 0
    )


def test_one_template_error_fails_that_invitation_alone(session: Session, tmp_path: Path) -> None:
    run_id, [chunk_id] = invite(session, 60)
    run = session.get_one(BulkRun, run_id)
    # Hidden behind a record condition, the error passes the trial render when saved.
    email_templates.save_custom_template(
        session,
        run.org_id,
        run.user_type_id,
        EmailKind.ACCEPT_INVITATION,
        "en",
        subject="Welcome {{ record.first_name }}",
        html_body=(
            "<p>{% if record.crm_id == 'C-013' %}{{ 1 // 0 }}{% endif %}"
            '<a href="{{ invite_url }}">Accept</a></p>'
        ),
    )
    session.commit()
    claim = expand_claimed(session, chunk_id)

    result = dispatch.send_claim(session, claim.claim, channels=outbox(tmp_path), config=CONFIG)

    assert (len(result.sent), len(result.failed), result.retry) == (59, 1, [])
    assert statuses(session, run_id) == {"sent": 59, "failed": 1}
    failed = session.execute(
        select(Invitation.crm_id, Invitation.failure_code, Invitation.failure_detail).where(
            Invitation.bulk_run_id == run_id, Invitation.status == InvitationStatus.FAILED
        )
    ).one()
    assert (failed.crm_id, failed.failure_code) == ("C-013", "render_failed")
    assert "ZeroDivisionError" in failed.failure_detail
    # One pass: nobody's attempt was spent twice, and the run is done.
    assert session.scalar(select(func.max(Invitation.attempts))) == 1
    assert run_status(session, run_id) == BulkRunStatus.COMPLETED
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 59


class _Pausing:
    """An email channel that lets the claim's deadline slip by after ``after`` sends."""

    name = "pausing"

    def __init__(self, inner: object, after: int, pause: float) -> None:
        self.inner = inner
        self.after = after
        self.pause = pause
        self.sent: list[int] = []

    def send(self, message: OutgoingEmail) -> str:
        provider_id = self.inner.send(message)  # type: ignore[attr-defined]
        self.sent.append(message.invitation_id)
        if len(self.sent) == self.after:
            time.sleep(self.pause)  # a stopped process, a long GC pause, a slow disk...
        return provider_id

    def close(self) -> None:
        self.inner.close()  # type: ignore[attr-defined]


def test_a_lapsed_claim_sends_nothing_more_and_gives_the_rest_back(
    session: Session, tmp_path: Path
) -> None:
    config = dispatch_config.DispatchConfig(
        portal_base_url="https://portal.test/p", lease=Lease(seconds=2, margin_seconds=0.5)
    )
    run_id, [chunk_id] = invite(session, 20)
    claim = expand_claimed(session, chunk_id, config)
    settings = Settings(var_dir=tmp_path, outbox_dir=tmp_path / "outbox")
    pausing = _Pausing(build_email_channel(settings), after=5, pause=2.0)

    result = dispatch.send_claim(
        session, claim.claim, channels=Channels(lambda: pausing), config=config
    )

    # The fence held at the sixth provider call: the deadline was less than the margin ahead.
    assert len(pausing.sent) == 5
    assert (len(result.sent), len(result.given_back)) == (5, 15)
    assert statuses(session, run_id) == {"sent": 5, "queued": 15}
    given_back = session.execute(
        select(Invitation.attempts, Invitation.claim_token, Invitation.token_hash).where(
            Invitation.bulk_run_id == run_id, Invitation.status == InvitationStatus.QUEUED
        )
    ).all()
    assert {(row.attempts, row.claim_token, row.token_hash) for row in given_back} == {
        (0, None, None)
    }
    # They go out again through the ordinary queue path.
    again = dispatch.dispatch(
        session, [i for i, _ in result.retry], channels=outbox(tmp_path), config=CONFIG
    )
    assert len(again.sent) == 15
    assert statuses(session, run_id) == {"sent": 20}


def test_rows_recovery_took_are_not_recorded_by_the_worker_that_lost_them(
    session: Session, tmp_path: Path
) -> None:
    run_id, [chunk_id] = invite(session, 10)
    claim = expand_claimed(session, chunk_id)
    # Recovery saw the claim as lapsed (its deadline moved into the past) and took it.
    lapse(session, run_id)
    recovered = recovery.recover(session, utcnow(), max_attempts=5)
    session.commit()
    assert recovered.released_claims == 10

    # The old claimant's local clock still says it holds: the rows' claim token says not.
    result = dispatch.send_claim(session, claim.claim, channels=outbox(tmp_path), config=CONFIG)

    assert result.sent == [] and len(result.skipped) == 10
    assert statuses(session, run_id) == {"queued": 10}


def test_recovery_completes_a_dead_claim_from_its_receipt_table(session: Session) -> None:
    run_id, [chunk_id] = invite(session, 3)
    claim = expand_claimed(session, chunk_id)
    first = claim.claim.rows[0]
    sent_at = utcnow()
    session.add(
        SendReceipt(
            invitation_id=first.id,
            claim_token=claim.claim.token,
            provider_message_id="<m1@zylker>",
            sent_at=sent_at,
        )
    )
    lapse(session, run_id)

    found = recovery.recover(session, utcnow(), max_attempts=5)
    session.commit()

    assert found.completed == [first.id] and found.released_claims == 2
    row = session.get_one(Invitation, first.id)
    assert (row.status, row.provider_message_id) == (InvitationStatus.SENT, "<m1@zylker>")
    assert row.expires_at is not None and row.claim_token is None
    assert session.scalar(select(func.count()).select_from(SendReceipt)) == 0
    assert session.get_one(BulkRun, run_id, populate_existing=True).sent == 1


def test_a_first_invitation_that_fails_for_good_frees_its_user_through_the_lifecycle(
    session: Session, tmp_path: Path
) -> None:
    _run_id, [chunk_id] = invite(session, 2)
    claim = expand_claimed(session, chunk_id)
    for row in claim.claim.rows:
        row.address = None  # lost before the send: a permanent failure
    before = utcnow()

    dispatch.send_claim(session, claim.claim, channels=outbox(tmp_path), config=CONFIG)

    users = session.execute(select(PortalUser.status, PortalUser.status_changed_at)).all()
    assert {user.status for user in users} == {PortalUserStatus.REMOVED}
    assert all(user.status_changed_at >= before for user in users)


def test_every_transition_names_where_it_may_start() -> None:
    for transition, (leaves, _target) in invitation_states.TRANSITIONS.items():
        if leaves is None:
            invitation_states.initial_status(transition)
        else:
            assert invitation_states.sources(transition) == leaves
    allowed = invitation_states.allowed_from(InvitationStatus.SENDING)
    assert invitation_states.Transition.RECORD_SENT in allowed
    assert invitation_states.Transition.ACCEPT not in allowed


def test_no_module_writes_an_invitation_status_but_through_the_state_machine() -> None:
    """A status written by hand (``status=InvitationStatus.X``, ``.status = ...``) skips the
    transition table's guard: only ``invitation_states`` may name a target status."""
    import re

    import portalflow

    source = Path(portalflow.__file__).parent
    by_hand = re.compile(
        r"(status\s*=\s*InvitationStatus\.|\"status\":\s*InvitationStatus\.|"
        r"invitation\.status\s*=(?!=))"
    )
    offenders = [
        f"{path.relative_to(source)}:{number}"
        for path in source.rglob("*.py")
        if path.name != "invitation_states.py" and "migrations" not in path.parts
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if by_hand.search(line)
    ]
    assert offenders == []


def test_rows_a_dead_claim_never_reached_get_their_attempt_back(session: Session) -> None:
    run_id, [chunk_id] = invite(session, 5)
    claim = expand_claimed(session, chunk_id)
    ids = [row.id for row in claim.claim.rows]
    # The worker sent the second row (receipt kept), then died sending the third; the first
    # failed at the provider before it, unrecorded. The last two were never tried.
    session.add(
        SendReceipt(
            invitation_id=ids[1],
            claim_token=claim.claim.token,
            provider_message_id="<m2@zylker>",
            sent_at=utcnow(),
        )
    )
    lapse(session, run_id)

    found = recovery.recover(session, utcnow(), max_attempts=1)
    session.commit()

    attempts = dict(session.execute(select(Invitation.id, Invitation.attempts)).all())
    status = dict(session.execute(select(Invitation.id, Invitation.status)).all())
    assert found.completed == [ids[1]]
    # With one attempt allowed, the tried rows are spent; the untried go out again.
    assert [status[i] for i in ids] == ["failed", "sent", "failed", "queued", "queued"]
    assert [attempts[i] for i in ids[3:]] == [0, 0]


def test_a_receipt_written_after_recovery_took_the_row_is_cleaned_up(session: Session) -> None:
    run_id, [chunk_id] = invite(session, 2)
    claim = expand_claimed(session, chunk_id)
    lapse(session, run_id)
    recovery.recover(session, utcnow(), max_attempts=5)
    session.commit()
    # The stalled worker resumes and writes the receipt of a send it had in flight.
    session.add(
        SendReceipt(
            invitation_id=claim.claim.rows[0].id,
            claim_token=claim.claim.token,
            provider_message_id="<late@zylker>",
            sent_at=utcnow(),
        )
    )
    session.commit()

    recovery.recover(session, utcnow(), max_attempts=5)
    session.commit()

    assert session.scalar(select(func.count()).select_from(SendReceipt)) == 0


def test_a_stale_receipt_does_not_block_the_next_claims_receipt(
    session: Session, tmp_path: Path
) -> None:
    run_id, [chunk_id] = invite(session, 3)
    claim = expand_claimed(session, chunk_id)
    lapse(session, run_id)
    found = recovery.recover(session, utcnow(), max_attempts=5)
    session.commit()
    # The stalled worker wakes and writes the receipt of the send it had in flight...
    stale = claim.claim.rows[0].id
    session.add(
        SendReceipt(
            invitation_id=stale,
            claim_token=claim.claim.token,
            provider_message_id="<late@zylker>",
            sent_at=utcnow(),
        )
    )
    session.commit()

    # ...before the row's next claim sends it and keeps its own receipt.
    result = dispatch.dispatch(
        session,
        found.invitation_ids or [r.id for r in claim.claim.rows],
        channels=outbox(tmp_path),
        config=CONFIG,
    )

    assert stale in result.sent
    assert statuses(session, run_id) == {"sent": 3}
