"""A local SES v2 SendEmail endpoint that can throttle or refuse, for retry and pause tests."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from .local_http import LocalServer, serving


@dataclass
class SesState:
    # Answers to give before accepting, in order: (HTTP status, SES error code).
    errors: list[tuple[int, str]] = field(default_factory=list)
    attempts: int = 0
    accepted: list[str] = field(default_factory=list)  # MessageIds handed out
    lock: threading.Lock = field(default_factory=threading.Lock)


class SesServer(LocalServer):
    def __init__(self) -> None:
        super().__init__(_Handler)
        self.state = SesState()

    @property
    def endpoint_url(self) -> str:
        return self.url


class _Handler(BaseHTTPRequestHandler):
    server: SesServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        state = self.server.state
        with state.lock:
            state.attempts += 1
            error = state.errors.pop(0) if state.errors else None
            if error is None:
                message_id = f"0100-{uuid.uuid4().hex}"
                state.accepted.append(message_id)
        if error is not None:
            status, code = error
            body = json.dumps({"message": f"{code} from the test server"}).encode()
            self.send_response(status)
            self.send_header("x-amzn-ErrorType", code)
        else:
            body = json.dumps({"MessageId": message_id}).encode()
            self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def running_ses_server() -> Iterator[SesServer]:
    with serving(SesServer()) as server:
        yield server
