"""An org's webhook endpoints: create, list, update, rotate the secret, delete.

The secret is returned by ``create_endpoint`` and ``rotate_secret`` only, and stored
encrypted (:mod:`.keys`); listing never shows it. A rotation keeps the previous secret
signing too for an overlap (24 hours by default), so the CRM can switch at its own pace.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from portalflow.config import Settings
from portalflow.models import (
    Org,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
    WebhookEventType,
    utcnow,
)
from portalflow.pipelines.errors import InvalidInput, NotFound

from . import keys, urls

MAX_ENDPOINTS_PER_ORG = 10
DEFAULT_OVERLAP = timedelta(hours=24)
MAX_OVERLAP = timedelta(days=7)
MAX_DESCRIPTION = 200


@dataclass(frozen=True)
class CreatedSecret:
    """An endpoint and its new secret, to show once."""

    endpoint: WebhookEndpoint
    secret: str


def event_types(values: Iterable[str] | None) -> list[str]:
    """The event types as stored (sorted values); empty means every type."""
    wanted: set[str] = set()
    unknown = []
    for value in values or ():
        try:
            wanted.add(WebhookEventType(value.strip()).value)
        except ValueError:
            unknown.append(value)
    if unknown:
        known = ", ".join(member.value for member in WebhookEventType)
        raise InvalidInput(f"unknown event type(s) {', '.join(unknown)}; known: {known}")
    return sorted(wanted)


def check_url(settings: Settings, url: str) -> str:
    """The URL, stripped, if the policy lets webhooks go there; else InvalidInput naming why."""
    url = url.strip()
    checked = urls.check(url, settings.webhook_networks())
    if isinstance(checked, urls.Refused):
        raise InvalidInput(f"webhook URL refused ({checked.code.value}): {checked.detail}")
    return url


def create_endpoint(
    session: Session,
    settings: Settings,
    org_id: int,
    url: str,
    types: Iterable[str] | None = None,
    description: str | None = None,
) -> CreatedSecret:
    """A new enabled endpoint of the org and its secret (flushed)."""
    _check_org(session, org_id)
    count = session.scalar(select(func.count()).where(WebhookEndpoint.org_id == org_id))
    if (count or 0) >= MAX_ENDPOINTS_PER_ORG:
        raise InvalidInput(
            f"org {org_id} has {MAX_ENDPOINTS_PER_ORG} webhook endpoints already; delete one first"
        )
    secret = keys.new_secret()
    endpoint = WebhookEndpoint(
        org_id=org_id,
        url=check_url(settings, url),
        description=_description(description),
        event_types=event_types(types),
        enabled=True,
        secret_encrypted=keys.encrypt(settings, secret),
    )
    session.add(endpoint)
    session.flush()
    return CreatedSecret(endpoint, secret)


def list_endpoints(session: Session, org_id: int) -> list[WebhookEndpoint]:
    _check_org(session, org_id)
    return list(
        session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.org_id == org_id)
            .order_by(WebhookEndpoint.id)
        )
    )


def get_endpoint(session: Session, org_id: int, endpoint_id: int) -> WebhookEndpoint:
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.org_id != org_id:
        raise NotFound(f"webhook endpoint {endpoint_id} does not exist in org {org_id}")
    return endpoint


def update_endpoint(
    session: Session,
    settings: Settings,
    org_id: int,
    endpoint_id: int,
    *,
    url: str | None = None,
    types: Iterable[str] | None = None,
    description: str | None = None,
    enabled: bool | None = None,
) -> WebhookEndpoint:
    """Change what is given, leave the rest (flushed); re-enabling resumes its deliveries."""
    endpoint = get_endpoint(session, org_id, endpoint_id)
    if url is not None:
        endpoint.url = check_url(settings, url)
    if types is not None:
        endpoint.event_types = event_types(types)
    if description is not None:
        endpoint.description = _description(description)
    if enabled is not None:
        endpoint.enabled = enabled
    endpoint.updated_at = utcnow()
    session.flush()
    return endpoint


def rotate_secret(
    session: Session,
    settings: Settings,
    org_id: int,
    endpoint_id: int,
    overlap: timedelta = DEFAULT_OVERLAP,
    now: datetime | None = None,
) -> CreatedSecret:
    """A new secret; the current one keeps signing for ``overlap`` (0: stops at once)."""
    if not timedelta(0) <= overlap <= MAX_OVERLAP:
        raise InvalidInput(f"the overlap must be between 0 and {MAX_OVERLAP.days} days")
    now = now or utcnow()
    endpoint = get_endpoint(session, org_id, endpoint_id)
    secret = keys.new_secret()
    if overlap:
        endpoint.previous_secret_encrypted = endpoint.secret_encrypted
        endpoint.previous_secret_expires_at = now + overlap
    else:
        endpoint.previous_secret_encrypted = None
        endpoint.previous_secret_expires_at = None
    endpoint.secret_encrypted = keys.encrypt(settings, secret)
    endpoint.updated_at = now
    session.flush()
    return CreatedSecret(endpoint, secret)


def delete_endpoint(session: Session, org_id: int, endpoint_id: int) -> None:
    """Delete the endpoint and its deliveries, pending ones too (flushed)."""
    endpoint = get_endpoint(session, org_id, endpoint_id)
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id))
    session.delete(endpoint)
    session.flush()


def signing_secrets(
    settings: Settings, endpoint: WebhookEndpoint, now: datetime | None = None
) -> list[str]:
    """The secrets that sign now: the current one, then the previous while it is valid."""
    now = now or utcnow()
    secrets = [keys.decrypt(settings, endpoint.secret_encrypted)]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret_encrypted and expires is not None and expires > now:
        secrets.append(keys.decrypt(settings, endpoint.previous_secret_encrypted))
    return secrets


def describe(session: Session, endpoint: WebhookEndpoint) -> dict[str, Any]:
    """What an admin sees of an endpoint (never its secret), with its deliveries' counts."""
    counts = dict(
        session.execute(
            select(WebhookDelivery.status, func.count())
            .where(WebhookDelivery.endpoint_id == endpoint.id)
            .group_by(WebhookDelivery.status)
        ).all()
    )
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": list(endpoint.event_types) or ["*"],
        "enabled": endpoint.enabled,
        "previous_secret_valid_until": endpoint.previous_secret_expires_at,
        "created_at": endpoint.created_at,
        "deliveries": {status.value: counts.get(status, 0) for status in WebhookDeliveryStatus},
    }


def _check_org(session: Session, org_id: int) -> None:
    if session.get(Org, org_id) is None:
        raise NotFound(f"org {org_id} does not exist")


def _description(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if len(value) > MAX_DESCRIPTION:
        raise InvalidInput(f"the description is longer than {MAX_DESCRIPTION} characters")
    return value or None
