"""A local HTTP server speaking the two Twilio calls we make: create a Message, and list the
Messages it created (``To`` and ``DateSent`` filters, newest first, paged as Twilio pages)."""

from __future__ import annotations

import base64
import json
import random
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from .local_http import LocalServer, serving

MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>[^/]+)/Messages\.json$")
DEFAULT_PAGE_SIZE = 50  # Twilio's
MAX_PAGE_SIZE = 1000


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
    # To numbers whose requests (a create, or a list) are held until the client gives up (or
    # the server stops).
    stall: set[str] = field(default_factory=set)
    requests: list[TwilioRequest] = field(default_factory=list)
    # Every Message created (answered 201), in order: what the provider took, even when the
    # client went away before reading the answer.
    created: list[dict[str, Any]] = field(default_factory=list)
    # When each created Message (by SID) was taken; the fake hands it on at once, so this is
    # its date_sent too.
    created_at: dict[str, datetime] = field(default_factory=dict)
    # The list requests (GET), apart from ``requests``: what a lookup asked.
    lookups: list[TwilioRequest] = field(default_factory=list)
    # (HTTP status, JSON body) answered to every list request instead of the list.
    list_error: tuple[int, dict[str, Any]] | None = None
    # (low, high) seconds slept before each answer, drawn uniformly: a provider's round trip.
    latency: tuple[float, float] = (0.0, 0.0)
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
    # Many worker threads connect at once (one connection per request: HTTP/1.0).
    request_queue_size = 128

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
        try:
            body = self.rfile.read(length)
        except ConnectionError:
            return
        if len(body) < length:
            return  # the client went away mid-request: nothing was asked for
        raw = body.decode("utf-8")
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
            taken = datetime.now(UTC)
            message = _message(state.account_sid, form, taken)
            with state.lock:
                state.created.append(message)
                state.created_at[message["sid"]] = taken
            self._json(201, message)

    def do_GET(self) -> None:
        """List Messages, as ``client.messages.list(to=..., date_sent_after=...)`` asks."""
        state = self.server.state
        url = urlsplit(self.path)
        query = {name: values[-1] for name, values in parse_qs(url.query).items()}
        auth = _basic_auth(self.headers.get("Authorization", ""))
        with state.lock:
            state.lookups.append(
                TwilioRequest(self.path, auth, query, {k: v for k, v in self.headers.items()})
            )
        match = MESSAGES_PATH.match(url.path)
        if auth != (state.account_sid, state.auth_token):
            self._error(401, 20003, "Authenticate")
        elif match is None or match["sid"] != state.account_sid:
            self._error(404, 20404, f"The requested resource {url.path} was not found")
        elif query.get("To") in state.stall:
            state.released.wait(30)
        elif state.list_error is not None:
            self._json(*state.list_error)
        else:
            self._json(200, self._page(url.path, query))

    def _page(self, path: str, query: dict[str, str]) -> dict[str, Any]:
        """One page of the matching Messages, newest first, in Twilio's list shape."""
        state = self.server.state
        with state.lock:
            taken = [(message, state.created_at[message["sid"]]) for message in state.created]
        matching = [
            _as_sent(message, at)
            for message, at in reversed(taken)
            if ("To" not in query or message["to"] == query["To"]) and _date_sent_matches(at, query)
        ]
        size = min(int(query.get("PageSize", DEFAULT_PAGE_SIZE)), MAX_PAGE_SIZE)
        number = int(query.get("Page", 0))
        start = number * size
        records = matching[start : start + size]
        filters = {k: v for k, v in query.items() if k not in ("Page", "PageSize", "PageToken")}

        def uri(page: int) -> str:
            more = {"PageSize": size, "Page": page}
            if page:
                more["PageToken"] = f"PASM{page * size}"
            return f"{path}?{urlencode({**filters, **more})}"

        return {
            "messages": records,
            "first_page_uri": uri(0),
            "next_page_uri": uri(number + 1) if start + size < len(matching) else None,
            "previous_page_uri": uri(number - 1) if number > 0 else None,
            "page": number,
            "page_size": size,
            "start": start,
            "end": start + max(len(records) - 1, 0),
            "uri": uri(number),
        }

    def _error(self, status: int, code: int, message: str) -> None:
        more_info = f"https://www.twilio.com/docs/errors/{code}"
        body = {"code": code, "message": message, "more_info": more_info, "status": status}
        self._json(status, body)

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        low, high = self.server.state.latency
        if high > 0:
            time.sleep(random.uniform(low, high))
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except ConnectionError:
            pass  # the client went away (a killed worker); what was created stays created


def _basic_auth(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    user, _, password = base64.b64decode(encoded).decode().partition(":")
    return user, password


def _date_sent_matches(at: datetime, query: dict[str, str]) -> bool:
    """Twilio's ``DateSent`` filters, to the second: ``DateSent>`` is on or after, ``<`` on
    or before; each a date (midnight UTC) or ``YYYY-MM-DDTHH:MM:SSZ``."""
    sent = at.replace(microsecond=0)
    if "DateSent" in query and sent.date() != _parse_date(query["DateSent"]).date():
        return False
    if "DateSent>" in query and sent < _parse_date(query["DateSent>"]):
        return False
    return not ("DateSent<" in query and sent > _parse_date(query["DateSent<"]))


def _parse_date(value: str) -> datetime:
    if len(value) == len("YYYY-MM-DD"):
        return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _as_sent(message: dict[str, Any], at: datetime) -> dict[str, Any]:
    """A created Message as a later fetch shows it: handed on, at the time it was taken."""
    return message | {"status": "sent", "date_sent": format_datetime(at.replace(microsecond=0))}


def _message(account_sid: str, form: dict[str, str], taken: datetime) -> dict[str, Any]:
    """A Message resource as Twilio returns it right after create (status queued)."""
    sid = "SM" + uuid.uuid4().hex
    date = format_datetime(taken.replace(microsecond=0))
    return {
        "account_sid": account_sid,
        "api_version": "2010-04-01",
        "body": form.get("Body", ""),
        "date_created": date,
        "date_sent": None,
        "date_updated": date,
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
