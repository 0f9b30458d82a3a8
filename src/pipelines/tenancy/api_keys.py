"""Per-org API keys for the HTTP API: shown once, stored only as a SHA-256 hash.

A key reads ``pf_<prefix>_<secret>``: the prefix names the key in lists and in
``revoke``; the whole key is hashed, and a presented key is checked by its hash (a unique
index) and then compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portalflow.models import ApiKey, utcnow
from portalflow.pipelines.errors import InvalidInput, NotFound

from . import orgs

KEY_MARK = "pf"
PREFIX_BYTES = 6  # 12 hex characters, fits ApiKey.prefix
SECRET_BYTES = 32  # 256 bits
MAX_NAME_LENGTH = 100
MAX_PRESENTED_LENGTH = 200


def hash_key(presented: str) -> str:
    return hashlib.sha256(presented.encode()).hexdigest()


def create_key(session: Session, org_id: int, name: str) -> tuple[ApiKey, str]:
    """A new key of the org (flushed); returns the row and the plaintext, shown only once."""
    orgs.get_org(session, org_id)
    name = (name or "").strip()
    if not name:
        raise InvalidInput("an API key needs a name (who uses it, e.g. 'zoho-crm')")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(f"an API key name is at most {MAX_NAME_LENGTH} characters")
    prefix = secrets.token_hex(PREFIX_BYTES)
    plaintext = f"{KEY_MARK}_{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"
    key = ApiKey(org_id=org_id, name=name, prefix=prefix, key_hash=hash_key(plaintext))
    session.add(key)
    session.flush()
    return key, plaintext


def authenticate(session: Session, presented: str | None) -> int | None:
    """The org id of a live key, or None for an unknown, malformed or revoked one."""
    if not presented or len(presented) > MAX_PRESENTED_LENGTH:
        return None
    digest = hash_key(presented)
    key = session.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
    if key is None or key.revoked_at is not None:
        return None
    if not hmac.compare_digest(key.key_hash.encode(), digest.encode()):
        return None
    return key.org_id


def revoke(session: Session, org_id: int, prefix: str, now: datetime | None = None) -> ApiKey:
    """Revoke the org's key named by ``prefix`` (flushed); revoking twice keeps the first time."""
    key = session.scalar(
        select(ApiKey).where(ApiKey.org_id == org_id, ApiKey.prefix == prefix.strip())
    )
    if key is None:
        raise NotFound(f"API key {prefix!r} does not exist in org {org_id}")
    if key.revoked_at is None:
        key.revoked_at = now or utcnow()
        session.flush()
    return key


def list_keys(session: Session, org_id: int) -> list[dict[str, Any]]:
    """The org's keys (never their hashes), oldest first."""
    orgs.get_org(session, org_id)
    keys = session.scalars(select(ApiKey).where(ApiKey.org_id == org_id).order_by(ApiKey.id))
    return [
        {
            "id": key.id,
            "name": key.name,
            "prefix": key.prefix,
            "created_at": key.created_at,
            "revoked_at": key.revoked_at,
        }
        for key in keys
    ]
