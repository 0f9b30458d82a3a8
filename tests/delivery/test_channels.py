"""The email channels against real parts: a folder, an SMTP server, moto's SES over HTTP."""

from __future__ import annotations

import email
import email.policy
import pickle
from collections.abc import Iterator
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from botocore.exceptions import ClientError

from portalflow.config import Settings
from portalflow.pipelines.delivery.channels import build_email_channel
from portalflow.pipelines.delivery.channels.base import OutgoingEmail, SendFailure
from portalflow.pipelines.delivery.channels.outbox import OutboxChannel
from portalflow.pipelines.delivery.channels.ses import SesChannel, classify_client_error
from portalflow.pipelines.delivery.channels.smtp import SmtpChannel

from ..moto_server import sent_raw_messages
from ..smtp_server import SmtpServer, free_port, running_smtp_server

SENDER = "portal@example.com"


def make_email(
    invitation_id: int = 1, recipient: str = "ada@example.org", n: int = 0
) -> OutgoingEmail:
    message = EmailMessage(policy=email.policy.SMTP)
    message_id = f"<{invitation_id}.{n}@example.com>"
    message["From"] = f"Example Portal <{SENDER}>"
    message["To"] = recipient
    message["Subject"] = f"Your invitation {invitation_id}/{n}"
    message["Message-ID"] = message_id
    # The line that starts with a dot must survive the SMTP dot-stuffing.
    message.set_content(f"Hello,\n\naccept here: https://example.com/accept?n={n}\n.\n.end\n")
    return OutgoingEmail(
        invitation_id=invitation_id,
        envelope_from=SENDER,
        recipient=recipient,
        raw=message.as_bytes(),
        message_id=message_id,
    )


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def body(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return part.get_content()


def test_send_failure_keeps_its_fields_through_pickle() -> None:
    failure = SendFailure("smtp_temporary", "451 try later", temporary=True)
    copy = pickle.loads(pickle.dumps(failure))
    assert (copy.code, copy.detail, copy.temporary) == ("smtp_temporary", "451 try later", True)


# --- outbox -------------------------------------------------------------------------------


def test_outbox_writes_one_parsable_file_per_message(tmp_path: Path) -> None:
    outbox = tmp_path / "not-yet-there"
    channel = OutboxChannel(outbox)
    sent = make_email(7)

    provider_id = channel.send(sent)

    assert provider_id == sent.message_id
    [path] = outbox.iterdir()
    assert path.name.startswith("7-") and path.suffix == ".eml"
    assert path.read_bytes() == sent.raw
    message = parse(path.read_bytes())
    assert message["Subject"] == "Your invitation 7/0"
    assert message["Message-ID"] == sent.message_id
    assert "accept here" in body(message)


def test_outbox_keeps_every_attempt_of_one_invitation_and_no_temp_files(outbox_dir: Path) -> None:
    channel = OutboxChannel(outbox_dir)
    first, second = make_email(9, n=1), make_email(9, n=2)

    channel.send(first)
    channel.send(second)
    channel.send(second)  # the same message again overwrites its own file
    channel.close()

    names = sorted(path.name for path in outbox_dir.iterdir())
    assert len(names) == 2
    assert all(name.startswith("9-") and name.endswith(".eml") for name in names)
    subjects = {parse((outbox_dir / name).read_bytes())["Subject"] for name in names}
    assert subjects == {"Your invitation 9/1", "Your invitation 9/2"}


def test_outbox_that_cannot_be_written_is_a_temporary_failure(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")

    with pytest.raises(SendFailure) as raised:
        OutboxChannel(blocker / "outbox").send(make_email())

    assert raised.value.temporary
    assert raised.value.code == "outbox_write_failed"


# --- SMTP ---------------------------------------------------------------------------------


@pytest.fixture(params=[True, False], ids=["pipelining", "one-command-at-a-time"])
def smtp_server(request: pytest.FixtureRequest) -> Iterator[SmtpServer]:
    """Every SMTP test runs against a server with RFC 2920 PIPELINING and one without."""
    with running_smtp_server(pipelining=request.param) as server:
        yield server


@pytest.fixture
def smtp_channel(smtp_server: SmtpServer) -> Iterator[SmtpChannel]:
    channel = SmtpChannel(smtp_server.hostname, smtp_server.port, timeout=5)
    yield channel
    channel.close()


def test_smtp_message_arrives_intact(smtp_server: SmtpServer, smtp_channel: SmtpChannel) -> None:
    sent = make_email(3)

    provider_id = smtp_channel.send(sent)

    assert provider_id == sent.message_id
    [received] = smtp_server.messages
    assert received.mail_from == SENDER
    assert received.rcpt_tos == [sent.recipient]
    assert received.content == sent.raw
    message = parse(received.content)
    assert message["Subject"] == "Your invitation 3/0"
    assert body(message) == body(parse(sent.raw))


def test_smtp_pipelines_exactly_when_the_server_offers_it(
    smtp_server: SmtpServer, smtp_channel: SmtpChannel, monkeypatch: pytest.MonkeyPatch
) -> None:
    from portalflow.pipelines.delivery.channels import smtp

    pipelined: list[str] = []
    original = smtp._Connection.send_pipelined

    def counted(self: smtp._Connection, sender: str, recipient: str, message: bytes) -> None:
        pipelined.append(recipient)
        original(self, sender, recipient, message)

    monkeypatch.setattr(smtp._Connection, "send_pipelined", counted)
    for n in range(3):
        smtp_channel.send(make_email(n, recipient=f"user{n}@example.org"))

    offered = smtp_server.handler.pipelining
    assert pipelined == ([f"user{n}@example.org" for n in range(3)] if offered else [])
    assert [m.rcpt_tos for m in smtp_server.messages] == [
        [f"user{n}@example.org"] for n in range(3)
    ]


def test_smtp_many_sends_share_one_connection(
    smtp_server: SmtpServer, smtp_channel: SmtpChannel
) -> None:
    for n in range(25):
        smtp_channel.send(make_email(100 + n, recipient=f"user{n}@example.org"))

    assert len(smtp_server.messages) == 25
    assert smtp_server.connections == 1
    assert {received.connection for received in smtp_server.messages} == {0}


@pytest.mark.parametrize(
    ("reply", "code", "temporary", "suppress"),
    [
        ("550 5.1.1 No such user", "smtp_no_such_user", False, True),
        ("550 5.1.10 Recipient address has null MX", "smtp_null_mx", False, True),
        (
            "550 5.2.1 Mailbox disabled, not accepting messages",
            "smtp_mailbox_disabled",
            False,
            True,
        ),
        ("554 5.7.1 Relay access denied", "smtp_policy_rejected", False, False),
        ("550 Requested action not taken", "smtp_rejected", False, False),
        ("451 4.3.0 Try again later", "smtp_temporary", True, False),
    ],
)
def test_smtp_refused_recipient(
    smtp_server: SmtpServer,
    smtp_channel: SmtpChannel,
    reply: str,
    code: str,
    temporary: bool,
    suppress: bool,
) -> None:
    smtp_server.handler.replies["nobody@example.org"] = reply

    with pytest.raises(SendFailure) as raised:
        smtp_channel.send(make_email(recipient="nobody@example.org"))

    assert (raised.value.code, raised.value.temporary) == (code, temporary)
    assert raised.value.suppress is suppress
    assert reply.split()[0] in raised.value.detail
    # The connection stays usable for the next message of the chunk.
    smtp_channel.send(make_email(recipient="somebody@example.org"))
    assert [received.rcpt_tos for received in smtp_server.messages] == [["somebody@example.org"]]
    assert smtp_server.connections == 1


def test_smtp_recipient_refused_at_the_end_of_data_is_suppressed(
    smtp_server: SmtpServer, smtp_channel: SmtpChannel
) -> None:
    smtp_server.handler.data_replies["gone@example.org"] = "550 5.1.1 User unknown"

    with pytest.raises(SendFailure) as raised:
        smtp_channel.send(make_email(recipient="gone@example.org"))

    assert (raised.value.code, raised.value.suppress) == ("smtp_no_such_user", True)


def test_smtp_refused_sender_never_suppresses_the_recipient(
    smtp_server: SmtpServer, smtp_channel: SmtpChannel
) -> None:
    # Even with a recipient-like status: MAIL FROM was refused, so it is about us.
    smtp_server.handler.mail_replies[SENDER] = "550 5.1.1 Sender address rejected"

    with pytest.raises(SendFailure) as raised:
        smtp_channel.send(make_email(recipient="ada@example.org"))

    assert (raised.value.code, raised.value.suppress) == ("smtp_rejected", False)
    assert smtp_server.messages == []


def test_smtp_reconnects_once_after_the_server_hung_up(
    smtp_server: SmtpServer, smtp_channel: SmtpChannel
) -> None:
    smtp_channel.send(make_email(1))
    smtp_server.drop_connections()

    smtp_channel.send(make_email(2))

    assert [received.connection for received in smtp_server.messages] == [0, 1]
    assert smtp_server.connections == 2


def test_smtp_hang_up_after_data_is_not_resent(
    smtp_server: SmtpServer, smtp_channel: SmtpChannel
) -> None:
    smtp_server.handler.hang_up_after_data.add("ada@example.org")

    with pytest.raises(SendFailure) as raised:
        smtp_channel.send(make_email(5))

    # The server may have queued it: a second copy is the caller's retry decision.
    assert (raised.value.code, raised.value.temporary) == ("connection_error", True)
    assert len(smtp_server.messages) == 1
    smtp_server.handler.hang_up_after_data.clear()
    smtp_channel.send(make_email(6))
    assert smtp_server.connections == 2


def test_smtp_server_gone_is_a_temporary_connection_error() -> None:
    with running_smtp_server() as server:
        channel = SmtpChannel(server.hostname, server.port, timeout=5)
        channel.send(make_email(1))
    # The server stopped: the open connection is dead and the reconnect is refused.
    with pytest.raises(SendFailure) as raised:
        channel.send(make_email(2))
    channel.close()

    assert (raised.value.code, raised.value.temporary) == ("connection_error", True)


def test_smtp_nothing_listening_is_a_temporary_connection_error() -> None:
    channel = SmtpChannel("127.0.0.1", free_port(), timeout=2)

    with pytest.raises(SendFailure) as raised:
        channel.send(make_email())

    assert (raised.value.code, raised.value.temporary) == ("connection_error", True)


def test_smtp_login() -> None:
    def authenticator(*args: object) -> AuthResult:
        auth_data = args[-1]
        ok = isinstance(auth_data, LoginPassword) and auth_data == (b"mailer", b"s3cret")
        # handled=False makes aiosmtpd answer 535 itself (the default, True, stays silent).
        return AuthResult(success=ok, handled=False)

    with running_smtp_server(authenticator=authenticator, auth_require_tls=False) as server:
        good = SmtpChannel(
            server.hostname, server.port, username="mailer", password="s3cret", timeout=5
        )
        good.send(make_email(1))
        good.close()
        bad = SmtpChannel(
            server.hostname, server.port, username="mailer", password="wrong", timeout=5
        )
        with pytest.raises(SendFailure) as raised:
            bad.send(make_email(2))
        bad.close()

    assert len(server.messages) == 1
    assert (raised.value.code, raised.value.temporary) == ("smtp_configuration", False)


def test_smtp_starttls_against_a_server_without_it_is_a_configuration_error(
    smtp_server: SmtpServer,
) -> None:
    channel = SmtpChannel(smtp_server.hostname, smtp_server.port, tls="starttls", timeout=5)

    with pytest.raises(SendFailure) as raised:
        channel.send(make_email())
    channel.close()

    assert (raised.value.code, raised.value.temporary) == ("smtp_configuration", False)
    assert smtp_server.messages == []


# --- SES (moto server mode over HTTP) -----------------------------------------------------


def ses_channel(endpoint_url: str, timeout: float = 5) -> SesChannel:
    return SesChannel("us-east-1", endpoint_url=endpoint_url, timeout=timeout)


def test_ses_sends_a_raw_message_from_a_verified_sender(ses_endpoint: str) -> None:
    channel = ses_channel(ses_endpoint)
    channel.client.create_email_identity(EmailIdentity=SENDER)
    sent = make_email(42)

    message_id = channel.send(sent)
    channel.close()

    assert message_id
    [recorded] = sent_raw_messages(ses_endpoint)
    assert recorded["id"] == message_id
    assert recorded["source"] == SENDER
    assert sent.recipient in recorded["destinations"]
    message = parse(recorded["raw_data"].encode())
    assert message["Subject"] == "Your invitation 42/0"
    assert body(message) == body(parse(sent.raw))


def test_ses_unverified_sender_is_a_permanent_rejection(ses_endpoint: str) -> None:
    channel = ses_channel(ses_endpoint)

    with pytest.raises(SendFailure) as raised:
        channel.send(make_email())
    channel.close()

    assert (raised.value.code, raised.value.temporary) == ("ses_rejected", False)
    assert "MessageRejected" in raised.value.detail
    assert sent_raw_messages(ses_endpoint) == []


def test_ses_nothing_listening_is_a_temporary_connection_error(aws_env: None) -> None:
    channel = ses_channel(f"http://127.0.0.1:{free_port()}", timeout=1)

    with pytest.raises(SendFailure) as raised:
        channel.send(make_email())
    channel.close()

    assert (raised.value.code, raised.value.temporary) == ("connection_error", True)


@pytest.mark.parametrize(
    ("ses_code", "status", "code", "temporary"),
    [
        ("TooManyRequestsException", 429, "ses_throttled", True),
        ("MessageRejected", 400, "ses_rejected", False),
        ("SendingPausedException", 400, "sending_paused", False),
        ("MailFromDomainNotVerifiedException", 400, "mail_from_domain_not_verified", False),
        # Unknown answers get a bounded number of retries, whatever the status.
        ("SomethingNew", 400, "ses_unknown", True),
        ("SomethingNew", 503, "ses_unknown", True),
    ],
)
def test_ses_error_codes_map_to_failures(
    ses_code: str, status: int, code: str, temporary: bool
) -> None:
    error = ClientError(
        {
            "Error": {"Code": ses_code, "Message": "why"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "SendEmail",
    )

    failure = classify_client_error(error)

    assert (failure.code, failure.temporary) == (code, temporary)
    assert failure.detail == f"{ses_code}: why"


# --- choosing a channel -------------------------------------------------------------------


def test_build_email_channel_picks_the_configured_kind(tmp_path: Path, aws_env: None) -> None:
    base = Settings(var_dir=tmp_path)

    outbox = build_email_channel(base)
    smtp = build_email_channel(
        replace(base, email_channel="smtp", smtp_host="mail.internal", smtp_port=2525)
    )
    ses = build_email_channel(
        replace(base, email_channel="ses", ses_region="eu-west-1", ses_configuration_set="cs")
    )

    assert isinstance(outbox, OutboxChannel) and outbox.directory == tmp_path / "outbox"
    assert isinstance(smtp, SmtpChannel) and (smtp.host, smtp.port) == ("mail.internal", 2525)
    assert isinstance(ses, SesChannel) and ses.client.meta.region_name == "eu-west-1"
    assert [channel.name for channel in (outbox, smtp, ses)] == ["outbox", "smtp", "ses"]
    for channel in (outbox, smtp, ses):
        channel.close()
