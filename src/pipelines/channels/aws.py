"""What the boto3-based channels (SES, AWS End User Messaging) share: one call, classified."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import (
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from portalflow.models import OutcomeClass

from .base import CONNECTION_ERROR, SendFailure


def call(
    operation: Callable[..., dict[str, Any]],
    request: dict[str, Any],
    *,
    classify: Callable[[ClientError], SendFailure],
    configuration_code: str,
) -> dict[str, Any]:
    """Run one AWS API call; every error comes out as a classified `SendFailure`."""
    try:
        return operation(**request)
    except ClientError as exc:
        raise classify(exc) from exc
    except (BotoConnectionError, HTTPClientError) as exc:
        # EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError and friends.
        raise SendFailure(CONNECTION_ERROR, str(exc), temporary=True) from exc
    except (NoCredentialsError, PartialCredentialsError) as exc:
        raise SendFailure(
            configuration_code,
            str(exc),
            temporary=False,
            outcome_class=OutcomeClass.CONFIGURATION,
        ) from exc
