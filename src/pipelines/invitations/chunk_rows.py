"""A chunk's rows: its invitations, one INSERT per kind, and the portal users they make.

Refused records are written ``failed`` with their reason; eligible ones ``queued``, or
already claimed (``sending``, each with its token's hash and the claim's deadline) for the
worker that expands the chunk to send (:class:`ClaimOnWrite`). Each eligible record
becomes a portal user (status invited; a removed user's row comes back). Core statements
with plain values: none of the ORM's per-row bookkeeping.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portalflow.models import (
    BulkChunk,
    BulkRun,
    Channel,
    Invitation,
    InvitationPreference,
    PortalUser,
    PortalUserStatus,
    PortalUserType,
    WebhookEventType,
    utcnow,
)
from portalflow.pipelines import bulk_sql
from portalflow.pipelines.crm_webhooks import outbox
from portalflow.pipelines.delivery.claims import Claim, ClaimedRow
from portalflow.pipelines.licensing import licences
from portalflow.pipelines.users import lifecycle

from .eligibility import Decision
from .invitation_states import Transition, initial_status


@dataclass
class ClaimOnWrite:
    """Write a chunk's eligible rows already claimed, for the worker that expands it to send.

    ``issue(org_id, channel)`` gives each row its (plain token, hash); the claimed rows, with
    their tokens and record values, land in ``claim.rows`` after the chunk's commit.
    """

    claim: Claim
    issue: Callable[[int, Channel], tuple[str, str]]


def write_invitations(
    session: Session,
    run: BulkRun,
    chunk: BulkChunk,
    user_type: PortalUserType,
    decisions: Sequence[Decision],
    claim: ClaimOnWrite | None,
) -> list[ClaimedRow]:
    """The chunk's invitations, one INSERT for the refused and one for the eligible rows
    (Core: plain values need none of the ORM's per-row bookkeeping); the claimed rows."""
    eligible = [decision for decision in decisions if decision.eligible]
    channel = _channel(user_type)
    portal_user_ids = _claim_portal_users(session, run, eligible, channel)
    now = utcnow()
    common = {
        "org_id": run.org_id,
        "user_type_id": run.user_type_id,
        "bulk_run_id": run.id,
        "bulk_chunk_id": chunk.id,
        "invited_by_id": run.inviter_id,
        "kind": run.kind,
        "channel": channel,
        "language": run.language,
        "created_at": now,
        "updated_at": now,
    }

    def row(decision: Decision) -> dict[str, object]:
        record_id = decision.record.id if decision.record else None
        return {
            "crm_id": decision.crm_id,
            "record_id": record_id,
            "portal_user_id": portal_user_ids.get(record_id) if record_id else None,
            "address": decision.address,
            "failure_code": decision.reason.value if decision.reason else None,
            "failure_detail": decision.detail,
        }

    refused = [row(decision) for decision in decisions if not decision.eligible]
    refused_ids = _insert(
        session, refused, {**common, "status": initial_status(Transition.REFUSE), "attempts": 0}
    )
    if claim is None:
        queued = [row(decision) for decision in eligible]
        queued_ids = _insert(
            session, queued, {**common, "status": initial_status(Transition.ENQUEUE), "attempts": 0}
        )
        claimed: list[ClaimedRow] = []
        written = list(queued_ids.values())
    else:
        claimed = _insert_claimed(session, run, channel, eligible, row, common, claim)
        written = [claimed_row.id for claimed_row in claimed]
    _announce(session, run, list(refused_ids.values()), written, now)
    _count_in_run(session, run, queued=len(eligible), failed=len(decisions) - len(eligible))
    return claimed


def _channel(user_type: PortalUserType) -> Channel:
    """SMS for a type that invites by phone, else email."""
    if user_type.invitation_preference == InvitationPreference.PHONE:
        return Channel.SMS
    return Channel.EMAIL


def _count_in_run(session: Session, run: BulkRun, *, queued: int, failed: int) -> None:
    """The chunk's rows in its run's totals: eligible ones in flight, refused ones failed."""
    session.execute(
        update(BulkRun)
        .where(BulkRun.id == run.id)
        .values(queued=BulkRun.queued + queued, failed=BulkRun.failed + failed)
        .execution_options(synchronize_session=False)
    )


def _announce(
    session: Session, run: BulkRun, refused: list[int], written: list[int], now: datetime
) -> None:
    """The CRM's webhook events of the chunk: refused invitations failed, the others queued."""
    outbox.invitations_changed(
        session,
        {WebhookEventType.INVITATION_FAILED: refused, WebhookEventType.INVITATION_QUEUED: written},
        org_id=run.org_id,
        now=now,
    )


def _insert(
    session: Session, rows: list[dict[str, object]], constants: dict[str, object]
) -> dict[str, int]:
    """Insert invitation rows sharing ``constants`` (one statement); CRM id -> new id.

    CRM ids are unique within a run, so they match the new ids to their rows.
    """
    written = bulk_sql.insert_rows(
        session, Invitation.__table__, rows, returning=("id", "crm_id"), constants=constants
    )
    return {crm_id: invitation_id for invitation_id, crm_id in written}


def _insert_claimed(
    session: Session,
    run: BulkRun,
    channel: Channel,
    eligible: Sequence[Decision],
    row: Callable[[Decision], dict[str, object]],
    common: dict[str, object],
    claim: ClaimOnWrite,
) -> list[ClaimedRow]:
    """Insert the eligible rows already claimed, each with its token's hash; the claimed rows."""
    rows, tokens = [], []
    for decision in eligible:
        token, digest = claim.issue(run.org_id, channel)
        rows.append({**row(decision), "token_hash": digest})
        tokens.append(token)
    ids = _insert(
        session,
        rows,
        {
            **common,
            "status": initial_status(Transition.CLAIM_ON_WRITE),
            "attempts": 1,
            "claim_token": claim.claim.token,
            "claimed_at": common["created_at"],
            # From the moment of writing: the lock wait before it does not eat the lease.
            "claim_deadline": claim.claim.restart(),
        },
    )
    claimed = [
        ClaimedRow(
            id=ids[values["crm_id"]],  # type: ignore[index]
            org_id=run.org_id,
            user_type_id=run.user_type_id,
            channel=channel,
            kind=run.kind,
            language=run.language,
            address=decision.address,
            invited_by_id=run.inviter_id,
            attempts=1,
            bulk_run_id=run.id,
            portal_user_id=values["portal_user_id"],  # type: ignore[arg-type]
            record=decision.record,
            token=token,
        )
        for decision, values, token in zip(eligible, rows, tokens, strict=True)
    ]
    claimed.sort(key=lambda claimed_row: claimed_row.id)  # sent in id order (recovery relies on it)
    return claimed


def _claim_portal_users(
    session: Session, run: BulkRun, eligible: Sequence[Decision], channel: Channel
) -> dict[int, int]:
    """Make each eligible record a portal user (status invited); record id -> portal user id."""
    if not eligible:
        return {}
    record_ids = [decision.record.id for decision in eligible if decision.record]
    addresses = {decision.record.id: decision.address for decision in eligible if decision.record}
    # The address lands in the portal user's login column: email, or phone for SMS types.
    column = "phone" if channel == Channel.SMS else "email"
    # A removed user keeps its row; inviting the record again brings that row back.
    removed = dict(
        session.execute(
            select(PortalUser.record_id, PortalUser.id).where(
                bulk_sql.among(session, PortalUser.record_id, record_ids),
                PortalUser.status == PortalUserStatus.REMOVED,
            )
        ).all()
    )
    now = utcnow()
    revived = lifecycle.next_status(PortalUserStatus.REMOVED, lifecycle.Action.INVITE_AGAIN)
    if removed:
        session.execute(
            update(PortalUser),
            [
                {
                    "id": portal_user_id,
                    "user_type_id": run.user_type_id,
                    "status": revived,
                    "status_changed_at": now,
                    column: addresses[record_id],
                    "invited_by_id": run.inviter_id,
                    "confirmed_at": None,
                    "updated_at": now,
                }
                for record_id, portal_user_id in removed.items()
            ],
        )
    new_rows = [
        {"record_id": record_id, column: addresses[record_id]}
        for record_id in record_ids
        if record_id not in removed
    ]
    shared = {
        "org_id": run.org_id,
        "user_type_id": run.user_type_id,
        "status": PortalUserStatus.INVITED,  # a new user starts invited
        "status_changed_at": now,
        "invited_by_id": run.inviter_id,
        "created_at": now,
        "updated_at": now,
    }
    written = bulk_sql.insert_rows(
        session, PortalUser.__table__, new_rows, returning=("record_id", "id"), constants=shared
    )
    created = {record_id: portal_user_id for record_id, portal_user_id in written}
    licences.sync_holders(session, [run.user_type_id])
    return {**removed, **created}
