"""A local HTTP server for AWS End User Messaging SMS ``SendTextMessage`` (JSON 1.0 protocol).

moto 5.2.5 does not implement ``pinpoint-sms-voice-v2`` (it only lists the name among VPC
endpoint services), so the tests talk to this instead, through the real botocore client.
"""

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

TARGET = "PinpointSMSVoiceV2.SendTextMessage"
CONTENT_TYPE = "application/x-amz-json-1.0"


@dataclass(frozen=True)
class AwsRequest:
    """One request the server received."""

    target: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class AwsSmsState:
    # DestinationPhoneNumber -> (HTTP status, error JSON body) answered instead of success.
    errors: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    requests: list[AwsRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, to: str, error_type: str, status: int = 400, **fields: str) -> None:
        """Answer ``error_type`` (with extra modeled ``fields``, e.g. Reason) for ``to``."""
        self.errors[to] = (status, {"__type": error_type, "message": "error", **fields})


class AwsSmsServer(LocalServer):
    def __init__(self) -> None:
        super().__init__(_Handler)
        self.state = AwsSmsState()

    @property
    def endpoint_url(self) -> str:
        return self.url


class _Handler(BaseHTTPRequestHandler):
    server: AwsSmsServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read `AwsSmsState.requests` instead."""

    def do_POST(self) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        target = self.headers.get("X-Amz-Target", "")
        with state.lock:
            state.requests.append(AwsRequest(target, dict(self.headers.items()), body))
        if self.path != "/" or target != TARGET:
            self._json(400, {"__type": "UnknownOperationException", "message": target})
        elif not self.headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256 "):
            self._json(400, {"__type": "MissingAuthenticationToken", "message": "no sigv4"})
        elif "DestinationPhoneNumber" not in body:
            self._json(400, {"__type": "ValidationException", "message": "missing number"})
        elif body["DestinationPhoneNumber"] in state.errors:
            self._json(*state.errors[body["DestinationPhoneNumber"]])
        else:
            self._json(200, {"MessageId": str(uuid.uuid4())})

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(data)


@contextmanager
def running_aws_sms_server() -> Iterator[AwsSmsServer]:
    """Serve on a free port of 127.0.0.1 until the block ends."""
    with serving(AwsSmsServer()) as server:
        yield server
