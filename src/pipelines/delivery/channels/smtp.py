"""SMTP through :mod:`smtplib`, one connection kept open across many sends."""

from __future__ import annotations

import contextlib
import re
import smtplib
import ssl
from typing import Literal

from portalflow.models import OutcomeClass, OutcomeCode
from portalflow.pipelines.delivery.email_outcomes import classify_smtp_reply

from .base import OutgoingEmail, SendFailure, describe_error

CONFIGURATION = OutcomeClass.CONFIGURATION

TlsMode = Literal["none", "starttls", "ssl"]


class _Connection(smtplib.SMTP):
    """An SMTP client that remembers whether the current send reached DATA, and pipelines.

    ``send_pipelined`` is RFC 2920: MAIL, RCPT and DATA go out in one write and their
    replies are read in order, then the message; two round trips a message instead of four.
    """

    data_started = False

    def data(self, msg: bytes | str) -> tuple[int, bytes]:
        self.data_started = True
        return super().data(msg)

    def can_pipeline(self, sender: str, recipient: str) -> bool:
        return (
            self.has_extn("pipelining")
            and _PLAIN_ADDRESS.fullmatch(sender) is not None
            and _PLAIN_ADDRESS.fullmatch(recipient) is not None
        )

    def send_pipelined(self, sender: str, recipient: str, message: bytes) -> None:
        """One transaction, pipelined; raises what ``sendmail`` would for each refusal."""
        size = f" SIZE={len(message)}" if self.has_extn("size") else ""
        self.send(f"MAIL FROM:<{sender}>{size}\r\nRCPT TO:<{recipient}>\r\nDATA\r\n")
        mail, rcpt, data = self.getreply(), self.getreply(), self.getreply()
        if data[0] == 354 and (mail[0] != 250 or rcpt[0] not in (250, 251)):
            self.send(b".\r\n")  # end the DATA we were let into; nothing is delivered
            self.getreply()
        if mail[0] != 250:
            self._give_up()
            raise smtplib.SMTPSenderRefused(mail[0], mail[1], sender)
        if rcpt[0] not in (250, 251):
            self._give_up()
            raise smtplib.SMTPRecipientsRefused({recipient: rcpt})
        if data[0] != 354:
            self._give_up()
            raise smtplib.SMTPDataError(data[0], data[1])
        self.data_started = True
        body = _LEADING_DOT.sub(b"..", _LINE_END.sub(b"\r\n", message))
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        self.send(body + b".\r\n")
        code, reply = self.getreply()
        if code != 250:
            self._give_up()
            raise smtplib.SMTPDataError(code, reply)

    def _give_up(self) -> None:
        """RSET after a refused transaction, as ``sendmail`` does; a dead line is left to
        the next send to notice."""
        with contextlib.suppress(smtplib.SMTPServerDisconnected):
            self.rset()


# Addresses that go into a pipelined command as they are: printable ASCII, no spaces or <>.
_PLAIN_ADDRESS = re.compile(r"[!-;=?-~]+@[!-;=?-~]+")
_LINE_END = re.compile(rb"\r\n|\n|\r(?!\n)")
_LEADING_DOT = re.compile(rb"(?m)^\.")


class _SslConnection(_Connection, smtplib.SMTP_SSL):
    """Implicit TLS (usually port 465)."""


class SmtpChannel:
    """Sends through one SMTP server, reusing one connection for every send.

    Not thread-safe: an instance is used by one thread at a time (each worker thread
    builds its own). The connection opens on the first send and is re-opened once when
    the server has dropped it, e.g. after its idle timeout.
    """

    name = "smtp"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: TlsMode = "none",
        username: str = "",
        password: str = "",
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if tls not in ("none", "starttls", "ssl"):
            raise ValueError(f"tls must be none, starttls or ssl, not {tls!r}")
        self.host = host
        self.port = port
        self.tls = tls
        self.username = username
        self.password = password
        self.timeout = timeout
        self._ssl_context = ssl_context
        self._connection: _Connection | None = None

    def send(self, email: OutgoingEmail) -> str:
        """Send ``email``; return its Message-ID, which is what the server's logs show."""
        for attempt in (1, 2):
            connection = self._connected()
            connection.data_started = False
            try:
                if connection.can_pipeline(email.envelope_from, email.recipient):
                    connection.send_pipelined(email.envelope_from, email.recipient, email.raw)
                else:
                    connection.sendmail(email.envelope_from, [email.recipient], email.raw)
            except smtplib.SMTPServerDisconnected as exc:
                self._discard()
                # Once DATA began the server may have queued the message; resending here
                # could deliver it twice, so the caller's retry policy decides instead.
                if attempt == 2 or connection.data_started:
                    raise SendFailure(
                        OutcomeCode.CONNECTION_ERROR,
                        f"SMTP server disconnected: {exc}",
                        temporary=True,
                    ) from exc
                continue
            except smtplib.SMTPRecipientsRefused as exc:
                code, reply = exc.recipients.get(email.recipient, (550, b"recipient refused"))
                raise _reply_failure(code, reply) from exc
            except smtplib.SMTPNotSupportedError as exc:
                raise SendFailure(
                    OutcomeCode.SMTP_CONFIGURATION,
                    str(exc),
                    temporary=False,
                    outcome_class=CONFIGURATION,
                ) from exc
            except smtplib.SMTPResponseException as exc:
                if connection.sock is None:  # smtplib hangs up itself after a 421
                    self._discard()
                # A refused MAIL FROM is about us: never a reason to suppress the recipient.
                about_recipient = not isinstance(exc, smtplib.SMTPSenderRefused)
                raise _reply_failure(
                    exc.smtp_code, exc.smtp_error, about_recipient=about_recipient
                ) from exc
            except UnicodeEncodeError as exc:
                self._discard()  # a command may be half sent; start afresh next time
                raise SendFailure(
                    OutcomeCode.SMTP_REJECTED, f"address is not ASCII: {exc}", temporary=False
                ) from exc
            except (OSError, smtplib.SMTPException) as exc:
                self._discard()
                raise SendFailure(
                    OutcomeCode.CONNECTION_ERROR, describe_error(exc), temporary=True
                ) from exc
            return email.message_id
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Say QUIT and drop the connection; a later send would open a new one."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.quit()
        except (OSError, smtplib.SMTPException):
            connection.close()

    @property
    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context, made on first use: loading the CA store costs tens of ms, and a
        channel is built per chunk, most of them never speaking TLS."""
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    def _connected(self) -> _Connection:
        if self._connection is None:
            self._connection = self._open()
        return self._connection

    def _open(self) -> _Connection:
        if self.tls == "ssl":
            connection: _Connection = _SslConnection(timeout=self.timeout, context=self.ssl_context)
        else:
            connection = _Connection(timeout=self.timeout)
        try:
            connection.connect(self.host, self.port)
            if self.tls == "starttls":
                connection.starttls(context=self.ssl_context)
            connection.ehlo_or_helo_if_needed()
            if self.username:
                connection.login(self.username, self.password)
        except (smtplib.SMTPNotSupportedError, ssl.SSLCertVerificationError) as exc:
            connection.close()
            raise SendFailure(
                OutcomeCode.SMTP_CONFIGURATION,
                describe_error(exc),
                temporary=False,
                outcome_class=CONFIGURATION,
            ) from exc
        except smtplib.SMTPResponseException as exc:
            connection.close()
            if 500 <= exc.smtp_code <= 599:  # e.g. 535 bad credentials, 554 at greeting
                raise SendFailure(
                    OutcomeCode.SMTP_CONFIGURATION,
                    _reply_text(exc.smtp_code, exc.smtp_error),
                    temporary=False,
                    outcome_class=CONFIGURATION,
                ) from exc
            raise _reply_failure(exc.smtp_code, exc.smtp_error, about_recipient=False) from exc
        except (OSError, smtplib.SMTPException) as exc:
            connection.close()
            raise SendFailure(
                OutcomeCode.CONNECTION_ERROR,
                f"{self.host}:{self.port}: {describe_error(exc)}",
                temporary=True,
            ) from exc
        return connection

    def _discard(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


def _reply_failure(code: int, reply: bytes | str, *, about_recipient: bool = True) -> SendFailure:
    """The failure for a refusal, classified by ``email_outcomes.classify_smtp_reply``.

    A refusal of RCPT or of DATA (one recipient per message) may be about the recipient,
    and a 5.1.1-like one then suppresses the address.
    """
    text = _reply_text(code, reply)
    outcome = classify_smtp_reply(code, text.partition(" ")[2], about_recipient=about_recipient)
    return SendFailure.from_outcome(outcome, text)


def _reply_text(code: int, reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return f"{code} {text}"
