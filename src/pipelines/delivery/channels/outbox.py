"""The embedded default: every message becomes one ``.eml`` file in a folder."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from portalflow.models import SendFailureCode

from .base import OutgoingEmail, SendFailure


class OutboxChannel:
    """Writes ``<invitation_id>-<hash of Message-ID>.eml`` files into ``directory``.

    Each file appears whole or not at all (temp file + ``os.replace``), so a reader
    polling the folder never sees half a message. Another attempt of the same invitation
    has another Message-ID, hence another file; resending one Message-ID overwrites it.
    """

    name = "outbox"

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def path_for(self, email: OutgoingEmail) -> Path:
        """Where ``email`` is (or will be) written."""
        digest = hashlib.sha256(email.message_id.encode()).hexdigest()[:12]
        return self.directory / f"{email.invitation_id}-{digest}.eml"

    def send(self, email: OutgoingEmail) -> str:
        target = self.path_for(email)
        write_atomically(target, email.raw)
        return email.message_id

    def close(self) -> None:
        """Nothing to release."""


def write_atomically(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` so no reader ever sees a partial file.

    Raises a temporary SendFailure when the folder cannot be written.
    """
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # No fsync: outboxes are development channels; the rename alone hides partial files.
        fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temp_name, target)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
    except OSError as exc:
        # A full disk or a missing permission heals once someone fixes the folder.
        raise SendFailure(
            SendFailureCode.OUTBOX_WRITE_FAILED, f"{target}: {exc}", temporary=True
        ) from exc
