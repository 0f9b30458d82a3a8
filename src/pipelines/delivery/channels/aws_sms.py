"""AWS End User Messaging SMS (``pinpoint-sms-voice-v2`` ``SendTextMessage``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from botocore.exceptions import (
    ClientError,
)

from portalflow.models import OutcomeCode
from portalflow.pipelines.delivery.sms_outcomes import classify_aws_sms_error

from . import aws
from .base import SendFailure
from .sms_base import LookupUnavailable, OutgoingSms


class AwsSmsChannel:
    """Sends with ``SendTextMessage`` (the process's shared client), one thread at a time."""

    name = "aws"

    def __init__(
        self,
        region: str,
        *,
        endpoint_url: str = "",
        origination_identity: str = "",
        timeout: float = 10.0,
    ) -> None:
        self.origination_identity = origination_identity
        self.client: Any = aws.shared_client("pinpoint-sms-voice-v2", region, endpoint_url, timeout)

    def send(self, sms: OutgoingSms) -> str:
        """Send ``sms`` as a transactional message with its DLT ids; return the MessageId."""
        country_parameters = {"IN_TEMPLATE_ID": sms.dlt_template_id}
        if sms.dlt_entity_id:
            country_parameters["IN_ENTITY_ID"] = sms.dlt_entity_id
        request: dict[str, Any] = {
            "DestinationPhoneNumber": sms.to,
            "MessageBody": sms.body,
            "MessageType": "TRANSACTIONAL",
            "DestinationCountryParameters": country_parameters,
            "Context": {"invitation_id": str(sms.invitation_id)},
        }
        origination = self.origination_identity or sms.sender_id
        if origination:
            request["OriginationIdentity"] = origination
        response = aws.call(
            self.client.send_text_message,
            request,
            classify=classify_client_error,
            configuration_code=OutcomeCode.AWS_SMS_CONFIGURATION,
        )
        return str(response["MessageId"])

    def find_sent(self, to: str, since: datetime, matches: Callable[[str], bool]) -> str | None:
        """Always `LookupUnavailable`: End User Messaging SMS cannot list the messages it took
        (their fate reaches us only as events), so a lost receipt cannot be looked up."""
        raise LookupUnavailable("aws lookup: End User Messaging SMS has no message list")

    def close(self) -> None:
        """Nothing to release: the client and its connection pool are the process's."""


def classify_client_error(exc: ClientError) -> SendFailure:
    """Turn an error answer into a `SendFailure` through `sms_outcomes.classify_aws_sms_error`."""
    error = exc.response.get("Error", {})
    aws_code = str(error.get("Code", ""))
    message = str(error.get("Message", ""))
    # botocore lifts the modeled fields of an error shape (Reason, ...) to the top level.
    reason = str(exc.response.get("Reason", ""))
    detail = f"{aws_code}: {message}" if message else aws_code or str(exc)
    if reason:
        detail = f"{detail} [{reason}]"
    return SendFailure.from_outcome(classify_aws_sms_error(aws_code, reason), detail)
