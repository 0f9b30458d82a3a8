"""Bulk invite: a request becomes a run of chunks; each chunk becomes invitation rows.

Every invite, even of one record, is a run: the totals and the failed invitees of any
request are read the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session

from portalflow.models import (
    BulkChunk,
    BulkRun,
    BulkRunStatus,
    Channel,
    ChunkStatus,
    CrmRecord,
    EmailKind,
    Invitation,
    InvitationPreference,
    InvitationStatus,
    PortalUser,
    PortalUserStatus,
    PortalUserType,
    WebhookEventType,
    utcnow,
)
from portalflow.models.records import RECORD_COLUMNS
from portalflow.pipelines.crm_webhooks import outbox

from . import bulk_sql, eligibility, licences, lifecycle, orgs
from .claims import Claim, ClaimedRow
from .eligibility import Decision
from .errors import InvalidInput, NotFound
from .invitation_states import Transition, has_status, initial_status
from .rendering import SUPPORTED_LANGUAGES

MAX_CRM_ID_LENGTH = 64


@dataclass(frozen=True)
class StartedRun:
    run_id: int
    chunk_ids: list[int]
    requested: int


def start_bulk_run(
    session: Session,
    *,
    org_id: int,
    user_type_id: int,
    inviter_id: int,
    crm_ids: Iterable[str] | None,
    language: str = "en",
    chunk_size: int = 500,
) -> StartedRun:
    """Write a run and its chunks (flushed; the caller commits, then enqueues the chunks).

    ``crm_ids=None`` invites every record of the type's module that is in no portal and
    has an address, as the bulk list of the spec does.
    """
    org = orgs.get_org(session, org_id)
    user_type = orgs.get_user_type(session, org_id, user_type_id)
    orgs.get_crm_user(session, org_id, inviter_id)
    if language not in SUPPORTED_LANGUAGES:
        choices = ", ".join(SUPPORTED_LANGUAGES)
        raise InvalidInput(f"language {language!r} is not supported; choose one of {choices}")
    if not user_type.enabled:
        raise InvalidInput(f"user type {user_type.name!r} is disabled")
    if chunk_size < 1:
        raise InvalidInput("chunk size must be at least 1")
    ids = _clean_ids(crm_ids) if crm_ids is not None else _uninvited_ids(session, user_type)
    if not ids:
        raise InvalidInput("there are no records to invite")
    run = BulkRun(
        org_id=org.id,
        user_type_id=user_type.id,
        inviter_id=inviter_id,
        kind=EmailKind.ACCEPT_INVITATION,
        language=language,
        requested=len(ids),
    )
    session.add(run)
    session.flush()
    chunks = [
        BulkChunk(bulk_run_id=run.id, seq=seq, crm_ids=ids[start : start + chunk_size])
        for seq, start in enumerate(range(0, len(ids), chunk_size))
    ]
    session.add_all(chunks)
    session.flush()
    return StartedRun(run.id, [chunk.id for chunk in chunks], len(ids))


@dataclass
class ClaimOnWrite:
    """Write a chunk's eligible rows already claimed, for the worker that expands it to send.

    ``issue(org_id, channel)`` gives each row its (plain token, hash); the claimed rows, with
    their tokens and record values, land in ``claim.rows`` after the chunk's commit.
    """

    claim: Claim
    issue: Callable[[int, Channel], tuple[str, str]]


def expand_chunk(
    session: Session,
    chunk_id: int,
    *,
    extra_disposable_domains: Iterable[str] = (),
    claim: ClaimOnWrite | None = None,
) -> list[int]:
    """Decide a chunk's records and write their invitations; returns the queued ids to send.

    With ``claim`` the eligible rows are written claimed (``sending``, token hash, deadline)
    and handed over in ``claim.claim.rows``, saving the queue-claim round of every row;
    without it they are written ``queued``. Idempotent: a chunk already expanded writes
    nothing and returns its still-queued ids, so a redelivered chunk message resumes the
    sending where a dead worker left it (its claimed rows come back through recovery).
    Commits.
    """
    chunk = session.get(BulkChunk, chunk_id, with_for_update=True)
    if chunk is None:
        raise NotFound(f"bulk chunk {chunk_id} does not exist")
    if chunk.status == ChunkStatus.PENDING:
        run = session.get_one(BulkRun, chunk.bulk_run_id)
        org = orgs.get_org(session, run.org_id)
        user_type = orgs.get_user_type(session, run.org_id, run.user_type_id)
        decisions = eligibility.decide(
            session,
            org=org,
            user_type=user_type,
            inviter=orgs.get_crm_user(session, run.org_id, run.inviter_id),
            crm_ids=chunk.crm_ids,
            extra_disposable_domains=extra_disposable_domains,
        )
        licences.lock_user_type(session, run.user_type_id)
        decisions = eligibility.settle(session, org, user_type, decisions)
        claimed = _write_invitations(session, run, chunk, user_type, decisions, claim)
        chunk.status = ChunkStatus.EXPANDED
        session.flush()
        finish_if_done(session, [run.id])
        session.commit()
        if claim is not None:
            claim.claim.rows = claimed
            return []
    queued = list(
        session.scalars(
            select(Invitation.id)
            .where(
                Invitation.bulk_chunk_id == chunk_id,
                has_status(InvitationStatus.QUEUED),
            )
            .order_by(Invitation.id)
        )
    )
    session.commit()
    return queued


def finish_if_done(session: Session, run_ids: Iterable[int]) -> None:
    """Mark runs completed once every chunk is expanded and nothing is left in flight."""
    run_ids = list(run_ids)
    if not run_ids:
        return
    pending_chunk = exists().where(
        BulkChunk.bulk_run_id == BulkRun.id, BulkChunk.status == ChunkStatus.PENDING
    )
    session.execute(
        update(BulkRun)
        .where(
            BulkRun.id.in_(run_ids),
            BulkRun.status == BulkRunStatus.RUNNING,
            BulkRun.queued == 0,
            ~pending_chunk,
        )
        .values(status=BulkRunStatus.COMPLETED, finished_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def _write_invitations(
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
    channel = (
        Channel.SMS
        if user_type.invitation_preference == InvitationPreference.PHONE
        else Channel.EMAIL
    )
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
    outbox.invitations_changed(
        session,
        {
            WebhookEventType.INVITATION_FAILED: list(refused_ids.values()),
            WebhookEventType.INVITATION_QUEUED: written,
        },
        org_id=run.org_id,
        now=now,
    )
    session.execute(
        update(BulkRun)
        .where(BulkRun.id == run.id)
        .values(
            queued=BulkRun.queued + len(eligible),
            failed=BulkRun.failed + (len(decisions) - len(eligible)),
        )
        .execution_options(synchronize_session=False)
    )
    return claimed


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


def _clean_ids(crm_ids: Iterable[str]) -> list[str]:
    """Stripped, de-duplicated (first occurrence wins), and each a plausible CRM id."""
    seen: dict[str, None] = {}
    for raw in crm_ids:
        crm_id = str(raw).strip()
        if not crm_id:
            raise InvalidInput("a record id is empty")
        if len(crm_id) > MAX_CRM_ID_LENGTH:
            raise InvalidInput(f"record id {crm_id[:20]!r}... is longer than {MAX_CRM_ID_LENGTH}")
        seen.setdefault(crm_id, None)
    return list(seen)


def _uninvited_ids(session: Session, user_type: PortalUserType) -> list[str]:
    """The spec's bulk list: the module's records in no portal, with an address."""
    in_a_portal = exists().where(
        PortalUser.record_id == CrmRecord.id, PortalUser.status != PortalUserStatus.REMOVED
    )
    query = select(CrmRecord.crm_id).where(
        CrmRecord.org_id == user_type.org_id,
        CrmRecord.module == user_type.module,
        CrmRecord.deleted.is_(False),
        CrmRecord.in_recycle_bin.is_(False),
        ~in_a_portal,
    )
    if user_type.invitation_field in RECORD_COLUMNS:
        column = getattr(CrmRecord, user_type.invitation_field)
        query = query.where(func.coalesce(func.trim(column), "") != "")
    return list(session.scalars(query.order_by(CrmRecord.id)))
