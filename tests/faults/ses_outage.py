"""A local SES v2 ``SendEmail`` endpoint that answers 503 during an outage, then accepts."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from ..local_http import LocalServer, serving


@dataclass
class Outage:
    """Until ``ends_at`` (monotonic) every request gets 503 ServiceUnavailable."""

    ends_at: float = 0.0
    refused: int = 0
    # (recipients, raw message) of every request answered 200, in order.
    accepted: list[tuple[list[str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, seconds: float) -> None:
        self.ends_at = time.monotonic() + seconds


class SesOutageServer(LocalServer):
    def __init__(self) -> None:
        super().__init__(_Handler)
        self.outage = Outage()


class _Handler(BaseHTTPRequestHandler):
    server: SesOutageServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        outage = self.server.outage
        with outage.lock:
            if time.monotonic() < outage.ends_at:
                outage.refused += 1
                self._answer(503, {"message": "Service Unavailable"}, "ServiceUnavailable")
                return
            recipients = list(request["Destination"]["ToAddresses"])
            raw = base64.b64decode(request["Content"]["Raw"]["Data"])
            outage.accepted.append((recipients, raw))
        self._answer(200, {"MessageId": f"0100-{uuid.uuid4().hex}"})

    def _answer(self, status: int, body: dict[str, str], error_type: str = "") -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        if error_type:
            self.send_header("x-amzn-ErrorType", error_type)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextmanager
def running_ses_outage_server() -> Iterator[SesOutageServer]:
    with serving(SesOutageServer()) as server:
        yield server
