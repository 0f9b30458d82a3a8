"""Encrypting the endpoints' signing secrets at rest, with ``PORTALFLOW_WEBHOOK_KEY``.

The key is a Fernet key (``python -c "from cryptography.fernet import Fernet;
print(Fernet.generate_key().decode())"``), or several comma-separated: the first encrypts,
every one decrypts, so a key is rotated by putting the new one first. Unset, the embedded
default (no broker URL: one machine) keeps a key in ``<var_dir>/webhook.key``; with a real
broker it is an error, since every worker must share the key.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from portalflow.config import Settings, SettingsError
from portalflow.pipelines import key_files

KEY_FILE = "webhook.key"
SECRET_PREFIX = "whsec_"


class SecretUnreadable(SettingsError):
    """A stored secret does not decrypt with any configured key."""


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` and 32 random bytes, URL-safe."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def cipher(settings: Settings) -> MultiFernet:
    """The Fernet keys of the deployment; SettingsError naming the variable when unusable."""
    raw = settings.webhook_key
    if not raw:
        if not settings.embedded_broker:
            raise SettingsError(
                "PORTALFLOW_WEBHOOK_KEY is not set: every process that manages or sends CRM "
                'webhooks needs the same Fernet key (generate one with `python -c "from '
                'cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`)'
            )
        raw = _file_key(settings.var_dir)
    try:
        return MultiFernet([Fernet(part.strip()) for part in raw.split(",") if part.strip()])
    except ValueError:
        raise SettingsError(
            "PORTALFLOW_WEBHOOK_KEY must be one or more comma-separated Fernet keys "
            "(32 url-safe base64-encoded bytes each)"
        ) from None


def encrypt(settings: Settings, secret: str) -> str:
    return cipher(settings).encrypt(secret.encode()).decode()


def decrypt(settings: Settings, token: str) -> str:
    try:
        return cipher(settings).decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable(
            "a webhook secret does not decrypt with PORTALFLOW_WEBHOOK_KEY: was the key "
            "changed without keeping the old one after it?"
        ) from None


def _file_key(var_dir: Path) -> str:
    return key_files.read_or_create(var_dir / KEY_FILE, Fernet.generate_key).decode().strip()
