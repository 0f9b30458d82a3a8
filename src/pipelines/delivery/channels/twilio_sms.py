"""Twilio Programmable Messaging through twilio-python (``Messages.json`` create).

Twilio's API takes no DLT ids: for India the entity and template ids are registered with
Twilio out of band (bound to the sender), and Twilio matches each body against them. So
this channel sends only the final text, which must already match its template exactly.

Recovery asks ``find_sent`` (a ``Messages.json`` list, filtered by ``To`` and ``DateSent>``)
whether Twilio took a message whose receipt died with its worker.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from portalflow.models import OutcomeClass, OutcomeCode
from portalflow.pipelines.delivery.sms_outcomes import classify_twilio_api_error

from .base import SendFailure, describe_error
from .sms_base import LookupUnavailable, OutgoingSms

# Messages to one number since a claim that a lookup reads (one request). A number gets a
# handful from us; a full page without the one sought cannot prove it is not there.
LOOKUP_LIMIT = 50


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
                raise SendFailure(
                    "twilio_configuration",
                    str(exc),
                    temporary=False,
                    outcome_class=OutcomeClass.CONFIGURATION,
                ) from exc
            # Refused, reset or timed out. After a read timeout Twilio may have taken the
            # message; whether to risk a second copy is the caller's retry decision.
            raise SendFailure(
                OutcomeCode.CONNECTION_ERROR, describe_error(exc), temporary=True
            ) from exc
        return str(message.sid)

    def find_sent(self, to: str, since: datetime, matches: Callable[[str], bool]) -> str | None:
        """The SID of a Message to ``to`` sent at or after ``since`` whose body ``matches``.

        Twilio filters on ``date_sent``, set as it hands a message on to the carrier, so one
        still waiting in Twilio's queue may not be listed: it counts as not found. Raises
        `LookupUnavailable` on an error answer, a connection error or timeout (the client's
        own), or a full page without a match.
        """
        when = since.replace(tzinfo=UTC) if since.tzinfo is None else since.astimezone(UTC)
        try:
            messages = self.client.messages.list(to=to, date_sent_after=when, limit=LOOKUP_LIMIT)
            for message in messages:
                if message.body is not None and matches(message.body):
                    return str(message.sid)
        except (TwilioException, requests.RequestException, ValueError) as exc:
            # Only the kind of trouble: the exception's text holds the URL, hence the number.
            status = getattr(exc, "status", None)
            response = exc.args[1] if len(exc.args) > 1 else None
            status = status or getattr(response, "status_code", None)
            suffix = f" (HTTP {status})" if status else ""
            raise LookupUnavailable(f"twilio lookup: {type(exc).__name__}{suffix}") from exc
        if len(messages) >= LOOKUP_LIMIT:
            raise LookupUnavailable(f"twilio lookup: {LOOKUP_LIMIT} or more messages to read")
        return None

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
    return SendFailure.from_outcome(classify_twilio_api_error(twilio_code, status), detail)


def _as_int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None
