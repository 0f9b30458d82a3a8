"""A local HTTP server speaking the one Twilio call we make: create a Message."""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

from .local_http import LocalServer, serving

MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>[^/]+)/Messages\.json$")


@dataclass(frozen=True)
class TwilioRequest:
    """One request the server received."""

    path: str
    auth: tuple[str, str] | None  # HTTP basic auth (user, password)
    form: dict[str, str]  # the form-encoded body, one value per field
    headers: dict[str, str]


@dataclass
class TwilioState:
    """What the server answers, and what it has seen."""

    account_sid: str
    auth_token: str
    # To number -> (HTTP status, JSON body) answered instead of a created Message.
    errors: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    # To numbers whose request is held until the client gives up (or the server stops).
    stall: set[str] = field(default_factory=set)
    requests: list[TwilioRequest] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, to: str, code: int, status: int = 400, message: str = "error") -> None:
        """Answer Twilio's legacy error body for requests to ``to``."""
        self.errors[to] = (
            status,
            {
                "code": code,
                "message": message,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            },
        )

    def fail_rfc9457(self, to: str, code: int, status: int, title: str, detail: str) -> None:
        """Answer an RFC 9457 problem document, as Twilio's newer APIs do."""
        self.errors[to] = (
            status,
            {
                "type": f"https://www.twilio.com/docs/errors/{code}",
                "title": title,
                "status": status,
                "code": code,
                "detail": detail,
            },
        )


class TwilioServer(LocalServer):
    def __init__(self, state: TwilioState) -> None:
        super().__init__(_Handler)
        self.state = state

    @property
    def base_url(self) -> str:
        return self.url


class _Handler(BaseHTTPRequestHandler):
    server: TwilioServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read `TwilioState.requests` instead."""

    def do_POST(self) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8")
        form = {name: values[-1] for name, values in parse_qs(raw).items()}
        auth = _basic_auth(self.headers.get("Authorization", ""))
        with state.lock:
            state.requests.append(
                TwilioRequest(self.path, auth, form, {k: v for k, v in self.headers.items()})
            )
        match = MESSAGES_PATH.match(self.path)
        if auth != (state.account_sid, state.auth_token):
            self._error(401, 20003, "Authenticate")
        elif match is None or match["sid"] != state.account_sid:
            self._error(404, 20404, f"The requested resource {self.path} was not found")
        elif "To" not in form:
            self._error(400, 21604, "A 'To' phone number is required.")
        elif "From" not in form and "MessagingServiceSid" not in form:
            self._error(400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required")
        elif form["To"] in state.stall:
            state.released.wait(30)
        elif form["To"] in state.errors:
            status, body = state.errors[form["To"]]
            self._json(status, body)
        else:
            self._json(201, _message(state.account_sid, form))

    def _error(self, status: int, code: int, message: str) -> None:
        more_info = f"https://www.twilio.com/docs/errors/{code}"
        body = {"code": code, "message": message, "more_info": more_info, "status": status}
        self._json(status, body)

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _basic_auth(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    user, _, password = base64.b64decode(encoded).decode().partition(":")
    return user, password


def _message(account_sid: str, form: dict[str, str]) -> dict[str, Any]:
    """A Message resource as Twilio returns it right after create (status queued)."""
    sid = "SM" + uuid.uuid4().hex
    return {
        "account_sid": account_sid,
        "api_version": "2010-04-01",
        "body": form.get("Body", ""),
        "date_created": "Thu, 01 Jan 2026 00:00:00 +0000",
        "date_sent": None,
        "date_updated": "Thu, 01 Jan 2026 00:00:00 +0000",
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": form.get("From"),
        "messaging_service_sid": form.get("MessagingServiceSid"),
        "num_media": "0",
        "num_segments": "1",
        "price": None,
        "price_unit": "USD",
        "sid": sid,
        "status": "accepted" if "MessagingServiceSid" in form else "queued",
        "subresource_uris": {
            "media": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}/Media.json"
        },
        "to": form["To"],
        "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json",
    }


@contextmanager
def running_twilio_server(
    account_sid: str = "AC" + "0" * 32, auth_token: str = "test-token"
) -> Iterator[TwilioServer]:
    """Serve on a free port of 127.0.0.1 until the block ends."""
    server = TwilioServer(TwilioState(account_sid, auth_token))
    with serving(server, before_stop=server.state.released.set):
        yield server
