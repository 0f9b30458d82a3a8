"""The deployment's secret for signed links: ``PORTALFLOW_SECRET_KEY``, else a local key file.

Workers sign the links they mail (opt-out) and the web app checks them, so every process of
a deployment needs the same key: set ``PORTALFLOW_SECRET_KEY`` (32+ random bytes, e.g.
``python -c "import secrets; print(secrets.token_urlsafe(32))"``). Unset, as in the embedded
mode and on one machine, the key is ``<var_dir>/secret.key``, created with 32 random bytes
(mode 0600) by the first process that needs it.
"""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

from portalflow.config import Settings
from portalflow.pipelines import key_files

KEY_FILE = "secret.key"


def link_key(settings: Settings) -> bytes:
    """The key that signs links (derived, so the raw secret is never used directly)."""
    secret = settings.secret_key.encode() if settings.secret_key else _file_key(settings.var_dir)
    return hashlib.sha256(b"portalflow links:" + secret).digest()


def _file_key(var_dir: Path) -> bytes:
    return key_files.read_or_create(var_dir / KEY_FILE, lambda: secrets.token_bytes(32))
