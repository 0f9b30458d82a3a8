"""Signed double-submit CSRF tokens for the recipient's forms (no server-side session).

The page sets a random nonce in a cookie (HttpOnly, SameSite=Strict) and puts
``HMAC(key, scope | nonce)`` in the form; a POST is believed only when the form's value is
the HMAC of the cookie it came with. Another site can neither read the cookie nor forge the
HMAC without the key, and SameSite=Strict keeps the browser from sending the cookie on its
cross-site POSTs at all. The scope binds a form to its link, so a form token of one link
does not work for another. The key is derived from the deployment's link key
(:mod:`portalflow.pipelines.invitations.link_keys`: ``PORTALFLOW_SECRET_KEY`` or
``<var_dir>/secret.key``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

COOKIE_NAME = "portalflow_csrf"
FIELD_NAME = "csrf_token"
_NONCE = re.compile(r"^[A-Za-z0-9_\-]{32,64}$")


def csrf_key(link_key: bytes) -> bytes:
    """The CSRF key: its own derivation, so a form token is never a valid signed link."""
    return hmac.new(link_key, b"portalflow csrf", hashlib.sha256).digest()


def nonce_for(cookie: str | None) -> str:
    """The browser's nonce when it sent a well-formed one, else a fresh one."""
    if cookie and _NONCE.match(cookie):
        return cookie
    return secrets.token_urlsafe(32)


def form_token(key: bytes, scope: str, nonce: str) -> str:
    """What the form carries for ``nonce`` under ``scope``."""
    message = f"{scope}|{nonce}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def is_valid(key: bytes, scope: str, cookie: str | None, submitted: str | None) -> bool:
    """Whether a POST's form token matches the cookie it came with (constant time)."""
    if not cookie or not submitted or not _NONCE.match(cookie):
        return False
    return hmac.compare_digest(form_token(key, scope, cookie), submitted)
