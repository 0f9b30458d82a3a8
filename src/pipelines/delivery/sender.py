"""Sending one claimed row: render, build and check, debit SMS credits, call the provider.

Any error while rendering, building or checking one message is that row's failure
(``render_failed``, or ``template_too_slow`` / ``template_too_large`` past a render bound),
so the rest of its batch goes on. Before each provider call the claim is checked on the
local clock; a lapsing claim sends nothing more. An SMS's credits are debited, and the
debit noted on the row, in one commit before the provider call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy import update
from sqlalchemy.orm import Session

from portalflow.models import (
    Channel,
    CrmUser,
    Invitation,
    InvitationStatus,
    Org,
    OutcomeClass,
    PortalUserType,
    SendFailureCode,
    utcnow,
)
from portalflow.pipelines.content.render_limits import TemplateLimitExceeded
from portalflow.pipelines.content.sms_rendering import CheckedSms
from portalflow.pipelines.delivery.channels.base import OutgoingEmail, SendFailure, describe_error
from portalflow.pipelines.delivery.channels.bundle import Channels
from portalflow.pipelines.delivery.claims import Claim, ClaimedRow
from portalflow.pipelines.delivery.outgoing_email import EmailBuilder
from portalflow.pipelines.delivery.outgoing_sms import PreparedSms, SmsBuilder, short_link
from portalflow.pipelines.invitations.invitation_states import has_status
from portalflow.pipelines.ops import latency

from . import credits
from .dispatch_config import DispatchConfig, short_link_domain

K = TypeVar("K")


V = TypeVar("V")


@dataclass(slots=True)
class SendOutcome:
    """What came of sending one claimed row."""

    row: ClaimedRow
    message_id: str | None = None
    sent_at: datetime | None = None
    failure: SendFailure | None = None
    sms: CheckedSms | None = None
    dlt_template_id: str | None = None
    debited: int = 0  # SMS credits taken for this attempt
    fenced: bool = False  # not sent: the claim no longer held at the provider call


class Sender:
    """Sends one claimed row at a time through its channel, caching per-dispatch lookups.

    ``send`` never raises for one message's trouble: whatever goes wrong is that row's
    outcome, so the rest of its batch goes on.
    """

    def __init__(
        self, session: Session, channels: Channels, config: DispatchConfig, claim: Claim
    ) -> None:
        self.session = session
        self.channels = channels
        self.config = config
        self.claim = claim
        self.emails = EmailBuilder(
            session, config.portal_base_url, config.default_from, link_key=config.link_key
        )
        self.texts = SmsBuilder(session, config.variable_limits)
        # Strong references: the session's identity map alone would let these be collected.
        self.orgs: dict[int, Org] = {}
        self.user_types: dict[int, PortalUserType] = {}
        self.inviters: dict[int, CrmUser | None] = {}
        self.link_domains: dict[int, str] = {}
        # (org, channel) found misconfigured during this dispatch: nothing more goes out.
        self.misconfigured: set[tuple[int, Channel]] = set()

    def send(self, row: ClaimedRow, now: Callable[[], datetime]) -> SendOutcome:
        outcome = SendOutcome(row)
        route = (row.org_id, row.channel)
        try:
            if row.channel == Channel.SMS:
                prepared = self._prepare_sms(row, outcome)
                if not self._debit(row, prepared, outcome):
                    return outcome
                if not self.claim.holds():
                    return self._fenced(outcome)
                outcome.message_id = self._call(
                    lambda: self.channels.sms.send(prepared.sms), Channel.SMS
                )
            else:
                email = self._prepare_email(row)
                if not self.claim.holds():
                    return self._fenced(outcome)
                outcome.message_id = self._call(
                    lambda: self.channels.email.send(email), Channel.EMAIL
                )
        except SendFailure as failure:
            outcome.failure = failure
            if failure.outcome_class == OutcomeClass.CONFIGURATION:
                self.misconfigured.add(route)
            return outcome
        outcome.sent_at = now()
        return outcome

    def _fenced(self, outcome: SendOutcome) -> SendOutcome:
        outcome.fenced = True
        return outcome

    def _org(self, row: ClaimedRow) -> Org:
        org = _cached(self.orgs, row.org_id, lambda key: self.session.get_one(Org, key))
        if (row.org_id, row.channel) in self.misconfigured:
            raise SendFailure(
                SendFailureCode.CHANNEL_PAUSED,
                f"the {row.channel.value} channel failed with a configuration error",
                temporary=False,
                outcome_class=OutcomeClass.CONFIGURATION,
            )
        if org.portal is None or row.record is None or not row.address:
            raise SendFailure(
                SendFailureCode.PROVIDER_REJECTED.value,
                "the invitation lost its portal, record or address before the send",
                temporary=False,
            )
        return org

    def _prepare_email(self, row: ClaimedRow) -> OutgoingEmail:
        org = self._org(row)
        assert row.record is not None
        with _render_failures():
            user_type = _cached(
                self.user_types,
                row.user_type_id,
                lambda key: self.session.get_one(PortalUserType, key),
            )
            inviter = _cached(
                self.inviters,
                row.invited_by_id or 0,
                lambda key: self.session.get(CrmUser, key),
            )
            return self.emails.build(row, row.record, org, user_type, inviter, row.token)

    def _prepare_sms(self, row: ClaimedRow, outcome: SendOutcome) -> PreparedSms:
        org = self._org(row)
        assert row.record is not None
        with _render_failures():
            domain = _cached(
                self.link_domains,
                org.id,
                lambda key: short_link_domain(self.session, key, self.config),
            )
            link = short_link(domain, row.token)
            prepared = self.texts.build(row, row.record, org, link, code=row.token)
        outcome.sms = prepared.checked
        outcome.dlt_template_id = prepared.sms.dlt_template_id
        return prepared

    def _debit(self, row: ClaimedRow, prepared: PreparedSms, outcome: SendOutcome) -> bool:
        """Take the credits and note them, and the message's size, on the row; commits.

        The debit is durable before the provider call, so a crash cannot send for free, and
        it is on the row, so whoever settles the attempt (this worker, or recovery after a
        crash) gives back exactly what an attempt that never reached the provider took.
        False when the row is no longer ours (nothing is taken then).
        """
        segments = prepared.checked.segments
        if not credits.debit(self.session, row.org_id, segments):
            self.session.rollback()
            raise SendFailure(
                SendFailureCode.INSUFFICIENT_SMS_CREDITS.value,
                f"{self.orgs[row.org_id].name} has fewer than {segments} SMS credits left",
                temporary=False,
            )
        noted = self.session.execute(
            update(Invitation)
            .where(
                Invitation.id == row.id,
                Invitation.claim_token == self.claim.token,
                has_status(InvitationStatus.SENDING),
            )
            .values(
                sms_debited=segments,
                sms_segments=segments,
                sms_encoding=prepared.checked.encoding,
                dlt_template_id=prepared.sms.dlt_template_id,
            )
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        if noted != 1:
            self.session.rollback()
            self.claim.lapsed = True
            outcome.fenced = True
            return False
        self.session.commit()
        outcome.debited = segments
        return True

    @staticmethod
    def _call(send: Callable[[], str], channel: Channel) -> str:
        """The provider call; an error the channel does not classify is a temporary failure.

        Its duration, failed or not, goes to the ops page's latency chart."""
        started = time.perf_counter()
        try:
            return send()
        except SendFailure:
            raise
        except Exception as exc:
            raise SendFailure(
                SendFailureCode.SEND_ERROR.value, describe_error(exc)[:1000], temporary=True
            ) from exc
        finally:
            latency.record(channel.value, time.perf_counter() - started, utcnow())


@contextmanager
def _render_failures() -> Iterator[None]:
    """Turn any error while rendering, building or checking one message into its failure."""
    try:
        yield
    except SendFailure:
        raise
    except TemplateLimitExceeded as exc:  # a render past its time or size bound: its own code
        raise SendFailure(exc.code.value, str(exc)[:1000], temporary=False) from exc
    except Exception as exc:
        raise SendFailure(
            SendFailureCode.RENDER_FAILED.value, describe_error(exc)[:1000], temporary=False
        ) from exc


def _cached(cache: dict[K, V], key: K, load: Callable[[K], V]) -> V:
    if key not in cache:
        cache[key] = load(key)
    return cache[key]
