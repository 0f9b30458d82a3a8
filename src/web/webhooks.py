"""Provider webhooks: verify the caller, store the raw event, commit, then enqueue.

No rule lives here: what an event means is decided later by the ``process_provider_event``
actor. The handlers answer fast so a slow classifier never makes a provider time out.

- ``POST /webhooks/ses``: Amazon SNS (SES bounce / complaint / delivery notifications),
  only from the topics of ``PORTALFLOW_SNS_TOPIC_ARNS`` and within the replay window
  (:func:`portalflow.pipelines.delivery.sns.check_sns_message`).
- ``POST /webhooks/twilio``: Twilio message status callbacks.
"""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session, sessionmaker
from twilio.request_validator import RequestValidator

from portalflow.models import ProblemCode
from portalflow.pipelines.delivery import webhook_payloads
from portalflow.pipelines.delivery.sns import (
    CertificateUnavailable,
    SnsMessageRefused,
    SnsSignatureError,
    allowed_subscribe_url,
    check_sns_message,
    parse_topic_arns,
    verify_sns_message,
)
from portalflow.pipelines.delivery.webhook_payloads import IncomingEvent
from portalflow.workers import submit

from .problems import STATUS_CODES, problem_response

log = logging.getLogger(__name__)

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

MAX_BODY_BYTES = 1024 * 1024  # an SNS message is at most 256 KiB; Twilio's are tiny
SUBSCRIBE_TIMEOUT = 5.0
TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


@dataclass(frozen=True)
class WebhookContext:
    """What the handlers need, built once by :func:`portalflow.web.app.create_app`."""

    session_factory: sessionmaker[Session]
    enqueue: Callable[[int], None]
    certificate_loader: Callable[[str], bytes]
    twilio_auth_token: str
    # Scheme + host Twilio calls (e.g. "https://hooks.example.com"); None: the request's own.
    public_base_url: str | None = None
    # TEST ONLY: confirm SubscribeURLs on 127.0.0.1 / localhost as well.
    allow_local_subscribe_url: bool = False
    confirm_subscription: Callable[[str], None] | None = None


def get_subscribe_url(url: str) -> None:
    """Confirm an SNS subscription: one GET of its SubscribeURL, with a timeout."""
    with urllib.request.urlopen(url, timeout=SUBSCRIBE_TIMEOUT) as response:
        response.read(64 * 1024)


def _context(request: Request) -> WebhookContext:
    return request.app.state.webhooks


def _refuse(status: int, detail: str) -> Response:
    return problem_response(status, STATUS_CODES.get(status, ProblemCode.BAD_REQUEST), detail)


@lru_cache(maxsize=4)
def _topic_arns(text: str) -> frozenset[str]:
    topics = parse_topic_arns(text)
    if not topics:
        log.warning("PORTALFLOW_SNS_TOPIC_ARNS is unset: every SNS message is refused")
    return topics


async def _body(request: Request) -> bytes | None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    body = await request.body()
    return body if len(body) <= MAX_BODY_BYTES else None


def _store(context: WebhookContext, event: IncomingEvent) -> None:
    """Record the event, commit, then (a new one to classify) enqueue it."""
    with context.session_factory() as session:
        submit.submit(session, submit.provider_event(event, send=context.enqueue))


@router.post("/ses")
async def ses_webhook(request: Request) -> Response:
    """Amazon SNS: SES event notifications and subscription (un)confirmations."""
    context = _context(request)
    body = await _body(request)
    if body is None:
        return _refuse(413, "request body too large")
    try:
        message = webhook_payloads.sns_message(body)
    except webhook_payloads.BadPayload as exc:
        return _refuse(400, str(exc))
    try:
        await run_in_threadpool(
            verify_sns_message, message, certificate_loader=context.certificate_loader
        )
    except CertificateUnavailable as exc:
        return _refuse(503, exc.reason)
    except SnsSignatureError as exc:
        return _refuse(403, f"invalid SNS signature: {exc.reason}")
    try:
        topics = _topic_arns(request.app.state.settings.sns_topic_arns)
    except ValueError as exc:
        log.error("%s", exc)
        return _refuse(503, str(exc))
    try:
        check_sns_message(message, topic_arns=topics, now=datetime.now(UTC))
    except SnsMessageRefused as exc:
        return _refuse(403, f"SNS message refused: {exc.reason}")

    message_type = message["Type"]  # verified: one of the three signed types
    if message_type == "Notification":
        await run_in_threadpool(_store, context, webhook_payloads.ses_notification(message))
        return Response(status_code=200)

    if message_type == "SubscriptionConfirmation":
        subscribe_url = message["SubscribeURL"]
        if not allowed_subscribe_url(subscribe_url, allow_local=context.allow_local_subscribe_url):
            return _refuse(403, "SubscribeURL is not an SNS URL")
        confirm = context.confirm_subscription or get_subscribe_url
        try:
            await run_in_threadpool(confirm, subscribe_url)
        except Exception as exc:  # SNS sends the confirmation again later
            log.warning("SNS subscription confirmation failed: %s", exc)
            return _refuse(502, "could not confirm the subscription")
        detail = "subscription confirmed"
    else:
        detail = "unsubscribe confirmation received"
    # Nothing to classify: kept for the record, never enqueued.
    await run_in_threadpool(_store, context, webhook_payloads.sns_housekeeping(message, detail))
    return Response(status_code=200)


@router.post("/twilio")
async def twilio_webhook(request: Request) -> Response:
    """Twilio message status callback (form-encoded, signed with X-Twilio-Signature)."""
    context = _context(request)
    body = await _body(request)
    if body is None:
        return _refuse(413, "request body too large")
    try:
        form = webhook_payloads.twilio_form(body)
    except webhook_payloads.BadPayload as exc:
        return _refuse(400, str(exc))
    signature = request.headers.get("x-twilio-signature", "")
    if not context.twilio_auth_token:
        # An empty token would make every signature computable by anyone.
        return _refuse(403, "Twilio webhooks are not configured (no auth token)")
    url = _called_url(request, context.public_base_url)
    if not signature or not RequestValidator(context.twilio_auth_token).validate(
        url, form, signature
    ):
        return _refuse(403, "invalid Twilio signature")
    try:
        event = webhook_payloads.twilio_status(form)
    except webhook_payloads.BadPayload as exc:
        return _refuse(400, str(exc))
    await run_in_threadpool(_store, context, event)
    return Response(TWIML_EMPTY, status_code=200, media_type="application/xml")


def _called_url(request: Request, public_base_url: str | None) -> str:
    """The URL Twilio signed: the public base URL + our path (+ query), or our own URL."""
    if not public_base_url:
        return str(request.url)
    url = public_base_url.rstrip("/") + request.url.path
    query = request.url.query
    return f"{url}?{query}" if query else url
