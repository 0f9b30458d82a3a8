"""Counting what a run left behind: rows in the database, messages at the provider."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from email import message_from_bytes, policy

from sqlalchemy import select
from sqlalchemy.orm import Session

from portalflow.models import Invitation, InvitationStatus
from portalflow.pipelines.invitations import tokens

from .world import World

TOKEN = re.compile(r"token=([A-Za-z0-9_\-]+)")


@dataclass(frozen=True)
class Delivered:
    """One message the provider accepted: to whom, and the invitation token it carries."""

    recipient: str
    token: str | None


@dataclass
class Tally:
    """Per eligible record: its invitation rows, and the messages that reached its address."""

    rows_per_record: Counter[str] = field(default_factory=Counter)
    not_sent: dict[str, str] = field(default_factory=dict)  # crm id -> status
    lost: list[str] = field(default_factory=list)  # eligible, no message with a valid token
    duplicates: dict[str, int] = field(default_factory=dict)  # address -> extra messages
    stray: list[str] = field(default_factory=list)  # messages to addresses owed none
    valid_per_address: Counter[str] = field(default_factory=Counter)

    @property
    def duplicate_count(self) -> int:
        return sum(self.duplicates.values())


def email_deliveries(raw_messages: Iterable[tuple[list[str], bytes]]) -> list[Delivered]:
    """One Delivered per (recipient, message), the token read from the decoded body."""
    delivered = []
    for recipients, raw in raw_messages:
        found = None
        for part in message_from_bytes(raw, policy=policy.default).walk():
            if part.get_content_maintype() == "text":
                match = TOKEN.search(part.get_content())
                if match:
                    found = match.group(1)
                    break
        delivered.extend(Delivered(recipient, found) for recipient in recipients)
    return delivered


def count(session: Session, world: World, delivered: Iterable[Delivered]) -> Tally:
    """Zero lost means each eligible record got a message whose token is its live one."""
    tally = Tally()
    rows = session.execute(
        select(Invitation.crm_id, Invitation.status, Invitation.token_hash)
    ).all()
    live = {row.token_hash: row.crm_id for row in rows if row.status == InvitationStatus.SENT}
    for row in rows:
        tally.rows_per_record[row.crm_id] += 1
        if row.crm_id in world.eligible and row.status != InvitationStatus.SENT:
            tally.not_sent[row.crm_id] = row.status.value
    per_address = Counter[str]()
    owed = set(world.eligible.values())
    for message in delivered:
        per_address[message.recipient] += 1
        if message.recipient not in owed:
            tally.stray.append(message.recipient)
        elif message.token and live.get(tokens.hash_token(message.token)):
            crm_id = live[tokens.hash_token(message.token)]
            if world.eligible[crm_id] == message.recipient:
                tally.valid_per_address[message.recipient] += 1
    for crm_id, recipient in world.eligible.items():
        if tally.valid_per_address[recipient] == 0:
            tally.lost.append(crm_id)
        if per_address[recipient] > 1:
            tally.duplicates[recipient] = per_address[recipient] - 1
    return tally


def report(test: str, **figures: object) -> None:
    """One line of figures, shown by ``pytest -s``."""
    print(f"\n[faults] {test}: {json.dumps(figures, sort_keys=False)}")


def assert_each_got_one(result: Tally, world: World, *, may_repeat: Iterable[str] = ()) -> None:
    """Zero lost: one sent invitation per eligible record, whose live token reached it.

    Zero duplicates, except for the records in ``may_repeat``.
    """
    assert result.lost == [], f"{len(result.lost)} lost, e.g. {result.lost[:5]}"
    assert result.not_sent == {}, f"not sent: {dict(list(result.not_sent.items())[:5])}"
    assert result.stray == [], f"{len(result.stray)} emails to addresses owed none"
    assert [c for c in world.eligible if result.rows_per_record[c] != 1] == []
    assert [c for c in world.ineligible if result.rows_per_record[c] != 1] == []
    assert all(result.valid_per_address[a] == 1 for a in world.eligible.values())
    allowed = {world.eligible[crm_id] for crm_id in may_repeat}
    assert [a for a in result.duplicates if a not in allowed] == []
