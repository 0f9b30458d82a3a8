"""Amazon SES through the v2 API (``sesv2`` ``SendEmail`` with raw content)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import (
    ClientError,
)

from portalflow.models import OutcomeCode
from portalflow.pipelines.delivery.email_outcomes import classify_ses_error

from . import aws
from .base import OutgoingEmail, SendFailure


# SES error code (``error["Code"]``) -> (our code, temporary). Checked against the SESv2
# API reference, SendEmail "Errors", and the "Common Errors" page shared by AWS APIs.
class SesChannel:
    """Sends raw messages with SESv2 ``SendEmail`` through the process's shared client.

    boto3 clients are thread-safe; like every channel, an instance is meant for one thread
    at a time.
    """

    name = "ses"

    def __init__(
        self,
        region: str,
        *,
        endpoint_url: str = "",
        configuration_set: str = "",
        timeout: float = 10.0,
    ) -> None:
        self.configuration_set = configuration_set
        self.client: Any = aws.shared_client("sesv2", region, endpoint_url, timeout)

    def send(self, email: OutgoingEmail) -> str:
        """Send ``email``; return the SES MessageId."""
        request: dict[str, Any] = {
            "FromEmailAddress": email.envelope_from,
            "Destination": {"ToAddresses": [email.recipient]},
            "Content": {"Raw": {"Data": email.raw}},
            "EmailTags": [{"Name": "invitation_id", "Value": str(email.invitation_id)}],
        }
        if self.configuration_set:
            request["ConfigurationSetName"] = self.configuration_set
        response = aws.call(
            self.client.send_email,
            request,
            classify=classify_client_error,
            configuration_code=OutcomeCode.SES_CONFIGURATION,
        )
        return str(response["MessageId"])

    def close(self) -> None:
        """Nothing to release: the client and its connection pool are the process's."""


def classify_client_error(exc: ClientError) -> SendFailure:
    """Turn an SES error answer into a `SendFailure` through `email_outcomes.SES_ERRORS`."""
    error = exc.response.get("Error", {})
    ses_code = str(error.get("Code", ""))
    message = str(error.get("Message", ""))
    detail = f"{ses_code}: {message}" if message else ses_code or str(exc)
    return SendFailure.from_outcome(classify_ses_error(ses_code), detail)
