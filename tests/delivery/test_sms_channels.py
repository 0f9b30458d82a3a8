"""The SMS channels against real parts: a folder, and the real Twilio and AWS SDKs talking
HTTP to local servers (tests/twilio_server.py, tests/aws_sms_server.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from portalflow.config import Settings, SettingsError
from portalflow.pipelines.delivery.channels import build_sms_channel
from portalflow.pipelines.delivery.channels.aws_sms import AwsSmsChannel
from portalflow.pipelines.delivery.channels.base import SendFailure
from portalflow.pipelines.delivery.channels.sms_base import OutgoingSms
from portalflow.pipelines.delivery.channels.sms_outbox import SmsOutboxChannel
from portalflow.pipelines.delivery.channels.twilio_sms import TwilioSmsChannel

from ..aws_sms_server import TARGET, AwsSmsServer, running_aws_sms_server
from ..smtp_server import free_port
from ..twilio_server import TwilioServer, running_twilio_server

ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "s3cret-token"
SERVICE_SID = "MG" + "2" * 32
BODY = "Dear Ada, join the Zylker portal: https://in.zcrm.to/aB3 -Zylker"


def make_sms(invitation_id: int = 1, to: str = "+919812345678") -> OutgoingSms:
    return OutgoingSms(
        invitation_id=invitation_id,
        to=to,
        body=BODY,
        sender_id="ZYLKER",
        dlt_entity_id="1101234567890123456",
        dlt_template_id="1107161234567890123",
    )


def expect_failure(channel: TwilioSmsChannel | AwsSmsChannel, sms: OutgoingSms) -> SendFailure:
    with pytest.raises(SendFailure) as raised:
        channel.send(sms)
    return raised.value


# --- outbox -------------------------------------------------------------------------------


def test_outbox_writes_one_json_file_per_message(tmp_path: Path) -> None:
    outbox = tmp_path / "not-yet-there"
    channel = SmsOutboxChannel(outbox)

    first = channel.send(make_sms(7))
    second = channel.send(make_sms(7))  # another attempt of the same invitation
    channel.close()

    assert first.startswith("outbox-") and second.startswith("outbox-") and first != second
    paths = sorted(outbox.iterdir())
    assert len(paths) == 2  # and no temp files left behind
    assert all(p.name.startswith("7-") and p.suffix == ".json" for p in paths)
    documents = [json.loads(p.read_text(encoding="utf-8")) for p in paths]
    assert {d["provider_id"] for d in documents} == {first, second}
    assert documents[0] | {"provider_id": None} == {
        "provider_id": None,
        "invitation_id": 7,
        "to": "+919812345678",
        "body": BODY,
        "sender_id": "ZYLKER",
        "dlt_entity_id": "1101234567890123456",
        "dlt_template_id": "1107161234567890123",
    }


def test_outbox_that_cannot_be_written_is_a_temporary_failure(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")

    with pytest.raises(SendFailure) as raised:
        SmsOutboxChannel(blocker / "sms").send(make_sms())

    assert (raised.value.code, raised.value.temporary) == ("outbox_write_failed", True)


# --- Twilio (twilio-python over HTTP to tests/twilio_server.py) ---------------------------


@pytest.fixture
def twilio_server() -> Iterator[TwilioServer]:
    with running_twilio_server(ACCOUNT_SID, AUTH_TOKEN) as server:
        yield server


def twilio_channel(
    base_url: str, *, from_: str = "ZYLKER", service: str = "", timeout: float = 5
) -> TwilioSmsChannel:
    return TwilioSmsChannel(
        ACCOUNT_SID,
        AUTH_TOKEN,
        from_=from_,
        messaging_service_sid=service,
        timeout=timeout,
        api_base_url=base_url,
    )


def test_twilio_creates_a_message_from_the_sender(twilio_server: TwilioServer) -> None:
    channel = twilio_channel(twilio_server.base_url)

    sid = channel.send(make_sms())
    channel.close()

    assert sid.startswith("SM")
    [request] = twilio_server.state.requests
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert request.auth == (ACCOUNT_SID, AUTH_TOKEN)
    # No DLT ids travel: Twilio holds them against the sender, registered out of band.
    assert request.form == {"To": "+919812345678", "From": "ZYLKER", "Body": BODY}


def test_twilio_messaging_service_instead_of_a_sender(twilio_server: TwilioServer) -> None:
    channel = twilio_channel(twilio_server.base_url, from_="", service=SERVICE_SID)

    sid = channel.send(make_sms())
    channel.close()

    assert sid.startswith("SM")
    [request] = twilio_server.state.requests
    assert request.form == {"To": "+919812345678", "MessagingServiceSid": SERVICE_SID, "Body": BODY}


@pytest.mark.parametrize(
    ("twilio_code", "status", "code", "temporary"),
    [
        (21211, 400, "invalid_to_number", False),
        (21614, 400, "not_mobile_number", False),
        (21610, 400, "opted_out", False),
        (21408, 400, "region_not_enabled", False),
        (30007, 400, "carrier_filtered", False),
        (20429, 429, "twilio_throttled", True),
        # Unknown answers get a bounded number of retries, whatever the status.
        (99999, 400, "twilio_unknown", True),
        (99999, 503, "twilio_unknown", True),
        (99999, 429, "twilio_throttled", True),
    ],
)
def test_twilio_error_codes_map_to_failures(
    twilio_server: TwilioServer, twilio_code: int, status: int, code: str, temporary: bool
) -> None:
    twilio_server.state.fail("+10005550100", twilio_code, status, message="why")
    channel = twilio_channel(twilio_server.base_url)

    failure = expect_failure(channel, make_sms(to="+10005550100"))
    channel.close()

    assert (failure.code, failure.temporary) == (code, temporary)
    assert str(twilio_code) in failure.detail and "why" in failure.detail
    assert len(twilio_server.state.requests) == 1  # the SDK did not retry on its own


def test_twilio_rfc9457_problem_document_is_classified_too(twilio_server: TwilioServer) -> None:
    twilio_server.state.fail_rfc9457(
        "+10005550101", 21610, 400, "Unsubscribed recipient", "The recipient replied STOP"
    )
    channel = twilio_channel(twilio_server.base_url)

    failure = expect_failure(channel, make_sms(to="+10005550101"))
    channel.close()

    assert (failure.code, failure.temporary) == ("opted_out", False)
    assert "replied STOP" in failure.detail


def test_twilio_wrong_auth_token_is_a_configuration_error(twilio_server: TwilioServer) -> None:
    channel = TwilioSmsChannel(
        ACCOUNT_SID, "wrong", from_="ZYLKER", timeout=5, api_base_url=twilio_server.base_url
    )

    failure = expect_failure(channel, make_sms())
    channel.close()

    assert (failure.code, failure.temporary) == ("twilio_configuration", False)
    assert "20003" in failure.detail


def test_twilio_nothing_listening_is_a_temporary_connection_error() -> None:
    channel = twilio_channel(f"http://127.0.0.1:{free_port()}", timeout=1)

    failure = expect_failure(channel, make_sms())
    channel.close()

    assert (failure.code, failure.temporary) == ("connection_error", True)


def test_twilio_no_answer_in_time_is_a_temporary_connection_error(
    twilio_server: TwilioServer,
) -> None:
    twilio_server.state.stall.add("+10005550102")
    channel = twilio_channel(twilio_server.base_url, timeout=0.3)

    failure = expect_failure(channel, make_sms(to="+10005550102"))
    channel.close()

    assert (failure.code, failure.temporary) == ("connection_error", True)
    assert "Timeout" in failure.detail


def test_twilio_without_a_sender_or_service_is_refused() -> None:
    with pytest.raises(ValueError, match="messaging service"):
        TwilioSmsChannel(ACCOUNT_SID, AUTH_TOKEN)


# --- AWS End User Messaging SMS (boto3 over HTTP to tests/aws_sms_server.py) --------------


@pytest.fixture
def aws_sms_server(aws_env: None) -> Iterator[AwsSmsServer]:
    with running_aws_sms_server() as server:
        yield server


def aws_channel(endpoint_url: str, origination: str = "", timeout: float = 5) -> AwsSmsChannel:
    return AwsSmsChannel(
        "ap-south-1", endpoint_url=endpoint_url, origination_identity=origination, timeout=timeout
    )


def test_aws_sends_a_transactional_message_with_its_dlt_ids(
    aws_sms_server: AwsSmsServer,
) -> None:
    channel = aws_channel(aws_sms_server.endpoint_url)

    message_id = channel.send(make_sms(42))
    channel.close()

    [request] = aws_sms_server.state.requests
    assert message_id and request.target == TARGET
    assert request.headers["Content-Type"] == "application/x-amz-json-1.0"
    assert "/ap-south-1/sms-voice/" in request.headers["Authorization"]  # SigV4 scope
    assert request.body == {
        "DestinationPhoneNumber": "+919812345678",
        "OriginationIdentity": "ZYLKER",  # the message's sender id, none configured
        "MessageBody": BODY,
        "MessageType": "TRANSACTIONAL",
        "DestinationCountryParameters": {
            "IN_ENTITY_ID": "1101234567890123456",
            "IN_TEMPLATE_ID": "1107161234567890123",
        },
        "Context": {"invitation_id": "42"},
    }


def test_aws_configured_origination_identity_wins(aws_sms_server: AwsSmsServer) -> None:
    pool = "arn:aws:sms-voice:ap-south-1:111122223333:pool/pool-abc"
    channel = aws_channel(aws_sms_server.endpoint_url, origination=pool)

    channel.send(replace(make_sms(), dlt_entity_id=None))
    channel.close()

    [request] = aws_sms_server.state.requests
    assert request.body["OriginationIdentity"] == pool
    assert request.body["DestinationCountryParameters"] == {"IN_TEMPLATE_ID": "1107161234567890123"}


@pytest.mark.parametrize(
    ("error_type", "status", "fields", "code", "temporary"),
    [
        ("ValidationException", 400, {}, "aws_sms_rejected", False),
        ("ThrottlingException", 400, {}, "aws_sms_throttled", True),
        ("ThrottlingException", 429, {}, "aws_sms_throttled", True),
        ("InternalServerException", 500, {}, "aws_sms_unavailable", True),
        (
            "AccessDeniedException",
            400,
            {"Reason": "ACCOUNT_DISABLED"},
            "aws_sms_configuration",
            False,
        ),
        ("ResourceNotFoundException", 400, {}, "aws_sms_configuration", False),
        ("ServiceQuotaExceededException", 400, {}, "aws_sms_configuration", False),
        (
            "ConflictException",
            400,
            {"Reason": "DESTINATION_PHONE_NUMBER_OPTED_OUT"},
            "opted_out",
            False,
        ),
        (
            "ValidationException",
            400,
            {"Reason": "SENDER_ID_NOT_REGISTERED"},
            "aws_sms_configuration",
            False,
        ),
        # Unknown answers get a bounded number of retries, whatever the status.
        ("SomethingNew", 400, {}, "aws_sms_unknown", True),
    ],
)
def test_aws_error_answers_map_to_failures(
    aws_sms_server: AwsSmsServer,
    error_type: str,
    status: int,
    fields: dict[str, str],
    code: str,
    temporary: bool,
) -> None:
    aws_sms_server.state.fail("+10005550100", error_type, status, **fields)
    channel = aws_channel(aws_sms_server.endpoint_url)

    failure = expect_failure(channel, make_sms(to="+10005550100"))
    channel.close()

    assert (failure.code, failure.temporary) == (code, temporary)
    assert failure.detail.startswith(f"{error_type}: error")
    assert len(aws_sms_server.state.requests) == 1  # the SDK did not retry on its own


def test_aws_nothing_listening_is_a_temporary_connection_error(aws_env: None) -> None:
    channel = aws_channel(f"http://127.0.0.1:{free_port()}", timeout=1)

    failure = expect_failure(channel, make_sms())
    channel.close()

    assert (failure.code, failure.temporary) == ("connection_error", True)


# --- choosing a channel -------------------------------------------------------------------


def test_build_sms_channel_picks_the_configured_kind(tmp_path: Path, aws_env: None) -> None:
    base = Settings(var_dir=tmp_path)

    outbox = build_sms_channel(base)
    twilio = build_sms_channel(
        replace(
            base,
            sms_channel="twilio",
            twilio_account_sid=ACCOUNT_SID,
            twilio_auth_token=AUTH_TOKEN,
            twilio_messaging_service_sid=SERVICE_SID,
            twilio_api_base_url="http://127.0.0.1:9",
            twilio_timeout=3,
        )
    )
    aws = build_sms_channel(
        replace(base, sms_channel="aws", aws_sms_region="ap-south-1", aws_sms_timeout=4)
    )

    assert isinstance(outbox, SmsOutboxChannel)
    assert outbox.directory == tmp_path / "outbox" / "sms"
    assert isinstance(twilio, TwilioSmsChannel)
    assert twilio.messaging_service_sid == SERVICE_SID and twilio.http_client.timeout == 3
    assert twilio.client.api.base_url == "http://127.0.0.1:9"
    assert isinstance(aws, AwsSmsChannel) and aws.client.meta.region_name == "ap-south-1"
    assert aws.client.meta.config.read_timeout == 4
    assert [channel.name for channel in (outbox, twilio, aws)] == ["outbox", "twilio", "aws"]
    for channel in (outbox, twilio, aws):
        channel.close()


def test_build_sms_channel_refuses_twilio_without_a_sender_or_service(tmp_path: Path) -> None:
    settings = Settings(
        var_dir=tmp_path,
        sms_channel="twilio",
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
    )

    with pytest.raises(SettingsError, match="PORTALFLOW_TWILIO_MESSAGING_SERVICE_SID"):
        build_sms_channel(settings)
