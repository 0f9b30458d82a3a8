"""The embedded default for SMS: every message becomes one ``.json`` file in a folder."""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from pathlib import Path

from .base import SendFailure
from .outbox import OUTBOX_WRITE_FAILED
from .sms_base import OutgoingSms


class SmsOutboxChannel:
    """Writes ``<invitation_id>-<random>.json`` files into ``directory``.

    Each file appears whole or not at all (temp file + ``os.replace``). Every send makes a
    new file with a new provider id ``outbox-<uuid>``, as a real provider would.
    """

    name = "outbox"

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def send(self, sms: OutgoingSms) -> str:
        """Write ``sms`` to its own file; return the provider id stored in it."""
        key = uuid.uuid4().hex
        provider_id = f"outbox-{key}"
        target = self.directory / f"{sms.invitation_id}-{key[:12]}.json"
        document = {
            "provider_id": provider_id,
            "invitation_id": sms.invitation_id,
            "to": sms.to,
            "body": sms.body,
            "sender_id": sms.sender_id,
            "dlt_entity_id": sms.dlt_entity_id,
            "dlt_template_id": sms.dlt_template_id,
        }
        data = json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            # No fsync: a development channel; the rename alone hides partial files.
            fd, temp_name = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                os.replace(temp_name, target)
            except BaseException:
                Path(temp_name).unlink(missing_ok=True)
                raise
        except OSError as exc:
            # A full disk or a missing permission heals once someone fixes the folder.
            raise SendFailure(OUTBOX_WRITE_FAILED, f"{target}: {exc}", temporary=True) from exc
        return provider_id

    def close(self) -> None:
        """Nothing to release."""
