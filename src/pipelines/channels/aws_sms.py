"""AWS End User Messaging SMS (``pinpoint-sms-voice-v2`` ``SendTextMessage``)."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from .base import CONNECTION_ERROR, SendFailure
from .sms_base import OutgoingSms

AWS_SMS_THROTTLED = "aws_sms_throttled"
AWS_SMS_REJECTED = "aws_sms_rejected"
AWS_SMS_OPTED_OUT = "aws_sms_opted_out"
AWS_SMS_CONFIGURATION = "aws_sms_configuration"
AWS_SMS_UNAVAILABLE = "aws_sms_unavailable"
AWS_SMS_UNKNOWN = "aws_sms_unknown"

# Error code (``error["Code"]``) -> (our code, temporary). Checked against the API
# reference, SendTextMessage "Errors", and the "Common Errors" page shared by AWS APIs.
AWS_SMS_ERRORS: dict[str, tuple[str, bool]] = {
    # SendTextMessage errors
    "ThrottlingException": (AWS_SMS_THROTTLED, True),  # over the MPS or API rate
    "ValidationException": (AWS_SMS_REJECTED, False),  # bad number, DLT ids, body...
    "ConflictException": (AWS_SMS_REJECTED, False),  # e.g. opted out (see Reason below)
    "AccessDeniedException": (AWS_SMS_CONFIGURATION, False),  # account disabled, IAM
    "ResourceNotFoundException": (AWS_SMS_CONFIGURATION, False),  # origination identity
    "ServiceQuotaExceededException": (AWS_SMS_CONFIGURATION, False),  # e.g. spend limit
    "InternalServerException": (AWS_SMS_UNAVAILABLE, True),
    # Common errors
    "InternalFailure": (AWS_SMS_UNAVAILABLE, True),
    "ServiceUnavailable": (AWS_SMS_UNAVAILABLE, True),
    "UnrecognizedClientException": (AWS_SMS_CONFIGURATION, False),
    "InvalidClientTokenId": (AWS_SMS_CONFIGURATION, False),
    "SignatureDoesNotMatch": (AWS_SMS_CONFIGURATION, False),
    "MissingAuthenticationToken": (AWS_SMS_CONFIGURATION, False),
}

# The error's ``Reason`` field -> (our code, temporary), where it says more than the code.
AWS_SMS_REASONS: dict[str, tuple[str, bool]] = {
    "DESTINATION_PHONE_NUMBER_OPTED_OUT": (AWS_SMS_OPTED_OUT, False),  # ConflictException
    "DESTINATION_PHONE_NUMBER_NOT_VERIFIED": (AWS_SMS_CONFIGURATION, False),  # sandbox
    "NO_ORIGINATION_IDENTITIES_FOUND": (AWS_SMS_CONFIGURATION, False),
    "SENDER_ID_NOT_REGISTERED": (AWS_SMS_CONFIGURATION, False),  # ValidationException
    "SENDER_ID_REQUIRES_REGISTRATION": (AWS_SMS_CONFIGURATION, False),
    "COUNTRY_NOT_ENABLED": (AWS_SMS_CONFIGURATION, False),
}


class AwsSmsChannel:
    """Sends with ``SendTextMessage``; one boto3 client per instance, one thread at a time."""

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
        config = Config(
            connect_timeout=timeout,
            read_timeout=timeout,
            # One attempt only: our actors own retries (with backoff, a cap and a row
            # status), so the SDK must not silently multiply them. Not "max_attempts":
            # botocore counts that in retries *after* the first try, so 1 means two sends.
            retries={"total_max_attempts": 1, "mode": "standard"},
        )
        self.client: Any = boto3.client(
            "pinpoint-sms-voice-v2",
            region_name=region,
            endpoint_url=endpoint_url or None,
            config=config,
        )

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
        try:
            response = self.client.send_text_message(**request)
        except ClientError as exc:
            raise classify_client_error(exc) from exc
        except (BotoConnectionError, HTTPClientError) as exc:
            # EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError and friends.
            raise SendFailure(CONNECTION_ERROR, str(exc), temporary=True) from exc
        except (NoCredentialsError, PartialCredentialsError) as exc:
            raise SendFailure(AWS_SMS_CONFIGURATION, str(exc), temporary=False) from exc
        return str(response["MessageId"])

    def close(self) -> None:
        """Close the client's HTTP connection pool."""
        self.client.close()


def classify_client_error(exc: ClientError) -> SendFailure:
    """Turn an error answer into a `SendFailure` by `AWS_SMS_REASONS`, then `AWS_SMS_ERRORS`."""
    error = exc.response.get("Error", {})
    aws_code = str(error.get("Code", ""))
    message = str(error.get("Message", ""))
    # botocore lifts the modeled fields of an error shape (Reason, ...) to the top level.
    reason = str(exc.response.get("Reason", ""))
    detail = f"{aws_code}: {message}" if message else aws_code or str(exc)
    if reason:
        detail = f"{detail} [{reason}]"
    if reason in AWS_SMS_REASONS:
        code, temporary = AWS_SMS_REASONS[reason]
        return SendFailure(code, detail, temporary=temporary)
    if aws_code in AWS_SMS_ERRORS:
        code, temporary = AWS_SMS_ERRORS[aws_code]
        return SendFailure(code, detail, temporary=temporary)
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    # Unlisted: a server-side status is worth a retry, a client-side one is not.
    return SendFailure(AWS_SMS_UNKNOWN, detail, temporary=status >= 500 or status == 429)
