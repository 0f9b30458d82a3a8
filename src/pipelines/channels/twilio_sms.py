"""Twilio Programmable Messaging through twilio-python (``Messages.json`` create).

Twilio's API takes no DLT ids: for India the entity and template ids are registered with
Twilio out of band (bound to the sender), and Twilio matches each body against them. So
this channel sends only the final text, which must already match its template exactly.
"""

from __future__ import annotations

import requests
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from .base import CONNECTION_ERROR, SendFailure
from .sms_base import OutgoingSms

TWILIO_INVALID_NUMBER = "twilio_invalid_number"
TWILIO_OPTED_OUT = "twilio_opted_out"
TWILIO_FILTERED = "twilio_filtered"
TWILIO_REJECTED = "twilio_rejected"
TWILIO_CONFIGURATION = "twilio_configuration"
TWILIO_THROTTLED = "twilio_throttled"
TWILIO_UNKNOWN = "twilio_unknown"

# Twilio error code -> (our code, temporary). One line per entry of Twilio's error
# dictionary, https://www.twilio.com/docs/api/errors/<code>.
TWILIO_ERRORS: dict[int, tuple[str, bool]] = {
    20003: (TWILIO_CONFIGURATION, False),  # Authentication Error: wrong SID or token
    20404: (TWILIO_CONFIGURATION, False),  # Resource not found: wrong account or service SID
    20429: (TWILIO_THROTTLED, True),  # Too Many Requests
    21211: (TWILIO_INVALID_NUMBER, False),  # Invalid 'To' Phone Number
    21212: (TWILIO_CONFIGURATION, False),  # Invalid 'From' Number
    21408: (TWILIO_CONFIGURATION, False),  # Permission to send to this region not enabled
    21602: (TWILIO_REJECTED, False),  # Message body is required
    21606: (TWILIO_CONFIGURATION, False),  # 'From' is not a message-capable Twilio number
    21608: (TWILIO_CONFIGURATION, False),  # trial account: 'To' number not verified
    21610: (TWILIO_OPTED_OUT, False),  # Attempt to send to unsubscribed recipient (STOP)
    21614: (TWILIO_INVALID_NUMBER, False),  # 'To' number is not a valid mobile number
    21617: (TWILIO_REJECTED, False),  # body exceeds the 1600 character limit
    30001: (TWILIO_THROTTLED, True),  # Queue overflow
    30007: (TWILIO_FILTERED, False),  # Message filtered by the carrier (e.g. DLT mismatch)
}

# HTTP status -> (our code, temporary), for error codes the table above does not list.
TWILIO_STATUSES: dict[int, tuple[str, bool]] = {
    401: (TWILIO_CONFIGURATION, False),
    403: (TWILIO_CONFIGURATION, False),
    429: (TWILIO_THROTTLED, True),
}


class TwilioSmsChannel:
    """Sends through one Twilio account, from a sender or a Messaging Service.

    One HTTP session (connection pool) per instance; like every channel, an instance is
    used by one thread at a time.
    """

    name = "twilio"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        from_: str = "",
        messaging_service_sid: str = "",
        timeout: float = 10.0,
        api_base_url: str = "",
    ) -> None:
        if not account_sid or not auth_token:
            raise ValueError("Twilio needs an account SID and an auth token")
        if not from_ and not messaging_service_sid:
            raise ValueError("Twilio needs a 'from' sender or a messaging service SID")
        self.from_ = from_
        self.messaging_service_sid = messaging_service_sid
        # No retries at this level (requests' default, stated here): our actors own
        # retries with backoff, a cap and a row status; a hidden retry could double-send.
        self.http_client = TwilioHttpClient(timeout=timeout, max_retries=0)
        self.client = Client(
            account_sid,
            auth_token,
            http_client=self.http_client,
            # Settings come from PORTALFLOW_* only. The client falls back on os.environ
            # for an empty mapping, and TWILIO_EDGE / TWILIO_REGION would rewrite the host.
            environment={"PORTALFLOW_TWILIO": "configured by portalflow settings"},
        )
        if api_base_url:
            # The Api domain's base_url is the one place the host of Messages.json lives.
            self.client.api.base_url = api_base_url

    def send(self, sms: OutgoingSms) -> str:
        """Create the Message; return its SID ("SM...")."""
        try:
            message = self.client.messages.create(
                to=sms.to,
                body=sms.body,
                from_=self.from_ or None,
                messaging_service_sid=self.messaging_service_sid or None,
            )
        except (TwilioRestException, TwilioServiceException) as exc:
            raise classify_twilio_error(exc) from exc
        except requests.RequestException as exc:
            if isinstance(exc, ValueError):  # InvalidURL, MissingSchema: our base URL
                raise SendFailure(TWILIO_CONFIGURATION, str(exc), temporary=False) from exc
            # Refused, reset or timed out. After a read timeout Twilio may have taken the
            # message; whether to risk a second copy is the caller's retry decision.
            raise SendFailure(CONNECTION_ERROR, _describe(exc), temporary=True) from exc
        return str(message.sid)

    def close(self) -> None:
        """Close the HTTP session's pooled connections."""
        if self.http_client.session is not None:
            self.http_client.session.close()


def classify_twilio_error(exc: TwilioRestException | TwilioServiceException) -> SendFailure:
    """Turn a Twilio error answer (legacy or RFC 9457) into a `SendFailure`."""
    status = int(exc.status or 0)
    twilio_code = _as_int(exc.code)
    if isinstance(exc, TwilioServiceException):
        text = f"{exc.title}: {exc.detail}" if exc.detail else exc.title
    else:
        text = exc.msg
    detail = f"{twilio_code} (HTTP {status}) {text}"
    if twilio_code in TWILIO_ERRORS:
        code, temporary = TWILIO_ERRORS[twilio_code]
    elif status in TWILIO_STATUSES:
        code, temporary = TWILIO_STATUSES[status]
    else:
        code, temporary = TWILIO_UNKNOWN, status >= 500
    return SendFailure(code, detail, temporary=temporary)


def _as_int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
