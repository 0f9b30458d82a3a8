"""A deployment's local key files (the embedded default): made once, whole, and shared."""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Callable
from pathlib import Path

_lock = threading.Lock()


def read_or_create(path: Path, make: Callable[[], bytes]) -> bytes:
    """The key in ``path``; the first caller writes ``make()`` there (mode 0600)."""
    with _lock:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # Written whole under another name, then linked: a reader never sees half a key.
            draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
            descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as file:
                file.write(make())
            try:
                os.link(draft, path)
            except FileExistsError:  # another process made it first: theirs is the key
                pass
            finally:
                draft.unlink()
        return path.read_bytes()
