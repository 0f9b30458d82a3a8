"""The embedded default for SMS: every message becomes one ``.json`` file in a folder."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from .outbox import write_atomically
from .sms_base import LookupUnavailable, OutgoingSms


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
        write_atomically(target, data)
        return provider_id

    def find_sent(self, to: str, since: datetime, matches: Callable[[str], bool]) -> str | None:
        """The provider id of a file for ``to`` written at or after ``since`` whose body
        ``matches``; None when there is none. Reads every file written since: an outbox is a
        development channel."""
        after = since.timestamp()
        try:
            for path in self.directory.glob("*.json"):  # no folder yet: nothing was sent
                try:
                    if path.stat().st_mtime < after:
                        continue
                    document = json.loads(path.read_bytes())
                except FileNotFoundError:
                    continue  # removed meanwhile
                if document.get("to") == to and matches(str(document.get("body", ""))):
                    return str(document["provider_id"])
        except (OSError, ValueError, KeyError) as exc:
            raise LookupUnavailable(f"outbox lookup: {type(exc).__name__}") from exc
        return None

    def close(self) -> None:
        """Nothing to release."""
