"""Amazon SES through the v2 API (``sesv2`` ``SendEmail`` with raw content)."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
)

from ..outcomes import classify_ses_error
from . import aws
from .base import OutgoingEmail, SendFailure

SES_CONFIGURATION = "ses_configuration"


# SES error code (``error["Code"]``) -> (our code, temporary). Checked against the SESv2
# API reference, SendEmail "Errors", and the "Common Errors" page shared by AWS APIs.
class SesChannel:
    """Sends raw messages with SESv2 ``SendEmail``; one boto3 client per instance.

    boto3 clients are thread-safe, but like every channel an instance is meant for one
    thread at a time.
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
        config = Config(
            connect_timeout=timeout,
            read_timeout=timeout,
            # One attempt only: our actors own retries (with backoff, a cap and a row
            # status), so the SDK must not silently multiply them.
            retries={"total_max_attempts": 1, "mode": "standard"},
        )
        self.client: Any = boto3.client(
            "sesv2", region_name=region, endpoint_url=endpoint_url or None, config=config
        )

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
            configuration_code=SES_CONFIGURATION,
        )
        return str(response["MessageId"])

    def close(self) -> None:
        """Close the client's HTTP connection pool."""
        self.client.close()


def classify_client_error(exc: ClientError) -> SendFailure:
    """Turn an SES error answer into a `SendFailure` through `outcomes.SES_ERRORS`."""
    error = exc.response.get("Error", {})
    ses_code = str(error.get("Code", ""))
    message = str(error.get("Message", ""))
    detail = f"{ses_code}: {message}" if message else ses_code or str(exc)
    return SendFailure.from_outcome(classify_ses_error(ses_code), detail)
