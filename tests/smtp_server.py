"""A real SMTP server (aiosmtpd) in a thread, recording what it receives."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    connection: int  # which connection carried it (index in SmtpServer.protocols)


@dataclass
class RecordingHandler:
    """Stores every accepted envelope; answers ``replies[address]`` to RCPT TO if set,
    ``data_replies[recipient]`` to the end of DATA and ``mail_replies[sender]`` to MAIL FROM.

    For a recipient in ``hang_up_after_data`` the message is stored, then the server hangs
    up instead of answering DATA, leaving the client unsure whether it was taken.
    """

    replies: dict[str, str] = field(default_factory=dict)
    data_replies: dict[str, str] = field(default_factory=dict)
    mail_replies: dict[str, str] = field(default_factory=dict)
    hang_up_after_data: set[str] = field(default_factory=set)
    # Advertise RFC 2920 PIPELINING (aiosmtpd reads pipelined commands in order anyway).
    pipelining: bool = True
    messages: list[Received] = field(default_factory=list)
    protocols: list[SMTP] = field(default_factory=list)

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        reply = self.mail_replies.get(address)
        if reply is not None:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        reply = self.replies.get(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        for recipient in envelope.rcpt_tos:
            if recipient in self.data_replies:
                return self.data_replies[recipient]
        content = envelope.original_content or b""
        self.messages.append(
            Received(
                mail_from=str(envelope.mail_from),
                rcpt_tos=list(envelope.rcpt_tos),
                content=content,
                connection=self.protocols.index(server),
            )
        )
        if server.transport is not None and self.hang_up_after_data & set(envelope.rcpt_tos):
            server.transport.abort()
        return "250 2.0.0 Message accepted for delivery"


class SmtpServer(Controller):
    """An aiosmtpd controller that counts client connections and can drop them."""

    handler: RecordingHandler

    def factory(self) -> SMTP:
        protocol = super().factory()
        self.handler.protocols.append(protocol)
        return protocol

    def start(self) -> None:
        super().start()
        # start() itself connects once to see that the server answers; not a client's.
        self.handler.protocols.clear()

    @property
    def connections(self) -> int:
        """How many client connections were opened so far."""
        return len(self.handler.protocols)

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    def drop_connections(self) -> None:
        """Hang up on every client, as a server does after its idle timeout."""
        for protocol in self.handler.protocols:
            transport = protocol.transport
            if transport is not None:
                self.loop.call_soon_threadsafe(transport.close)
        deadline = time.monotonic() + 5
        while any(protocol.transport is not None for protocol in self.handler.protocols):
            if time.monotonic() > deadline:
                raise TimeoutError("the SMTP server did not close its connections")
            time.sleep(0.005)

    def stop(self, no_assert: bool = False) -> None:
        if self._thread is not None:
            self.drop_connections()
        super().stop(no_assert=no_assert)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_smtp_server(*, pipelining: bool = True, **smtp_parameters: Any) -> Iterator[SmtpServer]:
    """Start a recording SMTP server on 127.0.0.1; ``smtp_parameters`` go to aiosmtpd."""
    server = SmtpServer(
        RecordingHandler(pipelining=pipelining),
        hostname="127.0.0.1",
        port=free_port(),
        **smtp_parameters,
    )
    server.start()
    try:
        yield server
    finally:
        if server._thread is not None:
            server.stop()
