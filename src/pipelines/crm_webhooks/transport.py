"""One webhook POST: to the address the URL policy checked, short timeouts, no redirects.

``http.client`` follows no redirect by itself, and the connection is opened to the checked
address while the Host header and TLS server name stay the URL's host, so the certificate
is still verified against the name the admin typed.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from dataclasses import dataclass

from portalflow.models import WebhookFailureCode

from .urls import Target

# The answer is only read this far: a CRM's 2xx needs no body, and a huge one costs us.
MAX_ANSWER_BYTES = 64 * 1024
DETAIL_LENGTH = 300


@dataclass(frozen=True)
class Answer:
    """What one attempt got: an HTTP status, or a failure code without one."""

    status: int | None
    failure: WebhookFailureCode | None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.failure is None


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, target: Target, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(target.host, target.port, timeout=timeout, context=context)
        self._address = target.address
        self._tls = context

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


def post(
    target: Target,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    context: ssl.SSLContext | None = None,
) -> Answer:
    """POST ``body`` to ``target``; a 2xx is delivered, anything else a failure code."""
    connection: http.client.HTTPConnection
    if target.scheme == "https":
        connection = _PinnedHTTPS(target, timeout, context or ssl.create_default_context())
    else:
        connection = _PinnedHTTP(target, timeout)
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        text = response.read(MAX_ANSWER_BYTES).decode("utf-8", "replace")[:DETAIL_LENGTH]
    except TimeoutError as exc:
        return Answer(None, WebhookFailureCode.TIMEOUT, str(exc) or "timed out")
    except (OSError, http.client.HTTPException) as exc:
        return Answer(None, WebhookFailureCode.CONNECTION_FAILED, _describe(exc))
    finally:
        connection.close()
    status = response.status
    if 200 <= status < 300:
        return Answer(status, None)
    if 300 <= status < 400:
        where = response.getheader("Location", "")[:200]
        return Answer(status, WebhookFailureCode.REDIRECT_REFUSED, f"redirected to {where!r}")
    return Answer(status, WebhookFailureCode.HTTP_ERROR, f"HTTP {status}: {text}".strip())


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:DETAIL_LENGTH]
