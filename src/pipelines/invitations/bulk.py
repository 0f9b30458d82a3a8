"""Bulk invite: a request becomes a run of chunks; each chunk becomes invitation rows.

Every invite, even of one record, is a run: the totals and the failed invitees of any
request are read the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session

from portalflow.models import (
    BulkChunk,
    BulkRun,
    BulkRunStatus,
    ChunkStatus,
    CrmRecord,
    EmailKind,
    Invitation,
    InvitationStatus,
    PortalUser,
    PortalUserStatus,
    PortalUserType,
    utcnow,
)
from portalflow.models.records import RECORD_COLUMNS
from portalflow.pipelines.content.rendering import SUPPORTED_LANGUAGES
from portalflow.pipelines.errors import InvalidInput, NotFound
from portalflow.pipelines.licensing import licences
from portalflow.pipelines.tenancy import orgs

from . import eligibility
from .chunk_rows import ClaimOnWrite, write_invitations
from .invitation_states import has_status

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
        claimed = write_invitations(session, run, chunk, user_type, decisions, claim)
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
