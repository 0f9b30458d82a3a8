"""Email channels behind one interface, chosen by ``PORTALFLOW_EMAIL_CHANNEL``."""

from __future__ import annotations

from portalflow.config import Settings

from .base import EmailChannel, OutgoingEmail, SendFailure
from .outbox import OutboxChannel
from .smtp import SmtpChannel

__all__ = [
    "EmailChannel",
    "OutboxChannel",
    "OutgoingEmail",
    "SendFailure",
    "SmtpChannel",
    "build_email_channel",
]


def build_email_channel(settings: Settings) -> EmailChannel:
    """A new channel of the kind ``settings.email_channel`` names (outbox, smtp or ses)."""
    match settings.email_channel:
        case "outbox":
            return OutboxChannel(settings.outbox_dir)
        case "smtp":
            return SmtpChannel(
                settings.smtp_host,
                settings.smtp_port,
                tls=settings.smtp_tls,  # type: ignore[arg-type]  # Settings checked it
                username=settings.smtp_username,
                password=settings.smtp_password,
                timeout=settings.smtp_timeout,
            )
        case "ses":
            # Imported here because boto3 is slow to import and only SES needs it.
            from .ses import SesChannel

            return SesChannel(
                settings.ses_region,
                endpoint_url=settings.ses_endpoint_url,
                configuration_set=settings.ses_configuration_set,
                timeout=settings.ses_timeout,
            )
    raise ValueError(f"unknown email channel {settings.email_channel!r}")
