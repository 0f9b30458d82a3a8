"""Licence alerts for admins: listing them, and emailing each one once to the org's admin.

Alerts are raised by :mod:`.reconciliation`. Emailing claims each alert first (sets
``emailed_at`` and commits) and only then sends, so two senders at once, or a run after a
crash, never send one alert twice; an alert whose send fails is released again (its
``emailed_at`` cleared) for the next run. Orgs without an ``admin_email`` are skipped.
"""

from __future__ import annotations

import html
import logging
from datetime import date

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portalflow.config import Settings
from portalflow.models import LicenceAlert, Org, utcnow
from portalflow.pipelines.content.message import build_message
from portalflow.pipelines.content.rendering import RenderedEmail
from portalflow.pipelines.delivery.channels import OutgoingEmail, SendFailure
from portalflow.pipelines.delivery.channels.bundle import Channels
from portalflow.pipelines.delivery.channels.rate_limit import send_rates
from portalflow.pipelines.delivery.outgoing_email import DEFAULT_FROM
from portalflow.pipelines.errors import InvalidInput

log = logging.getLogger(__name__)

FROM_NAME = "Portal licences"
SEND_BATCH = 100
# OutgoingEmail names an invitation; a licence alert is none (the outbox file starts "0-").
NO_INVITATION = 0
SUBJECTS = {
    "overage": "More portal users than licences",
    "near_limit": "Portal user licences nearly used up",
    "trial_expired": "Your portal trial has ended",
    "deletion_scheduled": "Your portal's details are scheduled for deletion",
}


def list_alerts(
    session: Session, org_id: int | None = None, since: date | None = None
) -> list[LicenceAlert]:
    """Alerts, oldest day first; only one org's, or only those for ``since`` and later."""
    query = select(LicenceAlert).order_by(LicenceAlert.day, LicenceAlert.id)
    if org_id is not None:
        query = query.where(LicenceAlert.org_id == org_id)
    if since is not None:
        query = query.where(LicenceAlert.day >= since)
    return list(session.scalars(query))


def email_pending_alerts(
    session: Session, settings: Settings, channels: Channels | None = None
) -> int:
    """Email every alert not emailed yet to its org's admin address; the number sent.

    Commits as it goes (each claim, each release). A send failure leaves that alert for the
    next run and goes on with the others. The email goes through ``channels`` (a worker's,
    sharing its send-rate limiter), or channels built from ``settings``: paced by the same
    shared schedule as invitations either way, so alerts never push a provider past quota.
    """
    rates = send_rates(settings) if channels is None else None
    channels = channels or Channels.from_settings(settings, rates)
    sent = 0
    last_id = 0
    try:
        while True:
            rows = session.execute(
                select(LicenceAlert, Org.name, Org.admin_email)
                .join(Org, Org.id == LicenceAlert.org_id)
                .where(
                    LicenceAlert.emailed_at.is_(None),
                    Org.admin_email.is_not(None),
                    Org.admin_email != "",
                    LicenceAlert.id > last_id,
                )
                .order_by(LicenceAlert.id)
                .limit(SEND_BATCH)
            ).all()
            session.commit()
            if not rows:
                break
            last_id = rows[-1][0].id
            for alert, org_name, admin_email in rows:
                try:
                    email = alert_email(alert, org_name, admin_email)
                except InvalidInput as exc:  # an admin address no message can go to
                    log.warning("licence alert %d not emailed: %s", alert.id, exc)
                    continue
                if not _claim(session, alert.id):
                    continue  # another sender took it
                try:
                    channels.email.send(email)
                except SendFailure as exc:
                    log.warning("licence alert %d not emailed: %s", alert.id, exc)
                    _release(session, alert.id)
                    continue
                sent += 1
    finally:
        if rates is not None:  # ours, not the caller's
            channels.close()
            rates.close()
    return sent


def alert_email(alert: LicenceAlert, org_name: str, recipient: str) -> OutgoingEmail:
    """The message telling ``recipient`` (the org's admin) about one alert."""
    subject = f"{SUBJECTS.get(alert.kind, 'Portal licence alert')} ({org_name})"
    text = (
        f"{org_name}: {alert.detail}\n\n"
        f"Alert {alert.id}, {alert.kind}, {alert.day.isoformat()}.\n"
        "List every alert with: portalflow licences alerts --org "
        f"{alert.org_id}\n"
    )
    body = (
        f"<p><strong>{html.escape(org_name)}</strong>: {html.escape(alert.detail)}</p>"
        f"<p>Alert {alert.id}, {html.escape(alert.kind)}, {alert.day.isoformat()}.</p>"
    )
    built = build_message(
        rendered=RenderedEmail(subject=subject, html=body, text=text),
        from_address=DEFAULT_FROM,
        from_name=FROM_NAME,
        reply_to=None,
        recipient=recipient,
        headers={"X-Portalflow-Licence-Alert": str(alert.id)},
    )
    return OutgoingEmail(
        invitation_id=NO_INVITATION,
        envelope_from=built.envelope_from,
        recipient=built.recipient,
        raw=built.raw,
        message_id=built.message_id,
    )


def _claim(session: Session, alert_id: int) -> bool:
    claimed = session.execute(
        update(LicenceAlert)
        .where(LicenceAlert.id == alert_id, LicenceAlert.emailed_at.is_(None))
        .values(emailed_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return claimed.rowcount == 1


def _release(session: Session, alert_id: int) -> None:
    session.execute(
        update(LicenceAlert)
        .where(LicenceAlert.id == alert_id)
        .values(emailed_at=None)
        .execution_options(synchronize_session=False)
    )
    session.commit()
