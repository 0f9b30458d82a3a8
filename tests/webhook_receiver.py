"""A real CRM webhook receiver on 127.0.0.1 that checks each POST with the README's code.

The verifying function is read out of the README's ``<!-- webhook-receiver -->`` block and
executed as written, so what we tell CRM developers is what the tests hold to.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from .local_http import LocalServer, serving

README = Path(__file__).resolve().parent.parent / "README.md"
MARKER = "<!-- webhook-receiver -->"

Verify = Callable[..., bool]


def readme_verify() -> Verify:
    """The ``verify`` function of the README, compiled from its text."""
    text = README.read_text(encoding="utf-8")
    start = text.index(MARKER)
    match = re.search(r"```python\n(.*?)```", text[start:], re.S)
    assert match, "the README's receiver block has no python code"
    namespace: dict[str, Any] = {}
    exec(compile(match.group(1), "README.md (webhook receiver)", "exec"), namespace)
    return namespace["verify"]  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    verified: bool
    status: int

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]


class Receiver(LocalServer):
    """Answers 200 to a verified POST; 500 while ``failures_left``; 401 when unverified."""

    def __init__(self) -> None:
        super().__init__(_Handler)
        self.verify = readme_verify()
        self.secrets: list[str] = []
        self.failures_left = 0
        self.redirect_to: str | None = None
        # When set, the next POST waits on it before answering (a receiver that hangs).
        self.hold: threading.Event | None = None
        self.holding = threading.Event()  # set once a held POST arrived
        self.held: list[threading.Event] = []
        self.lock = threading.Lock()
        self.received: list[Received] = []

    def delivered(self) -> list[Received]:
        """The POSTs answered 2xx, in arrival order."""
        with self.lock:
            return [r for r in self.received if 200 <= r.status < 300]

    def events(self) -> list[dict[str, Any]]:
        return [r.event for r in self.delivered()]


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = dict(self.headers.items())
        server = self.server
        verified = any(
            server.verify(
                secret,
                body,
                headers.get("Portalflow-Timestamp", ""),
                headers.get("Portalflow-Signature", ""),
            )
            for secret in list(server.secrets)
        )
        hold, server.hold = server.hold, None
        if hold is not None:
            server.held.append(hold)
            server.holding.set()
            hold.wait(60)
        with server.lock:
            if server.redirect_to is not None:
                status = 302
            elif server.failures_left > 0:
                server.failures_left -= 1
                status = 500
            else:
                status = 200 if verified else 401
            server.received.append(Received(headers, body, verified, status))
        self.send_response(status)
        if status == 302:
            self.send_header("Location", str(server.redirect_to))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    receiver = Receiver()

    def release() -> None:
        for event in [*receiver.held, *([receiver.hold] if receiver.hold else [])]:
            event.set()

    with serving(receiver, before_stop=release) as server:
        yield server
