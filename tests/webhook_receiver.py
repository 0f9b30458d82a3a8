"""A real CRM webhook receiver on 127.0.0.1 that checks each POST with the README's code.

The verifying function is read out of the README's ``<!-- webhook-receiver -->`` block and
executed as written, so what we tell CRM developers is what the tests hold to.
"""

from __future__ import annotations

import json
import re
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from ipaddress import ip_address
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

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
        self.scheme = "http"

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"{self.scheme}://{host!s}:{port}"

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


@dataclass(frozen=True)
class Tls:
    """A self-signed certificate for 127.0.0.1 (its IP in the SAN), and a client context
    that trusts only it."""

    server: ssl.SSLContext
    client: ssl.SSLContext


def self_signed(tmp_path: Path) -> Tls:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "receiver.pem", tmp_path / "receiver.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cafile=str(cert_path))
    return Tls(server, client)


@contextmanager
def running_receiver(tls: Tls | None = None) -> Iterator[Receiver]:
    receiver = Receiver()
    if tls is not None:
        receiver.socket = tls.server.wrap_socket(receiver.socket, server_side=True)
        receiver.scheme = "https"

    def release() -> None:
        for event in [*receiver.held, *([receiver.hold] if receiver.hold else [])]:
            event.set()

    with serving(receiver, before_stop=release) as server:
        yield server
