"""Email and SMS channels, one interface each, chosen by ``PORTALFLOW_{EMAIL,SMS}_CHANNEL``."""

from __future__ import annotations

from portalflow.config import Settings, SettingsError

from .aws_sms import AwsSmsChannel
from .base import EmailChannel, OutgoingEmail, SendFailure
from .outbox import OutboxChannel
from .ses import SesChannel
from .sms_base import LookupUnavailable, OutgoingSms, SmsChannel
from .sms_outbox import SmsOutboxChannel
from .smtp import SmtpChannel
from .twilio_sms import TwilioSmsChannel

__all__ = [
    "EmailChannel",
    "LookupUnavailable",
    "OutboxChannel",
    "OutgoingEmail",
    "OutgoingSms",
    "SendFailure",
    "SmsChannel",
    "SmsOutboxChannel",
    "SmtpChannel",
    "build_email_channel",
    "build_sms_channel",
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
            return SesChannel(
                settings.ses_region,
                endpoint_url=settings.ses_endpoint_url,
                configuration_set=settings.ses_configuration_set,
                timeout=settings.ses_timeout,
            )
    raise ValueError(f"unknown email channel {settings.email_channel!r}")


def build_sms_channel(settings: Settings) -> SmsChannel:
    """A new channel of the kind ``settings.sms_channel`` names (outbox, twilio or aws)."""
    match settings.sms_channel:
        case "outbox":
            return SmsOutboxChannel(settings.sms_outbox_dir)
        case "twilio":
            if not settings.twilio_account_sid or not settings.twilio_auth_token:
                raise SettingsError(
                    "PORTALFLOW_SMS_CHANNEL=twilio needs PORTALFLOW_TWILIO_ACCOUNT_SID"
                    " and PORTALFLOW_TWILIO_AUTH_TOKEN"
                )
            if not settings.twilio_from and not settings.twilio_messaging_service_sid:
                raise SettingsError(
                    "PORTALFLOW_SMS_CHANNEL=twilio needs PORTALFLOW_TWILIO_FROM (a number or"
                    " sender id) or PORTALFLOW_TWILIO_MESSAGING_SERVICE_SID"
                )
            return TwilioSmsChannel(
                settings.twilio_account_sid,
                settings.twilio_auth_token,
                from_=settings.twilio_from,
                messaging_service_sid=settings.twilio_messaging_service_sid,
                timeout=settings.twilio_timeout,
                api_base_url=settings.twilio_api_base_url,
            )
        case "aws":
            return AwsSmsChannel(
                settings.aws_sms_region,
                endpoint_url=settings.aws_sms_endpoint_url,
                origination_identity=settings.aws_sms_origination_identity,
                timeout=settings.aws_sms_timeout,
            )
    raise ValueError(f"unknown SMS channel {settings.sms_channel!r}")
