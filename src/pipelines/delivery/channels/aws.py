"""What the boto3-based channels (SES, AWS End User Messaging) share: a client, one call."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from portalflow.models import OutcomeClass, OutcomeCode

from .base import SendFailure

# What a client signs with: a change (a test, a rotated key in the environment) gets a new one.
_CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
_clients: dict[tuple[object, ...], Any] = {}
_clients_lock = threading.Lock()


def shared_client(service: str, region: str, endpoint_url: str, timeout: float) -> Any:
    """This process's boto3 client for the service and settings, made once.

    Building a client loads and parses its service model (tens of milliseconds of CPU);
    a channel is made per dispatch, so each made its own until this. boto3 clients are
    thread-safe. One attempt per call: our actors own retries (with backoff, a cap and a
    row status), so the SDK must not multiply them. Not ``max_attempts``: botocore counts
    that in retries *after* the first try, so 1 means two sends.
    """
    credentials = tuple(os.environ.get(name) for name in _CREDENTIAL_VARIABLES)
    key = (os.getpid(), service, region, endpoint_url, timeout, credentials)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            config = Config(
                connect_timeout=timeout,
                read_timeout=timeout,
                retries={"total_max_attempts": 1, "mode": "standard"},
            )
            import boto3  # slow to import (botocore's session), and only AWS channels need it

            client = boto3.client(
                service, region_name=region, endpoint_url=endpoint_url or None, config=config
            )
            _clients[key] = client
        return client


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
        raise SendFailure(OutcomeCode.CONNECTION_ERROR, str(exc), temporary=True) from exc
    except (NoCredentialsError, PartialCredentialsError) as exc:
        raise SendFailure(
            configuration_code,
            str(exc),
            temporary=False,
            outcome_class=OutcomeClass.CONFIGURATION,
        ) from exc
