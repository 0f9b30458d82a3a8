"""The deployment's secret for signed links: ``PORTALFLOW_SECRET_KEY``, else a local key file.

Workers sign the links they mail (opt-out) and the web app checks them, so every process of
a deployment needs the same key: set ``PORTALFLOW_SECRET_KEY`` (32+ random bytes, e.g.
``python -c "import secrets; print(secrets.token_urlsafe(32))"``). Unset, as in the embedded
mode and on one machine, the key is ``<var_dir>/secret.key``, created with 32 random bytes
(mode 0600) by the first process that needs it.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from pathlib import Path

from portalflow.config import Settings

KEY_FILE = "secret.key"
_lock = threading.Lock()


def link_key(settings: Settings) -> bytes:
    """The key that signs links (derived, so the raw secret is never used directly)."""
    secret = settings.secret_key.encode() if settings.secret_key else _file_key(settings.var_dir)
    return hashlib.sha256(b"portalflow links:" + secret).digest()


def _file_key(var_dir: Path) -> bytes:
    path = var_dir / KEY_FILE
    with _lock:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # Written whole under another name, then linked: a reader never sees half a key.
            draft = path.with_name(f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
            descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as file:
                file.write(secrets.token_bytes(32))
            try:
                os.link(draft, path)
            except FileExistsError:  # another process made it first: theirs is the key
                pass
            finally:
                draft.unlink()
        return path.read_bytes()
